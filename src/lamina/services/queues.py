"""The queue service: SQS's semantics on the store, for the SQS API, deployments (as the
`QueueBroker` port), async destinations and the `sqs` event source consumers.

- Messages are durable before a send returns (the store commits first).
- Standard queues deliver at least once, in roughly the order sent; FIFO queues deliver
  each message group in order, one in-flight batch per group, and drop a message whose
  deduplication id was accepted in the last five minutes.
- A receive hides a message for the visibility timeout and gives it a new receipt handle;
  one received `maxReceiveCount` times moves to the dead-letter queue on its next receive.
- Long polls (`receive(wait=...)`) sleep until a send to their queue wakes them, or until
  the next delayed or hidden message becomes visible: no busy polling.

Operations other than `receive` are synchronous (they are store transactions) and may run
on a worker thread; wake-ups reach the event loop thread-safely.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit

from lamina.core.clock import Clock
from lamina.core.errors import LaminaError, ResourceNotFoundException
from lamina.core.models import Account
from lamina.core.queue_messages import (
    Message,
    MessageAttribute,
    NewMessage,
    check_message,
    content_dedup_id,
    is_number,
    md5_of_attributes,
    md5_of_body,
    parse_receipt_handle,
)
from lamina.core.queues import (
    ATTRIBUTE_NAMES,
    DEDUP_WINDOW,
    MAX_VISIBILITY_TIMEOUT,
    PURGE_INTERVAL,
    DeleteOutcome,
    EventSourceMapping,
    InvalidAttributeName,
    InvalidParameterValue,
    MessageNotInflight,
    PurgeQueueInProgress,
    Queue,
    QueueCounts,
    QueueDoesNotExist,
    QueueNameExists,
    QueueSettings,
    ReceiptHandleIsInvalid,
    SqsError,
    VisibilityOutcome,
    apply_attributes,
    attributes_of,
    name_problem,
    queue_arn,
    queue_reference,
    read_only_attributes,
)
from lamina.services.queue_specs import mappings_of, queues_of, spec_problems, trigger_problems
from lamina.wire.deployment import SqsTrigger

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

SWEEP_INTERVAL = 60.0  # seconds between deletions of messages past their retention
MAX_LIST = 1_000


class QueueRepository(Protocol):
    """`lamina.store.queues.SqliteQueueStore`."""

    def get_queue(self, name: str) -> Queue | None: ...
    def list_queues(self, prefix: str = "") -> list[Queue]: ...
    def create_queue(self, queue: Queue) -> Queue: ...
    def update_queue(self, queue: Queue) -> None: ...
    def delete_queue(self, name: str) -> bool: ...
    def declare_queues(self, service: str, stage: str, queues: Sequence[Queue]) -> list[str]: ...
    def send(
        self, queue: str, messages: Sequence[Message], dedup_expires: float, now: float
    ) -> list[Message]: ...
    def receive(
        self,
        queue: Queue,
        limit: int,
        visibility: int,
        now: float,
        token: Callable[[], str],
        source_arn: str,
    ) -> tuple[list[Message], int]: ...
    def delete_message(self, queue: str, message_id: str, token: str) -> DeleteOutcome: ...
    def change_visibility(
        self, queue: str, message_id: str, token: str, visible_at: float, now: float
    ) -> VisibilityOutcome: ...
    def purge(self, queue: str) -> int: ...
    def counts(self, queue: Queue, now: float) -> QueueCounts: ...
    def next_visible(self, queue: str, now: float) -> float | None: ...
    def expire(self, now: float) -> int: ...
    def replace_mappings(
        self, service: str, stage: str, mappings: Sequence[EventSourceMapping], now: float
    ) -> None: ...
    def list_mappings(self) -> list[EventSourceMapping]: ...


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: str
    md5_of_body: str
    md5_of_attributes: str | None
    md5_of_system_attributes: str | None
    sequence_number: str | None  # FIFO queues only


class Offload(Protocol):
    """How blocking work leaves the event loop: `asyncio.to_thread`, or inline in tests."""

    def __call__(
        self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...


class QueueService:
    def __init__(
        self,
        *,
        store: QueueRepository,
        clock: Clock,
        account: Account,
        base_url: str,
        offload: Offload = asyncio.to_thread,
    ) -> None:
        self.offload = offload
        self._store = store
        self._clock = clock
        self._account = account
        self._base_url = base_url.rstrip("/")
        self._wakeups = _Wakeups()
        self._purged: dict[str, float] = {}  # queue -> monotonic time of its last purge
        self._listeners: list[Callable[[], None]] = []
        self._sweeper: asyncio.Task[None] | None = None
        self.sent = 0
        self.received = 0
        self.deleted = 0

    def __repr__(self) -> str:
        return (
            f"<QueueService sent={self.sent} received={self.received} deleted={self.deleted} "
            f"long_polled_queues={self._wakeups.waiting()}>"
        )

    def statistics(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "received": self.received,
            "deleted": self.deleted,
            "long_polled_queues": self._wakeups.waiting(),
        }

    # names

    def url(self, name: str) -> str:
        return f"{self._base_url}/{self._account.account_id}/{name}"

    def arn(self, name: str) -> str:
        return queue_arn(self._account, name)

    def name_of_url(self, url: str) -> str:
        """The queue a QueueUrl names: `<anything>/<account>/<name>` (the host is not checked:
        clients reach Lamina under several names), or a bare name."""
        parts = [p for p in urlsplit(url).path.split("/") if p]
        if len(parts) == 1 and "://" not in url:
            return parts[0]
        if len(parts) != 2 or parts[0] != self._account.account_id:
            raise QueueDoesNotExist(
                f"The specified queue does not exist: {url!r} is not a queue URL of this "
                f"Lamina (expected {self.url('<name>')})"
            )
        return parts[1]

    def queue(self, name: str) -> Queue:
        queue = self._store.get_queue(name)
        if queue is None:
            raise QueueDoesNotExist(f"The specified queue does not exist: {name}")
        return queue

    # queues (the SQS API)

    def create_queue(self, name: str, attributes: Mapping[str, str]) -> str:
        settings = apply_attributes(QueueSettings(), attributes, creating=True)
        problem = name_problem(name, settings.fifo)
        if problem is not None:
            raise InvalidParameterValue(problem)
        self._check_dead_letter_queue(name, settings)
        now = self._clock.time()
        stored = self._store.create_queue(Queue(name, settings, now, now))
        if stored.settings != settings:
            given = apply_attributes(stored.settings, attributes, creating=False)
            if given != stored.settings or stored.settings.fifo != settings.fifo:
                raise QueueNameExists(
                    f"A queue named {name} already exists with different attributes; "
                    "change them with SetQueueAttributes"
                )
        return self.url(name)

    def queue_url(self, name: str) -> str:
        return self.url(self.queue(name).name)

    def list_queues(
        self, prefix: str = "", max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[str], str | None]:
        if max_results is not None and not 1 <= max_results <= MAX_LIST:
            raise InvalidParameterValue(
                f"Value {max_results} for parameter MaxResults is invalid. "
                f"Reason: must be between 1 and {MAX_LIST}."
            )
        names = [q.name for q in self._store.list_queues(prefix)]
        if next_token:
            after = _decode_token(next_token)
            names = [n for n in names if n > after]
        limit = max_results or MAX_LIST
        page, more = names[:limit], len(names) > limit
        token = _encode_token(page[-1]) if more and max_results is not None else None
        return [self.url(n) for n in page], token

    def delete_queue(self, name: str) -> None:
        if not self._store.delete_queue(name):
            raise QueueDoesNotExist(f"The specified queue does not exist: {name}")
        self._wakeups.notify(name)

    def get_attributes(self, name: str, names: Iterable[str]) -> dict[str, str]:
        wanted = set(names)
        unknown = sorted(wanted - ATTRIBUTE_NAMES - {"All"})
        if unknown:
            raise InvalidAttributeName(f"Unknown Attribute {unknown[0]}.")
        queue = self.queue(name)
        if not wanted:
            return {}
        everything = attributes_of(queue.settings, self._account)
        counts = self._store.counts(queue, self._clock.time())
        everything.update(read_only_attributes(queue, counts, self._account))
        if "All" in wanted:
            return everything
        return {k: v for k, v in everything.items() if k in wanted}

    def set_attributes(self, name: str, attributes: Mapping[str, str]) -> None:
        queue = self.queue(name)
        settings = apply_attributes(queue.settings, attributes, creating=False)
        self._check_dead_letter_queue(name, settings)
        self._store.update_queue(replace(queue, settings=settings, last_modified=self._now()))
        self._wakeups.notify(name)  # a shorter delay may make messages visible sooner

    def counts(self, name: str) -> QueueCounts:
        return self._store.counts(self.queue(name), self._clock.time())

    def _check_dead_letter_queue(self, name: str, settings: QueueSettings) -> None:
        redrive = settings.redrive
        if redrive is None:
            return
        target = self._store.get_queue(redrive.dead_letter_queue)
        if target is None or target.name == name:
            raise InvalidParameterValue(
                f"Value {self.arn(redrive.dead_letter_queue)} for parameter RedrivePolicy is "
                "invalid. Reason: Dead letter target does not exist."
            )
        if target.settings.fifo != settings.fifo:
            raise InvalidParameterValue(
                f"Value {self.arn(target.name)} for parameter RedrivePolicy is invalid. "
                "Reason: Dead-letter queue must be same type of queue as the source."
            )

    # messages

    def send_messages(
        self, name: str, messages: Sequence[NewMessage], sender_id: str
    ) -> list[SendResult | SqsError]:
        """Send each message, or say why it was refused (in the order given)."""
        queue = self.queue(name)
        settings = queue.settings
        now = self._clock.time()
        outcomes: list[SendResult | SqsError | Message] = []
        accepted: list[Message] = []
        for new in messages:
            try:
                check_message(new, settings)
            except SqsError as refused:
                outcomes.append(refused)
                continue
            message = _message(queue, new, sender_id, now)
            accepted.append(message)
            outcomes.append(message)
        stored = iter(self._store.send(name, accepted, now + DEDUP_WINDOW, now))
        if accepted:
            self.sent += len(accepted)
            self._wakeups.notify(name)
        results: list[SendResult | SqsError] = []
        for new, outcome in zip(messages, outcomes, strict=True):
            if isinstance(outcome, SqsError):
                results.append(outcome)
                continue
            message = next(stored)
            results.append(
                SendResult(
                    message_id=message.id,
                    md5_of_body=md5_of_body(new.body),
                    md5_of_attributes=md5_of_attributes(new.attributes),
                    md5_of_system_attributes=md5_of_attributes(new.system_attributes),
                    sequence_number=message.sequence_number if settings.fifo else None,
                )
            )
        return results

    def receive_now(self, name: str, limit: int, visibility: int | None = None) -> list[Message]:
        queue = self.queue(name)
        hidden_for = queue.settings.visibility_timeout if visibility is None else visibility
        if not 0 <= hidden_for <= MAX_VISIBILITY_TIMEOUT:
            raise InvalidParameterValue(
                f"Value {hidden_for} for parameter VisibilityTimeout is invalid. "
                f"Reason: must be between 0 and {MAX_VISIBILITY_TIMEOUT}."
            )
        messages, moved = self._store.receive(
            queue,
            limit,
            hidden_for,
            self._clock.time(),
            lambda: secrets.token_urlsafe(12),
            self.arn(name),
        )
        if moved and queue.settings.redrive is not None:
            self._wakeups.notify(queue.settings.redrive.dead_letter_queue)
        self.received += len(messages)
        return messages

    async def receive(
        self, name: str, limit: int, visibility: int | None = None, wait: float | None = None
    ) -> list[Message]:
        """Receive up to `limit` messages, waiting up to `wait` seconds (the queue's
        ReceiveMessageWaitTimeSeconds when None) for the first one to arrive."""
        loop = asyncio.get_running_loop()
        if wait is None:
            wait = self.queue(name).settings.receive_wait
        deadline = loop.time() + wait
        while True:
            # Taken before looking, so that a send in between still wakes us.
            wakeup = self._wakeups.event(name)
            messages = await self.offload(self.receive_now, name, limit, visibility)
            remaining = deadline - loop.time()
            if messages or remaining <= 0:
                return messages
            now = self._clock.time()
            upcoming = await self.offload(self._store.next_visible, name, now)
            if upcoming is not None:
                remaining = min(remaining, max(upcoming - now, 0.001))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await wakeup.wait()

    def delete_messages(self, name: str, handles: Sequence[str]) -> list[SqsError | None]:
        self.queue(name)
        results: list[SqsError | None] = []
        for handle in handles:
            try:
                message_id, token = self._parse_handle(name, handle)
            except SqsError as invalid:
                results.append(invalid)
                continue
            # A stale or spent handle succeeds without deleting anything, as on SQS.
            if self._store.delete_message(name, message_id, token) == "deleted":
                self.deleted += 1
            results.append(None)
        return results

    def change_visibility(
        self, name: str, entries: Sequence[tuple[str, int]]
    ) -> list[SqsError | None]:
        self.queue(name)
        now = self._clock.time()
        results: list[SqsError | None] = []
        released = False
        for handle, timeout in entries:
            try:
                message_id, token = self._parse_handle(name, handle)
                if not 0 <= timeout <= MAX_VISIBILITY_TIMEOUT:
                    raise InvalidParameterValue(
                        f"Value {timeout} for parameter VisibilityTimeout is invalid. "
                        f"Reason: must be between 0 and {MAX_VISIBILITY_TIMEOUT}."
                    )
                outcome = self._store.change_visibility(name, message_id, token, now + timeout, now)
                if outcome == "not_in_flight":
                    raise MessageNotInflight(f"Message {message_id} is not in flight.")
                if outcome != "changed":
                    raise InvalidParameterValue(
                        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: "
                        "Message does not exist or is not available for visibility timeout "
                        "change."
                    )
                released = released or timeout == 0
                results.append(None)
            except SqsError as refused:
                results.append(refused)
        if released:
            self._wakeups.notify(name)
        return results

    def purge(self, name: str) -> int:
        self.queue(name)
        now = self._clock.monotonic()
        last = self._purged.get(name)
        if last is not None and now - last < PURGE_INTERVAL:
            raise PurgeQueueInProgress(
                f"Only one PurgeQueue operation on {name} is allowed every "
                f"{int(PURGE_INTERVAL)} seconds."
            )
        self._purged[name] = now
        return self._store.purge(name)

    def _parse_handle(self, name: str, handle: str) -> tuple[str, str]:
        queue, message_id, token = parse_receipt_handle(handle)
        if queue != name:
            raise ReceiptHandleIsInvalid(
                f'The input receipt handle "{handle}" is not a valid receipt handle '
                f"for queue {name} (it is one of {queue})."
            )
        return message_id, token

    def _now(self) -> float:
        return self._clock.time()

    # the QueueBroker port: deployments and async destinations

    def validate_queues(self, service: str, stage: str, queues: Sequence[object]) -> list[str]:
        existing = {q.name: q for q in self._store.list_queues()}
        return spec_problems(service, stage, queues, existing)

    def validate_triggers(
        self, function_name: str, triggers: Sequence[object], queues: Sequence[object]
    ) -> list[str]:
        """Problems with a function's `SqsTrigger`s, given the stack's `QueueSpec`s (not part
        of the port: for the deploy service's checks before its transaction)."""
        existing = {q.name: q for q in self._store.list_queues()}
        sqs = [t for t in triggers if isinstance(t, SqsTrigger)]
        return trigger_problems(function_name, sqs, queues, existing)

    def declare_queues(self, service: str, stage: str, queues: Sequence[object]) -> None:
        """Create or update the stack's queues (messages are kept); a queue the stack
        declared before and no longer does is deleted with its messages."""
        now = self._clock.time()
        gone = self._store.declare_queues(service, stage, queues_of(service, stage, queues, now))
        for name in gone:
            log.info("queue %s deleted: %s-%s no longer declares it", name, service, stage)
            self._wakeups.notify(name)

    def set_mappings(
        self, service: str, stage: str, mappings: Sequence[tuple[str, str | None, object]]
    ) -> None:
        self._store.replace_mappings(
            service, stage, mappings_of(service, stage, mappings), self._clock.time()
        )
        for listener in self._listeners:
            listener()

    def send(self, queue: str, body: str, attributes: dict[str, str] | None = None) -> None:
        """One message from the platform (an async DLQ or destination). Attribute values
        that read as numbers are sent as `Number` (Lambda's DLQ `ErrorCode` is one), the
        others as `String`."""
        name = queue_reference(queue)
        try:
            target = self.queue(name)
        except QueueDoesNotExist:
            raise ResourceNotFoundException(f"Queue not found: {queue}") from None
        fifo = target.settings.fifo
        message = NewMessage(
            body=body,
            attributes={k: _typed(v) for k, v in (attributes or {}).items()},
            group_id="lamina" if fifo else None,
            dedup_id=str(uuid.uuid4()) if fifo else None,
        )
        (result,) = self.send_messages(name, [message], self._account.account_id)
        if isinstance(result, LaminaError):
            raise result

    # event source mappings

    def mappings(self) -> list[EventSourceMapping]:
        return self._store.list_mappings()

    def on_mappings_changed(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    # housekeeping

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="queue-sweeper")

    async def _sweep(self) -> None:
        while True:
            try:
                expired = await self.offload(self._store.expire, self._clock.time())
            except Exception:
                log.exception("could not delete expired queue messages")
            else:
                if expired:
                    log.info("deleted %d queue messages past their retention period", expired)
            await asyncio.sleep(SWEEP_INTERVAL)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper


class _Wakeups:
    """Each queue's long polls wait on one event, replaced whenever it fires. `notify` may
    be called from any thread; the events live on the event loop."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def event(self, name: str) -> asyncio.Event:
        self._loop = asyncio.get_running_loop()
        event = self._events.get(name)
        if event is None:
            event = self._events[name] = asyncio.Event()
        return event

    def notify(self, name: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fire(name)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._fire, name)

    def _fire(self, name: str) -> None:
        event = self._events.pop(name, None)
        if event is not None:
            event.set()

    def waiting(self) -> int:
        return len(self._events)


def _message(queue: Queue, new: NewMessage, sender_id: str, now: float) -> Message:
    settings = queue.settings
    delay = settings.delay if new.delay is None else new.delay
    dedup_id = new.dedup_id
    if settings.fifo and dedup_id is None:
        dedup_id = content_dedup_id(new.body)
    system = {"SenderId": sender_id}
    trace = new.system_attributes.get("AWSTraceHeader")
    if trace is not None and trace.string_value:
        system["AWSTraceHeader"] = trace.string_value
    return Message(
        queue=queue.name,
        id=str(uuid.uuid4()),
        seq=0,
        body=new.body,
        sent_at=now,
        visible_at=now + delay,
        attributes=dict(new.attributes),
        system=system,
        group_id=new.group_id,
        dedup_id=dedup_id if settings.fifo else None,
    )


def _typed(value: str) -> MessageAttribute:
    kind = "Number" if is_number(value) else "String"
    return MessageAttribute(kind, string_value=value)


def _encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidParameterValue(f"Invalid NextToken value {token!r}.") from None
