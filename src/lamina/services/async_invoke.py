"""Asynchronous (`Event`) invocations: accepted into the store, run in the background.

An event is durable before the caller gets its 202: it is written to the store's queue
first. The worker claims pending events (and `running` ones a previous process left behind
when it died, so none is lost across a crash or restart), runs them through the invoke
service, and records the outcome. A throttled event goes back to the queue and is tried
again later; it is not an attempt. Retries of failed events, maximum event age and
dead-letter handling are built on this queue by the event-source layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from lamina.core.clock import Clock
from lamina.core.errors import (
    RequestTooLargeException,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from lamina.core.invocation import MAX_ASYNC_PAYLOAD, Outcome
from lamina.core.models import QueuedEvent
from lamina.core.ports import Store
from lamina.services.invoke import InvokeService

log = logging.getLogger(__name__)

THROTTLE_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class AsyncInvoker:
    def __init__(
        self, *, store: Store, invoke: InvokeService, clock: Clock, max_running: int = 64
    ) -> None:
        self._store = store
        self._invoke = invoke
        self._clock = clock
        self._max_running = max_running
        self._running: dict[str, asyncio.Task[None]] = {}
        self._not_before: dict[str, tuple[float, int]] = {}  # throttled: (time, throttles)
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.completed = 0

    def __repr__(self) -> str:
        return f"<AsyncInvoker running={len(self._running)} completed={self.completed}>"

    def submit(self, name: str, qualifier: str | None, payload: bytes) -> str:
        """Accept an event (the caller then answers 202). Raises for unknown functions."""
        self._invoke.resolve(name, qualifier)
        if len(payload) > MAX_ASYNC_PAYLOAD:
            raise RequestTooLargeException(
                f"Request must be smaller than {MAX_ASYNC_PAYLOAD} bytes for the "
                "InvokeAsync operation"
            )
        event = QueuedEvent(
            id=str(uuid.uuid4()),
            function_name=name,
            qualifier=qualifier or "$LATEST",
            payload=payload,
            enqueued_at=self._clock.time(),
        )
        self._store.enqueue_event(event)
        self._wake.set()
        return event.id

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="async-invoker")

    async def _run(self) -> None:
        while True:
            self._claim()
            self._wake.clear()
            # Not asyncio.wait_for: on 3.11 it can swallow the cancellation close() sends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._wake.wait()

    def _claim(self) -> None:
        free = self._max_running - len(self._running)
        if free <= 0:
            return
        now = self._clock.monotonic()
        # Events waiting out a backoff are fetched but skipped: fetch past them, or a few
        # throttled events at the head of the queue would starve everything behind them.
        waiting = sum(1 for not_before, _ in self._not_before.values() if not_before > now)
        for event in self._store.claimable_events(free + len(self._running) + waiting):
            if event.id in self._running:
                continue
            not_before = self._not_before.get(event.id)
            if not_before is not None and not_before[0] > now:
                continue
            self._store.set_event_status(event.id, "running", event.attempts)
            task = asyncio.create_task(self._execute(event), name=f"event-{event.id}")
            self._running[event.id] = task
            if len(self._running) >= self._max_running:
                return

    async def _execute(self, event: QueuedEvent) -> None:
        try:
            response = await self._invoke.invoke(
                event.function_name, event.qualifier, event.payload, request_id=event.id
            )
        except TooManyRequestsException:
            self._back_off(event)
        except ResourceNotFoundException:
            log.warning("event %s: function %s no longer exists", event.id, event.function_name)
            self._not_before.pop(event.id, None)
            self._store.set_event_status(event.id, "failed", event.attempts)
        except Exception:
            log.exception("event %s could not be run; trying again later", event.id)
            self._back_off(event)
        else:
            self._not_before.pop(event.id, None)
            ok = response.result.outcome is Outcome.SUCCESS
            self._store.set_event_status(
                event.id, "succeeded" if ok else "failed", event.attempts + 1
            )
            self.completed += 1
        finally:
            self._running.pop(event.id, None)
            self._wake.set()

    def _back_off(self, event: QueuedEvent) -> None:
        """Back to the queue, to be tried again after a growing delay."""
        _, tries = self._not_before.get(event.id, (0.0, 0))
        delay = THROTTLE_BACKOFF[min(tries, len(THROTTLE_BACKOFF) - 1)]
        self._not_before[event.id] = (self._clock.monotonic() + delay, tries + 1)
        self._store.set_event_status(event.id, "pending", event.attempts)

    async def close(self) -> None:
        """Stop claiming; events still running are left `running` and rerun after restart."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
