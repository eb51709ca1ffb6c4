"""`sqs` event source mappings: functions consuming queues, as Lambda's pollers do.

Each enabled mapping has pollers. A poller long-polls its queue in-process (woken by a
send, no busy loop), gathers a batch of up to `batchSize` messages within
`maximumBatchingWindow` seconds, and invokes the function synchronously with Lambda's SQS
event. Then:

- success: the batch is deleted; with `ReportBatchItemFailures`, all but the messages the
  function listed in `batchItemFailures` (an answer Lambda cannot read fails the batch);
- function error, timeout or crash: nothing is deleted; the messages reappear when their
  visibility timeout ends, and after `maxReceiveCount` receives go to the queue's
  dead-letter queue;
- throttled: the poller backs off (1 s, 2 s, 5 s, ...) and retries the same batch while
  its messages are still hidden, and extra pollers stop.

Scaling, in the spirit of Lambda's: a mapping starts with one poller; each poller that
receives a full batch adds another, up to `maximumConcurrency` (default 5) and never above
the function's reserved concurrency; a poller other than the last stops when its long
poll comes back empty, or after a throttle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Literal, Protocol

import orjson

from lamina.core.clock import Clock
from lamina.core.errors import (
    LaminaError,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from lamina.core.invocation import MAX_PAYLOAD, Outcome
from lamina.core.models import Account
from lamina.core.queue_messages import Message
from lamina.core.queues import MAX_WAIT, EventSourceMapping, QueueDoesNotExist
from lamina.services.invoke import InvokeResponse
from lamina.services.queues import QueueService
from lamina.services.registry import DeployedFunction
from lamina.wire.sqs import batch_item_failures, lambda_record

log = logging.getLogger(__name__)

DEFAULT_MAX_POLLERS = 5
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
MISSING_RETRY = 5.0  # seconds between looks for a queue that does not exist (yet)
# The event must fit the 6 MB synchronous payload; each record adds its envelope.
MAX_EVENT_BYTES = MAX_PAYLOAD - 64 * 1024
RECORD_OVERHEAD = 1024

Settled = Literal["invoked", "throttled", "no function"]


class Invoker(Protocol):
    """What a consumer needs of `InvokeService`."""

    def resolve(self, name: str, qualifier: str | None) -> DeployedFunction: ...

    async def invoke(
        self,
        name: str,
        qualifier: str | None,
        payload: bytes,
        *,
        client_context: str | None = None,
        request_id: str | None = None,
    ) -> InvokeResponse: ...


class MappingConsumer:
    """The pollers of one event source mapping."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        *,
        queues: QueueService,
        invoke: Invoker,
        clock: Clock,
        account: Account,
        backoff: Sequence[float] = BACKOFF,
    ) -> None:
        self.mapping = mapping
        self._backoff = backoff
        self._queues = queues
        self._invoke = invoke
        self._clock = clock
        self._account = account
        self._pollers: set[asyncio.Task[None]] = set()
        self._busy: set[asyncio.Task[None]] = set()
        self._closing = False
        self._missing_logged = False
        self.batches = 0
        self.deleted = 0
        self.failed = 0
        self.throttles = 0
        self.peak_pollers = 0

    def __repr__(self) -> str:
        m = self.mapping
        return (
            f"<MappingConsumer {m.queue} -> {m.function_name} pollers={len(self._pollers)} "
            f"batches={self.batches} failed={self.failed}>"
        )

    def statistics(self) -> dict[str, object]:
        m = self.mapping
        return {
            "uuid": m.uuid,
            "queue": m.queue,
            "function": m.function_name,
            "qualifier": m.qualifier,
            "enabled": m.enabled,
            "pollers": len(self._pollers),
            "peak_pollers": self.peak_pollers,
            "busy": len(self._busy),
            "batches": self.batches,
            "deleted": self.deleted,
            "failed": self.failed,
            "throttles": self.throttles,
        }

    @property
    def pollers(self) -> int:
        return len(self._pollers)

    def start(self) -> None:
        if self.mapping.enabled:
            self._spawn()

    def limit(self) -> int:
        """How many pollers (so concurrent invocations) this mapping may have."""
        limit = self.mapping.maximum_concurrency or DEFAULT_MAX_POLLERS
        try:
            reserved = self._invoke.resolve(
                self.mapping.function_name, self.mapping.qualifier
            ).config.reserved_concurrency
        except LaminaError:
            reserved = None
        if reserved is not None:
            limit = min(limit, max(reserved, 1))
        return limit

    def _spawn(self) -> None:
        name = f"sqs-{self.mapping.queue}-{self.mapping.function_name}-{len(self._pollers)}"
        task = asyncio.create_task(self._poll(), name=name)
        self._pollers.add(task)
        self.peak_pollers = max(self.peak_pollers, len(self._pollers))
        task.add_done_callback(self._pollers.discard)

    def _retire(self) -> bool:
        """Stop the calling poller unless it is the last one."""
        if len(self._pollers) <= 1:
            return False
        task = asyncio.current_task()
        # Leave the set now, not when the task is done: a second poller deciding in the
        # same tick must see this one gone.
        self._pollers.discard(task)
        return True

    async def _poll(self) -> None:
        while not self._closing:
            try:
                batch = await self._gather()
            except QueueDoesNotExist:
                if not self._missing_logged:
                    log.warning("sqs event source: queue %s does not exist", self.mapping.queue)
                    self._missing_logged = True
                await asyncio.sleep(MISSING_RETRY)
                continue
            except Exception:
                log.exception("sqs event source %s: receive failed", self.mapping.uuid)
                await asyncio.sleep(MISSING_RETRY)
                continue
            self._missing_logged = False
            if not batch:
                if self._retire():
                    return
                continue
            if len(batch) >= self.mapping.batch_size and len(self._pollers) < self.limit():
                self._spawn()  # a full batch: there is a backlog
            task = asyncio.current_task()
            assert task is not None
            self._busy.add(task)
            try:
                settled = await self._process(batch)
            finally:
                self._busy.discard(task)
            if settled == "throttled" and self._retire():
                return
            if settled == "no function":
                await asyncio.sleep(MISSING_RETRY)

    async def _gather(self) -> list[Message]:
        m = self.mapping
        batch = await self._queues.receive(m.queue, m.batch_size, None, MAX_WAIT)
        if batch and m.maximum_batching_window > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + m.maximum_batching_window
            while len(batch) < m.batch_size and not self._closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                batch += await self._queues.receive(
                    m.queue, m.batch_size - len(batch), None, remaining
                )
        return await self._fit(batch)

    async def _fit(self, batch: list[Message]) -> list[Message]:
        """As much of the batch as fits one invocation's payload; the rest is released."""
        size = 0
        for index, message in enumerate(batch):
            size += len(message.body.encode()) + RECORD_OVERHEAD
            if size > MAX_EVENT_BYTES and index > 0:
                rest = [(m.receipt_handle, 0) for m in batch[index:]]
                await self._queues.offload(self._queues.change_visibility, self.mapping.queue, rest)
                return batch[:index]
        return batch

    async def _process(self, batch: list[Message]) -> Settled:
        """Invoke with the batch and settle it."""
        m = self.mapping
        arn = self._queues.arn(m.queue)
        event = {"Records": [lambda_record(x, arn, self._account.region) for x in batch]}
        payload = orjson.dumps(event)
        # Retrying is worth it only while the batch is still hidden from other receivers.
        budget = min(x.visible_at for x in batch) - self._clock.time()
        throttles, waited = 0, 0.0
        while True:
            try:
                response = await self._invoke.invoke(m.function_name, m.qualifier, payload)
                break
            except TooManyRequestsException:
                self.throttles += 1
                delay = self._backoff[min(throttles, len(self._backoff) - 1)]
                throttles += 1
                if self._closing or waited + delay >= budget:
                    return "throttled"  # they reappear when their visibility timeout ends
                await asyncio.sleep(delay)
                waited += delay
            except ResourceNotFoundException:
                log.warning(
                    "sqs event source %s: function %s does not exist; messages stay queued",
                    m.uuid,
                    m.function_name,
                )
                return "no function"
        self.batches += 1
        ids = [x.id for x in batch]
        failed: set[str] | None = set(ids)
        if response.result.outcome is Outcome.SUCCESS:
            failed = set()
            if m.report_batch_item_failures:
                failed = batch_item_failures(response.result.payload, ids)
        if failed is None:
            failed = set(ids)
        done = [x.receipt_handle for x in batch if x.id not in failed]
        if done:
            await self._queues.offload(self._queues.delete_messages, m.queue, done)
        self.deleted += len(done)
        self.failed += len(failed)
        return "throttled" if throttles else "invoked"

    async def close(self, grace: float = 0.0) -> None:
        """Stop polling; a batch being processed may finish within `grace` seconds."""
        self._closing = True
        for task in self._pollers - self._busy:
            task.cancel()
        if self._busy and grace > 0:
            await asyncio.wait(set(self._busy), timeout=grace)
        for task in self._pollers | self._busy:
            task.cancel()
        tasks = self._pollers | self._busy
        await asyncio.gather(*tasks, return_exceptions=True)


class EventSourceConsumers:
    """Every mapping's consumer, kept in step with the stored mappings."""

    def __init__(
        self,
        *,
        queues: QueueService,
        invoke: Invoker,
        clock: Clock,
        account: Account,
        backoff: Sequence[float] = BACKOFF,
    ) -> None:
        self._backoff = backoff
        self._queues = queues
        self._invoke = invoke
        self._clock = clock
        self._account = account
        self._consumers: dict[str, MappingConsumer] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        pollers = sum(c.pollers for c in self._consumers.values())
        return f"<EventSourceConsumers mappings={len(self._consumers)} pollers={pollers}>"

    def statistics(self) -> list[dict[str, object]]:
        return [c.statistics() for c in self._consumers.values()]

    def consumer(self, uuid: str) -> MappingConsumer | None:
        return self._consumers.get(uuid)

    def start(self) -> int:
        """Start the stored mappings' consumers (at start-up); follow later changes."""
        self._loop = asyncio.get_running_loop()
        self._queues.on_mappings_changed(self.changed)
        self.reconcile()
        return len(self._consumers)

    def changed(self) -> None:
        """The stored mappings changed (called by the queue service, from any thread)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.reconcile)

    def reconcile(self) -> None:
        wanted = {m.uuid: m for m in self._queues.mappings()}
        for uuid, consumer in list(self._consumers.items()):
            if wanted.get(uuid) != consumer.mapping:
                del self._consumers[uuid]
                self._stop(consumer)
        for uuid, mapping in wanted.items():
            if uuid not in self._consumers:
                consumer = MappingConsumer(
                    mapping,
                    queues=self._queues,
                    invoke=self._invoke,
                    clock=self._clock,
                    account=self._account,
                    backoff=self._backoff,
                )
                self._consumers[uuid] = consumer
                consumer.start()

    def _stop(self, consumer: MappingConsumer) -> None:
        task = asyncio.create_task(consumer.close(self._grace(consumer)))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def _grace(self, consumer: MappingConsumer) -> float:
        m = consumer.mapping
        try:
            return float(self._invoke.resolve(m.function_name, m.qualifier).config.timeout) + 1
        except LaminaError:
            return 1.0

    async def close(self) -> None:
        """Stop every consumer; batches in flight finish within their function's timeout."""
        consumers = list(self._consumers.values())
        self._consumers.clear()
        await asyncio.gather(*(c.close(self._grace(c)) for c in consumers))
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._stopping, return_exceptions=True)
