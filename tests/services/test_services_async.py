"""Asynchronous (`Event`) invocations: the durable queue in a real SqliteStore, run by the
AsyncInvoker through the invoke service on fakes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.services.fakes import Fail, Gate, Harness, Script, settle

from lamina.core.errors import RequestTooLargeException, ResourceNotFoundException
from lamina.core.invocation import MAX_ASYNC_PAYLOAD
from lamina.core.models import EventStatus, QueuedEvent
from lamina.services.async_invoke import AsyncInvoker
from lamina.store.sqlite import SqliteStore


class RecordingStore(SqliteStore):
    """The real store, remembering every status change of the queue."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.transitions: list[tuple[str, EventStatus, int]] = []

    def set_event_status(self, event_id: str, status: EventStatus, attempts: int) -> None:
        self.transitions.append((event_id, status, attempts))
        super().set_event_status(event_id, status, attempts)

    def status(self, event_id: str) -> tuple[EventStatus, int]:
        (event,) = [e for e in self.list_events() if e.id == event_id]
        return event.status, event.attempts


@contextlib.asynccontextmanager
async def queue(
    tmp_path: Path, max_running: int = 64
) -> AsyncIterator[tuple[Harness, RecordingStore, AsyncInvoker]]:
    store = RecordingStore(tmp_path / "state" / "lamina.db")
    try:
        async with Harness(tmp_path) as h:
            events = AsyncInvoker(
                store=store, invoke=h.invoker, clock=h.clock, max_running=max_running
            )
            try:
                yield h, store, events
            finally:
                await stop(events)
    finally:
        store.close()


async def stop(events: AsyncInvoker) -> None:
    """Close the invoker once its worker is back asleep: on Python 3.11 a cancel that lands
    just after a wake-up is swallowed (see test_close_right_after_a_submit_returns)."""
    await settle()
    await events.close()


async def poll(h: Harness) -> None:
    """Let the worker's periodic poll (every 0.5 s of loop time) come round once."""
    h.warp.advance(0.5)
    await settle()


async def test_an_event_is_stored_pending_then_run_and_marked_succeeded(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn")

        event_id = events.submit("fn", None, b'{"n": 1}')

        assert store.list_events() == [
            QueuedEvent(
                id=event_id,
                function_name="fn",
                qualifier="$LATEST",
                payload=b'{"n": 1}',
                enqueued_at=h.clock.time(),
            )
        ]
        assert h.driver.specs == []

        events.start()
        await settle(lambda: store.status(event_id) == ("succeeded", 1))

        assert store.transitions == [(event_id, "running", 0), (event_id, "succeeded", 1)]
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

        assert store.list_events() == []


async def test_a_function_error_fails_the_event_after_one_attempt(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn")
        h.driver.default_script = Script(handler=lambda runtime, invocation: Fail())
        events.start()

        event_id = events.submit("fn", None, b"{}")
        await settle(lambda: store.status(event_id) == ("failed", 1))

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
        await settle(lambda: (event_id, "pending", 0) in store.transitions)

        # A throttle is not an attempt, and the event waits out its backoff (1 s) ...
        assert store.status(event_id) == ("pending", 0)
        await poll(h)
        h.clock.advance(0.9)
        await poll(h)
        assert store.transitions == [(event_id, "running", 0), (event_id, "pending", 0)]

        # ... is throttled again once it is over, and then waits 2 s ...
        h.clock.advance(0.1)
        await poll(h)
        assert store.transitions.count((event_id, "pending", 0)) == 2
        h.clock.advance(1.9)
        await poll(h)
        assert store.transitions.count((event_id, "running", 0)) == 2

        # ... and runs once the function has room.
        gate.open()
        await busy
        h.clock.advance(0.1)
        await poll(h)
        await settle(lambda: store.status(event_id) == ("succeeded", 1))
        assert h.received() == ["sync", event_id]


async def test_an_event_for_a_deleted_function_is_failed(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn")
        event_id = events.submit("fn", None, b"{}")
        h.registry.remove("fn")

        events.start()
        await settle(lambda: store.status(event_id)[0] == "failed")

        assert store.status(event_id) == ("failed", 0)
        assert h.driver.specs == []
        assert events.completed == 0


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

        second = AsyncInvoker(store=store, invoke=h.invoker, clock=h.clock)
        second.start()
        try:
            await settle(lambda: store.status(event_id) == ("succeeded", 1))
        finally:
            await stop(second)
        assert h.received() == [event_id, event_id]  # at least once


async def test_running_events_of_a_dead_process_are_claimed_at_start(tmp_path: Path) -> None:
    async with queue(tmp_path) as (h, store, events):
        h.deploy("fn")
        store.enqueue_event(
            QueuedEvent("left-behind", "fn", "$LATEST", b"{}", h.clock.time(), status="running")
        )
        store.enqueue_event(QueuedEvent("pending-too", "fn", "$LATEST", b"{}", h.clock.time()))

        events.start()
        await settle(lambda: {e.status for e in store.list_events()} == {"succeeded"})

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
            await settle(lambda: (event_id, "pending", 0) in store.transitions)
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
        h.deploy("disabled", reserved=0)  # how Lambda users switch a function off
        h.deploy("fn")
        events.submit("disabled", None, b"{}")
        events.submit("disabled", None, b"{}")
        h.clock.advance(1)
        later = events.submit("fn", None, b"{}")

        events.start()
        for _ in range(5):
            await poll(h)
            h.clock.advance(1)
        await poll(h)

        assert store.status(later) == ("succeeded", 1), (
            "an event of another function waited behind throttled ones"
        )
