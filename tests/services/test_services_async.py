"""Asynchronous (`Event`) invocations: the durable queue in a real SqliteStore, run by the
AsyncInvoker through the invoke service on fakes. The retry contract itself is tested in
test_async_retry.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from tests.services.fakes import Fail, Gate, Harness, Script, settle
from tests.services.test_async_fakes import async_invoker, stop

from lamina.core.errors import RequestTooLargeException, ResourceNotFoundException
from lamina.core.invocation import MAX_ASYNC_PAYLOAD
from lamina.core.models import EventStatus, QueuedEvent
from lamina.core.retry import EventInvokeConfig
from lamina.services.async_invoke import AsyncInvoker
from lamina.store.events import SqliteEventInvokeConfigStore, SqliteEventStore
from lamina.store.sqlite import SqliteStore


class RecordingStore(SqliteStore):
    """The real store, with a view of its event queue that remembers every state saved."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.queue = RecordingQueue(self)

    def status(self, event_id: str) -> tuple[EventStatus, int]:
        event = self.queue.get(event_id)
        assert event is not None, event_id
        return event.status, event.attempts


class RecordingQueue(SqliteEventStore):
    def __init__(self, store: SqliteStore) -> None:
        super().__init__(store)
        self.transitions: list[tuple[str, EventStatus, int]] = []

    def claim(self, now: float, limit: int, busy: object = ()) -> list[QueuedEvent]:
        claimed = super().claim(now, limit, busy)  # type: ignore[arg-type]
        self.transitions += [(e.id, e.status, e.attempts) for e in claimed]
        return claimed

    def save(self, event: QueuedEvent, hand_on: Sequence[QueuedEvent] = ()) -> None:
        self.transitions.append((event.id, event.status, event.attempts))
        super().save(event, hand_on)


def invoker(store: RecordingStore, h: Harness, max_running: int = 64) -> AsyncInvoker:
    return async_invoker(store, h, queue=store.queue, max_running=max_running)


@contextlib.asynccontextmanager
async def queue(
    tmp_path: Path, max_running: int = 64
) -> AsyncIterator[tuple[Harness, RecordingStore, AsyncInvoker]]:
    store = RecordingStore(tmp_path / "state" / "lamina.db")
    try:
        async with Harness(tmp_path) as h:
            events = invoker(store, h, max_running)
            try:
                yield h, store, events
            finally:
                await stop(events)
    finally:
        store.close()


async def later(h: Harness, events: AsyncInvoker, seconds: float) -> None:
    """Let `seconds` pass on the platform's clock and the loop's, and the worker look."""
    h.clock.advance(seconds)
    h.warp.advance(seconds)
    events.wake()
    await settle()


async def test_an_event_is_stored_pending_then_run_and_marked_succeeded(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn")

        event_id = events.submit("fn", None, b'{"n": 1}')

        assert store.queue.list() == [
            QueuedEvent(
                id=event_id,
                function_name="fn",
                qualifier="$LATEST",
                payload=b'{"n": 1}',
                enqueued_at=h.clock.time(),
                updated_at=h.clock.time(),
            )
        ]
        assert h.driver.specs == []

        events.start()
        await settle(lambda: store.status(event_id) == ("succeeded", 1))

        assert store.queue.transitions == [(event_id, "running", 0), (event_id, "succeeded", 1)]
        (invocation,) = h.driver.runtimes[0].invocations
        assert invocation.request_id == event_id
        assert invocation.payload == b'{"n": 1}'
        assert events.completed == 1
        assert h.ledger.in_flight == {}


async def test_submit_refuses_unknown_functions_and_large_payloads(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn")

        with pytest.raises(ResourceNotFoundException):
            events.submit("missing", None, b"{}")
        with pytest.raises(RequestTooLargeException):
            events.submit("fn", None, b"x" * (MAX_ASYNC_PAYLOAD + 1))

        assert store.queue.list() == []


async def test_without_retries_a_function_error_makes_the_event_dead_after_one_attempt(
    tmp_path: Path,
) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn")
        SqliteEventInvokeConfigStore(store).put(
            "fn", "", EventInvokeConfig(maximum_retry_attempts=0), 0.0
        )
        h.driver.default_script = Script(handler=lambda runtime, invocation: Fail())
        events.start()

        event_id = events.submit("fn", None, b"{}")
        await settle(lambda: store.status(event_id) == ("dead", 1))

        assert events.completed == 1


async def test_a_throttled_event_goes_back_to_pending_with_a_backoff(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn", reserved=1)
        gate = Gate()
        h.driver.scripts.append(Script(handler=gate))
        busy = h.start_invoke("fn", request_id="sync")
        await settle(lambda: gate.waiting == 1)
        events.start()

        event_id = events.submit("fn", None, b"{}")
        await settle(lambda: (event_id, "pending", 0) in store.queue.transitions)

        # A throttle is not an attempt, and the event waits out its backoff (1 s) ...
        (event,) = store.queue.list()
        assert (event.status, event.attempts, event.throttles) == ("pending", 0, 1)
        assert event.not_before == h.clock.time() + 1.0
        await later(h, events, 0.9)
        assert store.queue.transitions == [(event_id, "running", 0), (event_id, "pending", 0)]

        # ... is throttled again once it is over, and then waits 2 s ...
        await later(h, events, 0.1)
        assert store.queue.transitions.count((event_id, "pending", 0)) == 2
        await later(h, events, 1.9)
        assert store.queue.transitions.count((event_id, "running", 0)) == 2

        # ... and runs once the function has room.
        gate.open()
        await busy
        await later(h, events, 0.1)
        await settle(lambda: store.status(event_id) == ("succeeded", 1))
        assert h.received() == ["sync", event_id]


async def test_the_worker_sleeps_until_the_next_event_is_due(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn", reserved=1)
        gate = Gate()
        h.driver.scripts.append(Script(handler=gate))
        busy = h.start_invoke("fn", request_id="sync")
        await settle(lambda: gate.waiting == 1)
        events.start()
        event_id = events.submit("fn", None, b"{}")
        await settle(lambda: store.status(event_id) == ("pending", 0))
        gate.open()
        await busy

        # Only loop time passes (no wake-up): the worker's own timer brings it back.
        h.clock.advance(1.0)
        h.warp.advance(1.0)
        await asyncio.sleep(0.01)
        await settle(lambda: store.status(event_id) == ("succeeded", 1))


async def test_an_event_for_a_deleted_function_is_dead(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn")
        event_id = events.submit("fn", None, b"{}")
        h.registry.remove("fn")

        events.start()
        await settle(lambda: store.status(event_id)[0] == "dead")

        assert store.status(event_id) == ("dead", 0)
        event = store.queue.get(event_id)
        assert event is not None
        assert event.detail["outcome"]["error_type"] == "ResourceNotFoundException"
        assert h.driver.specs == []


async def test_events_left_running_are_run_again_after_a_restart(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, store, first):
        h.deploy("fn")
        gate = Gate()
        h.driver.scripts.append(Script(handler=gate))
        event_id = first.submit("fn", None, b'{"n": 1}')
        first.start()
        await settle(lambda: gate.waiting == 1)
        first_pid = h.pid_that_served(event_id)

        await stop(first)

        assert store.status(event_id) == ("running", 0)
        # The interrupted invocation's environment is not handed out again.
        assert h.driver.process(first_pid).killed
        assert h.ledger.in_flight == {}
        assert h.ledger.memory_in_use_mb == 0

        second = invoker(store, h)
        second.start()
        try:
            await settle(lambda: store.status(event_id) == ("succeeded", 1))
        finally:
            await stop(second)
        assert h.received() == [event_id, event_id]  # at least once


async def test_running_events_of_a_dead_process_are_claimed_at_start(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn")
        now = h.clock.time()
        left = QueuedEvent("left-behind", "fn", "$LATEST", b"{}", now, status="running")
        store.queue.enqueue(left)
        store.queue.enqueue(QueuedEvent("pending-too", "fn", "$LATEST", b"{}", now))

        events.start()
        await settle(lambda: {e.status for e in store.queue.list()} == {"succeeded"})

        assert sorted(h.received()) == ["left-behind", "pending-too"]


async def test_an_event_that_could_not_be_run_is_not_retried_in_a_busy_loop(
    tmp_path: Path,
) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn")
        h.driver.crash_starts = 1_000_000  # a platform fault, not the function's
        events.start()

        event_id = events.submit("fn", None, b"{}")
        try:
            await settle(lambda: (event_id, "pending", 0) in store.queue.transitions)
            await settle()  # the loop turns; the clock does not move

            assert len(h.driver.specs) == 1, (
                f"{len(h.driver.specs)} starts without any time passing: retried in a busy loop"
            )
            assert store.status(event_id) == ("pending", 0)
        finally:
            h.driver.crash_starts = 0  # let the worker calm down before it is closed
            await settle()


async def test_close_right_after_a_submit_returns(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, _store, events):
        h.deploy("fn")
        events.start()
        await settle()  # the worker waits for work

        events.submit("fn", None, b"{}")  # wakes the worker up
        closing = asyncio.create_task(events.close())
        await settle()
        try:
            assert closing.done(), "close() never returns: the worker swallowed its cancel"
        finally:
            await stop(events)  # a second cancel does reach the worker
            await closing


async def test_throttled_events_do_not_starve_other_functions(tmp_path: Path) -> None:
    async with queue(tmp_path, max_running=2) as (h, store, events):
        h.deploy("busy", reserved=1)
        h.deploy("fn")
        gate = Gate()
        h.driver.scripts.append(Script(handler=gate))
        held = h.start_invoke("busy", request_id="sync")
        await settle(lambda: gate.waiting == 1)
        events.submit("busy", None, b"{}")
        events.submit("busy", None, b"{}")
        h.clock.advance(1)
        later_id = events.submit("fn", None, b"{}")

        events.start()
        for _ in range(5):
            await later(h, events, 1)

        assert store.status(later_id) == ("succeeded", 1), (
            "an event of another function waited behind throttled ones"
        )
        gate.open()
        await held


async def test_finished_events_are_pruned_after_a_day(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn")
        events.start()
        event_id = events.submit("fn", None, b"{}")
        await settle(lambda: store.status(event_id) == ("succeeded", 1))

        await later(h, events, 86_400 + 3600)

        assert store.queue.get(event_id) is None
