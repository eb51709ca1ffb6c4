"""The queue service's domain: SQS's queue model, its attribute rules and its error codes.

A queue has a name (at most 80 characters of `A-Za-z0-9_-`, ending in `.fifo` for a FIFO
queue), settings given as SQS's queue attributes (`VisibilityTimeout`, `RedrivePolicy`, ...,
all strings on the wire) and an owner: the service/stage that declared it in a deployment,
or none when it was created through the API. Messages are in `core.queue_messages`.

Errors carry two codes because SQS speaks AWS's JSON protocol in "query compatible" mode:
`error_type` is the modelled exception (`QueueDoesNotExist`), which botocore turns into the
exception class, and `query_code` is the code SQS's older Query protocol used
(`AWS.SimpleQueueService.NonExistentQueue`), which clients show as the error code
(`x-amzn-query-error: <query_code>;Sender`). Nothing here does I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

from lamina.core.errors import LaminaError
from lamina.core.models import Account

MAX_NAME = 80
FIFO_SUFFIX = ".fifo"
NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")

MAX_MESSAGE_SIZE = 1_048_576  # the largest MaximumMessageSize (1 MiB)
MIN_MESSAGE_SIZE = 1_024
MAX_VISIBILITY_TIMEOUT = 43_200  # 12 hours
MAX_DELAY = 900  # 15 minutes
MAX_WAIT = 20  # the longest long poll
MIN_RETENTION, MAX_RETENTION = 60, 1_209_600  # 1 minute .. 14 days
MAX_RECEIVE_COUNT = 1_000
DEDUP_WINDOW = 300.0  # seconds a FIFO deduplication id is remembered
PURGE_INTERVAL = 60.0  # one PurgeQueue per queue per minute, as SQS allows
MAX_BATCH = 10  # entries in a batch request; messages per ReceiveMessage


# --- errors ----------------------------------------------------------------------------------


class SqsError(LaminaError):
    """A caller fault, answered 400 with both of SQS's codes (see the module docstring)."""

    status = 400
    fault = "User"
    query_code: ClassVar[str] = ""

    @property
    def code(self) -> str:
        """The code a client shows (and a batch result entry carries)."""
        return self.query_code or self.error_type


class QueueDoesNotExist(SqsError):
    error_type = "QueueDoesNotExist"
    query_code = "AWS.SimpleQueueService.NonExistentQueue"

    def __init__(self, message: str = "The specified queue does not exist.") -> None:
        super().__init__(message)


class QueueNameExists(SqsError):
    error_type = "QueueNameExists"
    query_code = "QueueAlreadyExists"


class InvalidAttributeName(SqsError):
    error_type = "InvalidAttributeName"
    query_code = "InvalidAttributeName"


class InvalidAttributeValue(SqsError):
    error_type = "InvalidAttributeValue"
    query_code = "InvalidAttributeValue"


class InvalidParameterValue(SqsError):
    # Not a modelled exception: botocore raises a plain ClientError with this code.
    error_type = "InvalidParameterValue"
    query_code = "InvalidParameterValue"


class MissingParameter(SqsError):
    error_type = "MissingParameter"
    query_code = "MissingParameter"


class InvalidMessageContents(SqsError):
    error_type = "InvalidMessageContents"
    query_code = "InvalidMessageContents"


class ReceiptHandleIsInvalid(SqsError):
    error_type = "ReceiptHandleIsInvalid"
    query_code = "ReceiptHandleIsInvalid"


class MessageNotInflight(SqsError):
    error_type = "MessageNotInflight"
    query_code = "AWS.SimpleQueueService.MessageNotInflight"


class EmptyBatchRequest(SqsError):
    error_type = "EmptyBatchRequest"
    query_code = "AWS.SimpleQueueService.EmptyBatchRequest"


class TooManyEntriesInBatchRequest(SqsError):
    error_type = "TooManyEntriesInBatchRequest"
    query_code = "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"


class BatchEntryIdsNotDistinct(SqsError):
    error_type = "BatchEntryIdsNotDistinct"
    query_code = "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"


class InvalidBatchEntryId(SqsError):
    error_type = "InvalidBatchEntryId"
    query_code = "AWS.SimpleQueueService.InvalidBatchEntryId"


class BatchRequestTooLong(SqsError):
    error_type = "BatchRequestTooLong"
    query_code = "AWS.SimpleQueueService.BatchRequestTooLong"


class PurgeQueueInProgress(SqsError):
    error_type = "PurgeQueueInProgress"
    query_code = "AWS.SimpleQueueService.PurgeQueueInProgress"


class UnsupportedOperation(SqsError):
    error_type = "UnsupportedOperation"
    query_code = "AWS.SimpleQueueService.UnsupportedOperation"


class UnknownOperation(SqsError):
    error_type = "UnknownOperationException"
    query_code = "UnknownOperationException"


class SerializationError(SqsError):
    error_type = "SerializationException"
    query_code = "SerializationException"


# --- names -----------------------------------------------------------------------------------


def name_problem(name: str, fifo: bool) -> str | None:
    """Why `name` cannot name a (FIFO) queue, or None."""
    base = name.removesuffix(FIFO_SUFFIX) if fifo else name
    if fifo and not name.endswith(FIFO_SUFFIX):
        return f"queue name {name!r}: the name of a FIFO queue must end with {FIFO_SUFFIX!r}"
    if not fifo and name.endswith(FIFO_SUFFIX):
        return f"queue name {name!r}: only a FIFO queue's name may end with {FIFO_SUFFIX!r}"
    if len(name) > MAX_NAME or not NAME.fullmatch(base):
        return (
            f"queue name {name!r}: must be 1 to {MAX_NAME} characters of letters, digits, "
            "hyphens and underscores" + (f" (including {FIFO_SUFFIX!r})" if fifo else "")
        )
    return None


def queue_arn(account: Account, name: str) -> str:
    return f"arn:aws:sqs:{account.region}:{account.account_id}:{name}"


def name_from_arn(arn: str) -> str | None:
    """The queue name in `arn:aws:sqs:<region>:<account>:<name>`, or None if it is not one."""
    parts = arn.split(":")
    if len(parts) == 6 and parts[:3] == ["arn", "aws", "sqs"] and parts[5]:
        return parts[5]
    return None


def queue_reference(reference: str) -> str:
    """A queue named by name or by ARN (serverless.yml and destinations use both)."""
    return name_from_arn(reference) or reference


# --- settings (SQS's queue attributes) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Redrive:
    dead_letter_queue: str  # the target's name
    max_receive_count: int


@dataclass(frozen=True, slots=True)
class QueueSettings:
    visibility_timeout: int = 30
    message_retention: int = 345_600  # 4 days
    delay: int = 0
    maximum_message_size: int = MAX_MESSAGE_SIZE
    receive_wait: int = 0  # ReceiveMessageWaitTimeSeconds: the default long poll
    redrive: Redrive | None = None
    fifo: bool = False
    content_based_deduplication: bool = False
    # Accepted and returned as given, not enforced (Policy, KMS keys, ...).
    extra: tuple[tuple[str, str], ...] = ()


# name -> (field, lowest, highest)
_INTEGERS: dict[str, tuple[str, int, int]] = {
    "VisibilityTimeout": ("visibility_timeout", 0, MAX_VISIBILITY_TIMEOUT),
    "MessageRetentionPeriod": ("message_retention", MIN_RETENTION, MAX_RETENTION),
    "DelaySeconds": ("delay", 0, MAX_DELAY),
    "MaximumMessageSize": ("maximum_message_size", MIN_MESSAGE_SIZE, MAX_MESSAGE_SIZE),
    "ReceiveMessageWaitTimeSeconds": ("receive_wait", 0, MAX_WAIT),
}
_STORED_AS_GIVEN = frozenset(
    {
        "Policy",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "SqsManagedSseEnabled",
        "RedriveAllowPolicy",
        "DeduplicationScope",
        "FifoThroughputLimit",
    }
)
_FIFO_ONLY = frozenset({"ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"})
READ_ONLY = frozenset(
    {
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
        "CreatedTimestamp",
        "LastModifiedTimestamp",
        "QueueArn",
    }
)
ATTRIBUTE_NAMES = frozenset(
    {
        *_INTEGERS,
        *_STORED_AS_GIVEN,
        *READ_ONLY,
        "RedrivePolicy",
        "FifoQueue",
        "ContentBasedDeduplication",
    }
)


def apply_attributes(
    base: QueueSettings, attributes: Mapping[str, str], *, creating: bool
) -> QueueSettings:
    """`base` with SQS queue attributes applied (CreateQueue, SetQueueAttributes).

    Raises InvalidAttributeName / InvalidAttributeValue naming the attribute and the rule.
    `FifoQueue` may only be given when creating; a dead-letter target's existence is the
    service's to check (it needs the store).
    """
    settings = base
    if creating and "FifoQueue" in attributes:
        settings = replace(settings, fifo=_boolean("FifoQueue", attributes["FifoQueue"]))
    extra = dict(settings.extra)
    for name, value in attributes.items():
        if not isinstance(value, str):
            raise InvalidAttributeValue(f"Attributes.{name} = {value!r}: must be a string")
        if name in _INTEGERS:
            attr, low, high = _INTEGERS[name]
            changes: dict[str, Any] = {attr: _integer(name, value, low, high)}
            settings = replace(settings, **changes)
        elif name == "RedrivePolicy":
            settings = replace(settings, redrive=parse_redrive_policy(value))
        elif name == "FifoQueue":
            if _boolean(name, value) != settings.fifo:
                raise InvalidAttributeValue(
                    f"FifoQueue = {value!r}: a queue's type is set when it is created "
                    "and cannot change"
                )
        elif name == "ContentBasedDeduplication":
            settings = replace(settings, content_based_deduplication=_boolean(name, value))
        elif name in _STORED_AS_GIVEN:
            extra[name] = value
        elif name in READ_ONLY:
            raise InvalidAttributeName(f"{name} is read-only: it cannot be set")
        else:
            raise InvalidAttributeName(f"Unknown Attribute {name}.")
        if name in _FIFO_ONLY and not settings.fifo:
            raise InvalidAttributeName(f"{name} applies only to FIFO queues")
    return replace(settings, extra=tuple(sorted(extra.items())))


def parse_redrive_policy(value: str) -> Redrive | None:
    if value == "":
        return None  # SQS removes the policy when it is set to an empty string
    try:
        policy = json.loads(value)
    except ValueError:
        policy = None
    if not isinstance(policy, dict):
        raise InvalidAttributeValue(
            f"RedrivePolicy = {value!r}: must be a JSON object "
            '{"deadLetterTargetArn": "<queue ARN>", "maxReceiveCount": <1-1000>}'
        )
    unknown = set(policy) - {"deadLetterTargetArn", "maxReceiveCount"}
    if unknown:
        raise InvalidAttributeName(
            f"RedrivePolicy: unknown key(s) {', '.join(sorted(unknown))}; "
            "expected deadLetterTargetArn and maxReceiveCount"
        )
    target = policy.get("deadLetterTargetArn")
    name = name_from_arn(target) if isinstance(target, str) else None
    if name is None:
        raise InvalidAttributeValue(
            f"RedrivePolicy.deadLetterTargetArn = {target!r}: must be a queue ARN "
            "arn:aws:sqs:<region>:<account>:<name>"
        )
    count = policy.get("maxReceiveCount")
    text = str(count) if isinstance(count, int | str) and not isinstance(count, bool) else ""
    return Redrive(name, _integer("RedrivePolicy.maxReceiveCount", text, 1, MAX_RECEIVE_COUNT))


def attributes_of(settings: QueueSettings, account: Account) -> dict[str, str]:
    """The settable attributes as SQS returns them (GetQueueAttributes), all strings."""
    attributes = {
        "VisibilityTimeout": str(settings.visibility_timeout),
        "MaximumMessageSize": str(settings.maximum_message_size),
        "MessageRetentionPeriod": str(settings.message_retention),
        "DelaySeconds": str(settings.delay),
        "ReceiveMessageWaitTimeSeconds": str(settings.receive_wait),
        "SqsManagedSseEnabled": "false",
    }
    if settings.redrive is not None:
        policy = {
            "deadLetterTargetArn": queue_arn(account, settings.redrive.dead_letter_queue),
            "maxReceiveCount": settings.redrive.max_receive_count,
        }
        attributes["RedrivePolicy"] = json.dumps(policy, separators=(",", ":"))
    if settings.fifo:
        attributes["FifoQueue"] = "true"
        attributes["ContentBasedDeduplication"] = _text(settings.content_based_deduplication)
        attributes["DeduplicationScope"] = "queue"
        attributes["FifoThroughputLimit"] = "perQueue"
    attributes.update(settings.extra)
    return attributes


def stored_attributes(settings: QueueSettings) -> dict[str, str]:
    """What the store keeps: the attributes that differ from a new queue's defaults, with the
    DLQ by name (so that a change of region or account does not strand it)."""
    attributes = {
        name: str(getattr(settings, attr))
        for name, (attr, _, _) in _INTEGERS.items()
        if getattr(settings, attr) != getattr(_DEFAULTS, attr)
    }
    if settings.redrive is not None:
        attributes["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": f"arn:aws:sqs:::{settings.redrive.dead_letter_queue}",
                "maxReceiveCount": settings.redrive.max_receive_count,
            }
        )
    if settings.fifo:
        attributes["FifoQueue"] = "true"
        attributes["ContentBasedDeduplication"] = _text(settings.content_based_deduplication)
    attributes.update(settings.extra)
    return attributes


def settings_from_store(attributes: Mapping[str, str]) -> QueueSettings:
    return apply_attributes(QueueSettings(), attributes, creating=True)


_DEFAULTS = QueueSettings()


def _integer(name: str, value: str, low: int, high: int) -> int:
    text = value.strip()
    if not re.fullmatch(r"-?\d+", text) or not low <= int(text) <= high:
        raise InvalidAttributeValue(
            f"Invalid value for the parameter {name}: {value!r}: "
            f"must be an integer from {low} to {high}"
        )
    return int(text)


def _boolean(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise InvalidAttributeValue(f"{name} = {value!r}: must be true or false")
    return value.lower() == "true"


def _text(flag: bool) -> str:
    return "true" if flag else "false"


# --- queues ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    settings: QueueSettings = field(default_factory=QueueSettings)
    created: float = 0.0  # epoch seconds
    last_modified: float = 0.0
    service: str | None = None  # the stack that declared it; None when created by the API
    stage: str | None = None

    @property
    def owner(self) -> str | None:
        return f"{self.service}-{self.stage}" if self.service is not None else None


# What a delete or visibility change with a receipt handle found (the store's answer).
DeleteOutcome = Literal["deleted", "stale", "gone"]
VisibilityOutcome = Literal["changed", "not_in_flight", "stale", "gone"]


@dataclass(frozen=True, slots=True)
class QueueCounts:
    visible: int = 0  # ApproximateNumberOfMessages
    in_flight: int = 0  # ...NotVisible: received, not deleted, visibility not expired
    delayed: int = 0  # ...Delayed: sent with a delay that has not passed


def read_only_attributes(queue: Queue, counts: QueueCounts, account: Account) -> dict[str, str]:
    return {
        "ApproximateNumberOfMessages": str(counts.visible),
        "ApproximateNumberOfMessagesNotVisible": str(counts.in_flight),
        "ApproximateNumberOfMessagesDelayed": str(counts.delayed),
        "CreatedTimestamp": str(int(queue.created)),
        "LastModifiedTimestamp": str(int(queue.last_modified)),
        "QueueArn": queue_arn(account, queue.name),
    }


# --- event source mappings -------------------------------------------------------------------

MAX_BATCH_SIZE = 10_000  # a standard queue's; a FIFO queue's is 10
MAX_BATCHING_WINDOW = 300
MIN_MAXIMUM_CONCURRENCY, MAX_MAXIMUM_CONCURRENCY = 2, 1_000


@dataclass(frozen=True, slots=True)
class EventSourceMapping:
    """A function consuming a queue (an `sqs` event), as Lambda's event source mapping."""

    uuid: str
    service: str
    stage: str
    function_name: str
    qualifier: str | None
    queue: str  # the queue's name
    batch_size: int = 10
    maximum_batching_window: int = 0  # seconds
    report_batch_item_failures: bool = False
    enabled: bool = True
    maximum_concurrency: int | None = None


def mapping_problems(mapping: EventSourceMapping, fifo: bool | None) -> list[str]:
    """What Lambda's CreateEventSourceMapping would refuse; `fifo` is None when the queue's
    type is not known yet."""
    where = f"function {mapping.function_name}: sqs event on {mapping.queue}"
    problems = []
    largest = MAX_BATCH if fifo else MAX_BATCH_SIZE
    batch_ok = 1 <= mapping.batch_size <= largest
    if not batch_ok:
        problems.append(
            f"{where}: batchSize = {mapping.batch_size}: must be between 1 and {largest}"
            + (" for a FIFO queue" if fifo else "")
        )
    if not 0 <= mapping.maximum_batching_window <= MAX_BATCHING_WINDOW:
        problems.append(
            f"{where}: maximumBatchingWindow = {mapping.maximum_batching_window}: must be "
            f"between 0 and {MAX_BATCHING_WINDOW} seconds"
        )
    elif batch_ok and mapping.batch_size > MAX_BATCH and mapping.maximum_batching_window < 1:
        problems.append(
            f"{where}: batchSize = {mapping.batch_size} needs maximumBatchingWindow of at "
            "least 1 second (as on Lambda, for batches larger than 10)"
        )
    concurrency = mapping.maximum_concurrency
    if concurrency is not None and not (
        MIN_MAXIMUM_CONCURRENCY <= concurrency <= MAX_MAXIMUM_CONCURRENCY
    ):
        problems.append(
            f"{where}: maximumConcurrency = {concurrency}: must be between "
            f"{MIN_MAXIMUM_CONCURRENCY} and {MAX_MAXIMUM_CONCURRENCY}"
        )
    return problems


# --- batches ---------------------------------------------------------------------------------

BATCH_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")


def check_batch_ids(ids: list[str]) -> None:
    """The rules every *Batch request's entry ids follow."""
    if not ids:
        raise EmptyBatchRequest("There should be at least one entry in the request.")
    if len(ids) > MAX_BATCH:
        raise TooManyEntriesInBatchRequest(
            f"Maximum number of entries per request are {MAX_BATCH}. You have sent {len(ids)}."
        )
    for entry_id in ids:
        if not isinstance(entry_id, str) or not BATCH_ENTRY_ID.fullmatch(entry_id):
            raise InvalidBatchEntryId(
                f"A batch entry id can only contain alphanumeric characters, hyphens and "
                f"underscores. It can be at most 80 letters long ({entry_id!r})."
            )
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise BatchEntryIdsNotDistinct(f"Id {duplicate} repeated.")
