"""Asynchronous (`Event`) invocations: accepted into the store, run in the background with
Lambda's retry contract (the policy is `core.retry`; where outcomes go, `async_delivery`).

Crash safety: every state change is written before it is acted on. An event is stored
before the caller gets its 202; it is marked `running` before it is invoked; a retry's wait,
an attempt's outcome and a conclusion are written before the next step. At start-up, events
a dead process left `running` are pending again and `delivering` ones are delivered again,
so nothing accepted is lost (at least once; a killed attempt does not count and runs again).

The worker sleeps until the earliest waiting event is due or something wakes it (a submit,
a finished event, a schedule firing); at most `MAX_SLEEP` seconds, so that a changed wall
clock or a pruning round is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Collection, Iterable
from typing import Protocol

from lamina.core.clock import Clock
from lamina.core.destinations import Outcome
from lamina.core.errors import (
    RequestTooLargeException,
    ResourceConflictException,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from lamina.core.invocation import MAX_ASYNC_PAYLOAD
from lamina.core.invocation import Outcome as Result
from lamina.core.models import Account, EventStatus, QueuedEvent
from lamina.core.ports import QueueBroker
from lamina.core.retry import (
    DEFAULT_RETRY_DELAY,
    Condition,
    Decision,
    EventInvokeConfig,
    GiveUp,
    Retry,
    after_error,
    after_throttle,
    expired,
)
from lamina.core.scheduling import Ledger
from lamina.services.async_delivery import Delivery, outcome_from_json, outcome_json
from lamina.services.invoke import InvokeService

log = logging.getLogger(__name__)

MAX_SLEEP = 60.0
FINISHED_KEPT = 86_400.0  # seconds succeeded and failed events stay visible
PRUNE_EVERY = 3600.0


class EventQueue(Protocol):
    """`lamina.store.events.SqliteEventStore`."""

    def enqueue(self, event: QueuedEvent) -> None: ...
    def recover(self) -> int: ...
    def claim(self, now: float, limit: int, busy: Collection[str] = ()) -> list[QueuedEvent]: ...
    def next_due(self) -> float | None: ...
    def save(self, event: QueuedEvent, hand_on: list[QueuedEvent]) -> None: ...
    def get(self, event_id: str) -> QueuedEvent | None: ...
    def list(
        self,
        statuses: Iterable[EventStatus] = (),
        function_name: str | None = None,
        limit: int = 1000,
    ) -> list[QueuedEvent]: ...
    def counts(self) -> dict[str, int]: ...
    def prune(self, before: float) -> int: ...


class InvokeConfigs(Protocol):
    """`lamina.store.events.SqliteEventInvokeConfigStore`."""

    def effective(self, function_name: str, qualifier: str) -> EventInvokeConfig: ...


class AsyncInvoker:
    def __init__(
        self,
        *,
        queue: EventQueue,
        configs: InvokeConfigs,
        invoke: InvokeService,
        ledger: Ledger,
        clock: Clock,
        account: Account,
        queues: QueueBroker | None = None,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        max_running: int = 64,
    ) -> None:
        self._queue = queue
        self._configs = configs
        self._invoke = invoke
        self._ledger = ledger
        self._clock = clock
        self._retry_delay = retry_delay
        self._max_running = max_running
        self._delivery = Delivery(
            save=queue.save, resolve=invoke.resolve, clock=clock, account=account, queues=queues
        )
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._pruned = 0.0
        self.completed = 0  # events concluded (succeeded, failed or dead)

    def __repr__(self) -> str:
        return f"<AsyncInvoker running={len(self._running)} completed={self.completed}>"

    def statistics(self) -> dict[str, object]:
        return {"running": len(self._running), "completed": self.completed}

    def submit(self, name: str, qualifier: str | None, payload: bytes) -> str:
        """Accept an event (the caller then answers 202). Raises for unknown functions."""
        self._invoke.resolve(name, qualifier)
        if len(payload) > MAX_ASYNC_PAYLOAD:
            raise RequestTooLargeException(
                f"Request must be smaller than {MAX_ASYNC_PAYLOAD} bytes for the "
                "InvokeAsync operation"
            )
        now = self._clock.time()
        event = QueuedEvent(
            id=str(uuid.uuid4()),
            function_name=name,
            qualifier=qualifier or "$LATEST",
            payload=payload,
            enqueued_at=now,
            updated_at=now,
        )
        self._queue.enqueue(event)
        self.wake()
        return event.id

    def wake(self) -> None:
        """Look at the queue now (an event was added behind the invoker's back)."""
        self._wake.set()

    def redrive(self, event_id: str) -> QueuedEvent:
        """A dead event back to the queue, with a fresh attempt count and age."""
        event = self._queue.get(event_id)
        if event is None:
            raise ResourceNotFoundException(f"Event not found: {event_id}")
        if event.status != "dead":
            raise ResourceConflictException(
                f"event {event_id} is {event.status}; only dead events can be re-driven"
            )
        now = self._clock.time()
        again = dataclasses.replace(
            event,
            status="pending",
            attempts=0,
            throttles=0,
            not_before=0.0,
            enqueued_at=now,
            updated_at=now,
            detail={"redriven": int(event.detail.get("redriven", 0)) + 1},
        )
        self._queue.save(again, [])
        self.wake()
        return again

    # the worker

    def start(self) -> None:
        self._queue.recover()
        self._worker = asyncio.create_task(self._run(), name="async-invoker")

    async def _run(self) -> None:
        while True:
            claimed = self._claim()
            self._prune()
            self._wake.clear()
            delay = self._sleep_for(claimed)
            # Not asyncio.wait_for: on 3.11 it can swallow the cancellation close() sends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _claim(self) -> int:
        free = self._max_running - len(self._running)
        if free <= 0:
            return 0
        events = self._queue.claim(self._clock.time(), free, busy=set(self._running))
        for event in events:
            task = asyncio.create_task(self._execute(event), name=f"event-{event.id}")
            self._running[event.id] = task
        return len(events)

    def _sleep_for(self, claimed: int) -> float:
        if len(self._running) >= self._max_running:
            return MAX_SLEEP  # a finishing event wakes the worker
        due = self._queue.next_due()
        if due is None:
            return MAX_SLEEP
        wait = due - self._clock.time()
        if wait <= 0 and not claimed:
            # Due but not claimable: it is one of ours still running (a delivery).
            return MAX_SLEEP if self._running else 0.01
        return min(MAX_SLEEP, max(0.0, wait))

    def _prune(self) -> None:
        now = self._clock.monotonic()
        if self._pruned and now - self._pruned < PRUNE_EVERY:
            return
        self._pruned = now
        self._queue.prune(self._clock.time() - FINISHED_KEPT)

    async def _execute(self, event: QueuedEvent) -> None:
        try:
            if event.status == "delivering":
                self._finished(self._delivery.deliver(event))
            else:
                await self._attempt(event)
        except Exception:
            log.exception("event %s could not be handled; trying again later", event.id)
            self._platform_fault(event)
        finally:
            self._running.pop(event.id, None)
            self._wake.set()

    async def _attempt(self, event: QueuedEvent) -> None:
        name, qualifier = event.function_name, event.qualifier
        try:
            self._invoke.resolve(name, qualifier)
        except ResourceNotFoundException as exc:
            self._gone(event, exc)
            return
        config = self._configs.effective(name, qualifier)
        if expired(config, event.enqueued_at, self._clock.time()):
            self._conclude(event, Condition.EVENT_AGE_EXCEEDED, _last_outcome(event), config)
            return
        if self._ledger.reserved.get(name) == 0:
            # A function switched off: straight to its failure targets, no retries (Lambda).
            outcome = _throttled("ReservedFunctionConcurrentInvocationLimitExceeded")
            self._conclude(event, Condition.RETRIES_EXHAUSTED, outcome, config)
            return
        try:
            response = await self._invoke.invoke(
                name, qualifier, event.payload, request_id=event.id
            )
        except TooManyRequestsException as exc:
            self._retry_later(event, _throttled(exc.reason or exc.message), config)
            return
        except ResourceNotFoundException as exc:
            self._gone(event, exc)
            return
        result = response.result
        outcome = Outcome(
            status_code=200,
            executed_version=response.executed_version,
            function_error=result.function_error,
            payload=result.payload,
        )
        done = dataclasses.replace(event, attempts=event.attempts + 1, throttles=0)
        if result.outcome is Result.SUCCESS:
            self._conclude(done, Condition.SUCCESS, outcome, config)
            return
        decision = after_error(
            config, done.attempts, done.enqueued_at, self._clock.time(), self._retry_delay
        )
        self._decide(done, decision, outcome, config)

    def _retry_later(self, event: QueuedEvent, outcome: Outcome, config: EventInvokeConfig) -> None:
        """A throttle or platform fault: not an attempt; back off unless too old."""
        throttles = event.throttles + 1
        decision = after_throttle(config, throttles, event.enqueued_at, self._clock.time())
        self._decide(dataclasses.replace(event, throttles=throttles), decision, outcome, config)

    def _decide(
        self, event: QueuedEvent, decision: Decision, outcome: Outcome, config: EventInvokeConfig
    ) -> None:
        if isinstance(decision, GiveUp):
            self._conclude(event, decision.condition, outcome, config)
            return
        assert isinstance(decision, Retry)
        self._queue.save(
            dataclasses.replace(
                event,
                status="pending",
                not_before=decision.at,
                updated_at=self._clock.time(),
                detail={**event.detail, "outcome": outcome_json(outcome)},
            ),
            [],
        )

    def _conclude(
        self,
        event: QueuedEvent,
        condition: Condition,
        outcome: Outcome,
        config: EventInvokeConfig,
    ) -> None:
        saved = self._delivery.conclude(event, condition, outcome, config)
        if saved.status == "delivering":
            saved = self._delivery.deliver(saved)
        self._finished(saved)

    def _finished(self, event: QueuedEvent) -> None:
        if event.status in ("succeeded", "failed", "dead"):
            self.completed += 1
            if event.status == "dead":
                log.warning(
                    "event %s of %s is dead (%s): `lamina events redrive %s` runs it again",
                    event.id,
                    event.function_name,
                    event.detail.get("condition"),
                    event.id,
                )

    def _gone(self, event: QueuedEvent, exc: ResourceNotFoundException) -> None:
        """The function (or version, alias) no longer exists: dead, with nowhere to go."""
        log.warning("event %s: %s", event.id, exc.message)
        outcome = Outcome(
            status_code=404, error_type="ResourceNotFoundException", error_message=exc.message
        )
        now = self._clock.time()
        detail = {
            **{k: v for k, v in event.detail.items() if k == "redriven"},
            "condition": Condition.RETRIES_EXHAUSTED.value,
            "outcome": outcome_json(outcome),
        }
        dead = dataclasses.replace(event, status="dead", updated_at=now, detail=detail)
        self._queue.save(dead, [])
        self._finished(dead)

    def _platform_fault(self, event: QueuedEvent) -> None:
        """Our own failure while handling the event: back to the queue with a backoff."""
        outcome = Outcome(status_code=500, error_type="ServiceException", error_message="")
        try:
            if event.status == "delivering":
                # Keep delivering later; the decision is made already.
                now = self._clock.time()
                self._queue.save(
                    dataclasses.replace(event, not_before=now + 1.0, updated_at=now), []
                )
                return
            config = self._configs.effective(event.function_name, event.qualifier)
            self._retry_later(event, outcome, config)
        except Exception:
            # The store itself fails: the event stays as last saved (running events are
            # pending again at the next start), so it is not lost.
            log.exception("event %s: its state could not be saved", event.id)

    async def close(self) -> None:
        """Stop claiming; events still running are left `running` and rerun after restart."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)


def _throttled(reason: str) -> Outcome:
    return Outcome(
        status_code=429,
        error_type="TooManyRequestsException",
        error_message=f"Rate Exceeded. ({reason})",
    )


def _last_outcome(event: QueuedEvent) -> Outcome:
    saved = event.detail.get("outcome")
    if isinstance(saved, dict):
        return outcome_from_json(saved)
    return Outcome(
        status_code=429,
        error_type="EventAgeExceeded",
        error_message="the event was not run before its maximum age",
    )
