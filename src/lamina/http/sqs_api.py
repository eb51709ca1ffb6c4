"""The SQS API on the control port, in the protocol the installed botocore speaks: AWS JSON
1.0, `POST /` with `X-Amz-Target: AmazonSQS.<Operation>` and a JSON body of PascalCase
members. SQS is "query compatible": errors carry the modelled exception in `__type` and
the old Query protocol's code in `x-amzn-query-error` (rendered by `http.errors`).

Clients that still speak SQS's Query protocol (form-encoded `Action=...`) are refused with a
message saying so. Operations other than ReceiveMessage run on a worker thread (they are
SQLite transactions); ReceiveMessage long-polls on the event loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import orjson

from lamina.core.errors import LaminaError
from lamina.core.queue_messages import NewMessage, message_size
from lamina.core.queues import (
    MAX_BATCH,
    MAX_MESSAGE_SIZE,
    MAX_WAIT,
    BatchRequestTooLong,
    InvalidParameterValue,
    MissingParameter,
    SerializationError,
    SqsError,
    UnknownOperation,
    UnsupportedOperation,
    check_batch_ids,
)
from lamina.http import errors
from lamina.http.control_api import RouteEntry
from lamina.http.server import Request, Response
from lamina.services.queues import QueueService, SendResult
from lamina.wire import sqs as wire

TARGET_PREFIX = "AmazonSQS."
Json = dict[str, Any]
Item = TypeVar("Item")
Operation = Callable[["Body", Request], Awaitable[Json]]
# Operations SQS has that Lamina does not implement: refused as SQS refuses what it cannot do.
UNSUPPORTED = frozenset(
    {
        "AddPermission",
        "RemovePermission",
        "CancelMessageMoveTask",
        "ListMessageMoveTasks",
        "StartMessageMoveTask",
        "ListDeadLetterSourceQueues",
        "TagQueue",
        "UntagQueue",
        "ListQueueTags",
    }
)
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


class SqsApi:
    """A control API `Router` for `POST /` requests targeted at `AmazonSQS`."""

    def __init__(self, queues: QueueService) -> None:
        self.queues = queues
        self.operations: dict[str, Operation] = {
            "CreateQueue": self.create_queue,
            "GetQueueUrl": self.get_queue_url,
            "ListQueues": self.list_queues,
            "DeleteQueue": self.delete_queue,
            "GetQueueAttributes": self.get_queue_attributes,
            "SetQueueAttributes": self.set_queue_attributes,
            "SendMessage": self.send_message,
            "SendMessageBatch": self.send_message_batch,
            "ReceiveMessage": self.receive_message,
            "DeleteMessage": self.delete_message,
            "DeleteMessageBatch": self.delete_message_batch,
            "ChangeMessageVisibility": self.change_message_visibility,
            "ChangeMessageVisibilityBatch": self.change_message_visibility_batch,
            "PurgeQueue": self.purge_queue,
        }

    def __repr__(self) -> str:
        return f"<SqsApi {len(self.operations)} operations>"

    def routes(self) -> list[RouteEntry]:
        return [("POST", re.compile(r"/"), self.handle)]

    async def handle(self, request: Request, match: re.Match[str], request_id: str) -> Response:
        try:
            name = request.header("x-amz-target").removeprefix(TARGET_PREFIX)
            operation = self.operations.get(name)
            if operation is None:
                if name in UNSUPPORTED:
                    raise UnsupportedOperation(f"{name} is not supported by Lamina's queues")
                raise UnknownOperation(
                    f"X-Amz-Target = {request.header('x-amz-target')!r}: not an SQS "
                    f"operation Lamina implements ({', '.join(self.operations)})"
                )
            result = await operation(Body.parse(request.body), request)
        except LaminaError as exc:
            return errors.render_query_compatible(exc, request_id)
        except Exception as exc:
            return errors.render_query_compatible_unexpected(exc, request_id)
        return Response(
            200,
            orjson.dumps(result),
            [("x-amzn-RequestId", request_id)],
            content_type=errors.JSON_1_0,
        )

    # queues

    async def create_queue(self, body: Body, request: Request) -> Json:
        name = body.required_text("QueueName")
        attributes = body.string_map("Attributes")
        url = await asyncio.to_thread(self.queues.create_queue, name, attributes)
        return {"QueueUrl": url}

    async def get_queue_url(self, body: Body, request: Request) -> Json:
        name = body.required_text("QueueName")
        return {"QueueUrl": await asyncio.to_thread(self.queues.queue_url, name)}

    async def list_queues(self, body: Body, request: Request) -> Json:
        urls, token = await asyncio.to_thread(
            self.queues.list_queues,
            body.text("QueueNamePrefix") or "",
            body.number("MaxResults"),
            body.text("NextToken"),
        )
        result: Json = {"QueueUrls": urls} if urls else {}
        if token is not None:
            result["NextToken"] = token
        return result

    async def delete_queue(self, body: Body, request: Request) -> Json:
        await asyncio.to_thread(self.queues.delete_queue, self._queue(body))
        return {}

    async def get_queue_attributes(self, body: Body, request: Request) -> Json:
        names = body.array("AttributeNames", str)
        attributes = await asyncio.to_thread(self.queues.get_attributes, self._queue(body), names)
        return {"Attributes": attributes} if attributes else {}

    async def set_queue_attributes(self, body: Body, request: Request) -> Json:
        attributes = body.string_map("Attributes", required=True)
        await asyncio.to_thread(self.queues.set_attributes, self._queue(body), attributes)
        return {}

    async def purge_queue(self, body: Body, request: Request) -> Json:
        await asyncio.to_thread(self.queues.purge, self._queue(body))
        return {}

    # messages

    async def send_message(self, body: Body, request: Request) -> Json:
        (result,) = await asyncio.to_thread(
            self.queues.send_messages, self._queue(body), [_new_message(body)], _sender(request)
        )
        if isinstance(result, SqsError):
            raise result
        return _sent(result)

    async def send_message_batch(self, body: Body, request: Request) -> Json:
        entries = [Body(e) for e in body.array("Entries", dict, required=True)]
        ids = [e.required_text("Id") for e in entries]
        check_batch_ids(ids)
        messages = [_new_message(e) for e in entries]
        total = sum(message_size(m) for m in messages)
        if total > MAX_MESSAGE_SIZE:
            raise BatchRequestTooLong(
                f"Batch requests cannot be longer than {MAX_MESSAGE_SIZE} bytes. "
                f"You have sent {total} bytes."
            )
        results = await asyncio.to_thread(
            self.queues.send_messages, self._queue(body), messages, _sender(request)
        )
        successful, failed = [], []
        for entry_id, result in zip(ids, results, strict=True):
            if isinstance(result, SqsError):
                failed.append(_failure(entry_id, result))
            else:
                successful.append({"Id": entry_id, **_sent(result)})
        return {"Successful": successful, "Failed": failed}

    async def receive_message(self, body: Body, request: Request) -> Json:
        name = self._queue(body)
        limit = body.bounded("MaxNumberOfMessages", 1, MAX_BATCH) or 1
        wait = body.bounded("WaitTimeSeconds", 0, MAX_WAIT)
        visibility = body.number("VisibilityTimeout")
        # Names a message does not have are skipped, not refused: older clients send queue
        # attribute names in AttributeNames.
        system = [
            *body.array("AttributeNames", str),
            *body.array("MessageSystemAttributeNames", str),
        ]
        wanted = body.array("MessageAttributeNames", str)
        messages = await self.queues.receive(name, limit, visibility, wait)
        if not messages:
            return {}
        return {"Messages": [wire.received_message(m, system, wanted) for m in messages]}

    async def delete_message(self, body: Body, request: Request) -> Json:
        handle = body.required_text("ReceiptHandle")
        (result,) = await asyncio.to_thread(
            self.queues.delete_messages, self._queue(body), [handle]
        )
        if result is not None:
            raise result
        return {}

    async def delete_message_batch(self, body: Body, request: Request) -> Json:
        entries = [Body(e) for e in body.array("Entries", dict, required=True)]
        ids = [e.required_text("Id") for e in entries]
        check_batch_ids(ids)
        handles = [e.required_text("ReceiptHandle") for e in entries]
        results = await asyncio.to_thread(self.queues.delete_messages, self._queue(body), handles)
        return _batch_outcome(ids, results)

    async def change_message_visibility(self, body: Body, request: Request) -> Json:
        handle = body.required_text("ReceiptHandle")
        timeout = body.required_number("VisibilityTimeout")
        (result,) = await asyncio.to_thread(
            self.queues.change_visibility, self._queue(body), [(handle, timeout)]
        )
        if result is not None:
            raise result
        return {}

    async def change_message_visibility_batch(self, body: Body, request: Request) -> Json:
        entries = [Body(e) for e in body.array("Entries", dict, required=True)]
        ids = [e.required_text("Id") for e in entries]
        check_batch_ids(ids)
        changes = [
            (e.required_text("ReceiptHandle"), e.required_number("VisibilityTimeout"))
            for e in entries
        ]
        results = await asyncio.to_thread(self.queues.change_visibility, self._queue(body), changes)
        return _batch_outcome(ids, results)

    def _queue(self, body: Body) -> str:
        return self.queues.name_of_url(body.required_text("QueueUrl"))


def _new_message(body: Body) -> NewMessage:
    return NewMessage(
        body=body.required_text("MessageBody"),
        attributes=wire.parse_attributes(body.members.get("MessageAttributes")),
        system_attributes=wire.parse_attributes(
            body.members.get("MessageSystemAttributes"), "MessageSystemAttributes"
        ),
        delay=body.number("DelaySeconds"),
        group_id=body.text("MessageGroupId"),
        dedup_id=body.text("MessageDeduplicationId"),
    )


def _sent(result: SendResult) -> Json:
    shape: Json = {"MessageId": result.message_id, "MD5OfMessageBody": result.md5_of_body}
    if result.md5_of_attributes is not None:
        shape["MD5OfMessageAttributes"] = result.md5_of_attributes
    if result.md5_of_system_attributes is not None:
        shape["MD5OfMessageSystemAttributes"] = result.md5_of_system_attributes
    if result.sequence_number is not None:
        shape["SequenceNumber"] = result.sequence_number
    return shape


def _failure(entry_id: str, error: SqsError) -> Json:
    return {"Id": entry_id, "SenderFault": True, "Code": error.code, "Message": error.message}


def _batch_outcome(ids: list[str], results: list[SqsError | None]) -> Json:
    successful, failed = [], []
    for entry_id, error in zip(ids, results, strict=True):
        if error is None:
            successful.append({"Id": entry_id})
        else:
            failed.append(_failure(entry_id, error))
    return {"Successful": successful, "Failed": failed}


def _sender(request: Request) -> str:
    """SenderId: the access key the request was signed with (SQS reports the caller's
    identity there); Lamina does not check signatures."""
    found = _CREDENTIAL.search(request.header("authorization"))
    return found.group(1) if found else "AIDALAMINA"


class Body:
    """A request's members, with the checks botocore makes client-side: a missing required
    member is MissingParameter, a wrong JSON type SerializationException."""

    def __init__(self, members: Json) -> None:
        self.members = members

    @classmethod
    def parse(cls, raw: bytes) -> Body:
        if raw.startswith(b"Action="):
            raise SerializationError(
                "This is SQS's Query protocol (Action=...); Lamina's SQS API speaks the JSON "
                "protocol of current SDKs (botocore >= 1.31.64, AWS CLI >= 1.29.64 / 2.13.26)"
            )
        try:
            members = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"The request body is not JSON: {exc}") from None
        if not isinstance(members, dict):
            raise SerializationError("The request body must be a JSON object")
        return cls(members)

    def text(self, key: str) -> str | None:
        return cast("str | None", self._get(key, str, "a string"))

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise MissingParameter(f"The request must contain the parameter {key}.")
        return value

    def number(self, key: str) -> int | None:
        value = self._get(key, int, "an integer")
        if isinstance(value, bool):
            raise SerializationError(f"{key}: must be an integer, not a boolean")
        return cast("int | None", value)

    def required_number(self, key: str) -> int:
        value = self.number(key)
        if value is None:
            raise MissingParameter(f"The request must contain the parameter {key}.")
        return value

    def bounded(self, key: str, low: int, high: int) -> int | None:
        value = self.number(key)
        if value is not None and not low <= value <= high:
            raise InvalidParameterValue(
                f"Value {value} for parameter {key} is invalid. Reason: Must be between "
                f"{low} and {high}, if provided."
            )
        return value

    def array(self, key: str, item: type[Item], *, required: bool = False) -> list[Item]:
        values = cast("list[object] | None", self._get(key, list, "a list"))
        if values is None and required:
            raise MissingParameter(f"The request must contain the parameter {key}.")
        if not all(isinstance(v, item) for v in values or ()):
            raise SerializationError(f"{key}: every item must be {item.__name__}")
        return cast(list[Item], values or [])

    def string_map(self, key: str, *, required: bool = False) -> dict[str, str]:
        value = cast("dict[str, object] | None", self._get(key, dict, "an object"))
        if value is None and required:
            raise MissingParameter(f"The request must contain the parameter {key}.")
        if not all(isinstance(v, str) for v in (value or {}).values()):
            raise SerializationError(f"{key}: every value must be a string")
        return cast(dict[str, str], value or {})

    def _get(self, key: str, kind: type, expected: str) -> object:
        value = self.members.get(key)
        if value is not None and not isinstance(value, kind):
            raise SerializationError(f"{key}: must be {expected}, not {type(value).__name__}")
        return value
