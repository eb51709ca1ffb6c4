"""The async retry contract end to end inside the services: retries with growing delays,
maximum age, destinations (functions and queues), the dead-letter queue, dead events and
their redrive, and delivery that survives a restart. Fakes for the runtime and the queue
service, a real SqliteStore, a fake clock."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.services.fakes import Fail, Harness, Respond, Script, settle
from tests.services.test_async_fakes import RecordingBroker, async_invoker, stop

from lamina.core.errors import ResourceConflictException, ResourceNotFoundException
from lamina.core.invocation import Invocation
from lamina.core.models import QueuedEvent
from lamina.core.retry import EventInvokeConfig
from lamina.services.async_invoke import AsyncInvoker
from lamina.store.events import SqliteEventInvokeConfigStore, SqliteEventStore
from lamina.store.sqlite import SqliteStore

ERROR = b'{"errorType": "ValueError", "errorMessage": "bad input"}'
DLQ_ARN = "arn:aws:sqs:us-east-1:000000000000:dlq"


class World:
    def __init__(self, h: Harness, store: SqliteStore, broker: RecordingBroker) -> None:
        self.h = h
        self.store = store
        self.broker = broker
        self.queue = SqliteEventStore(store)
        self.configs = SqliteEventInvokeConfigStore(store)
        self.events = self.invoker()

    def invoker(self) -> AsyncInvoker:
        return async_invoker(self.store, self.h, queues=self.broker, retry_delay=60.0)

    def configure(self, name: str, **fields: Any) -> None:
        self.configs.put(name, "", EventInvokeConfig(**fields), 0.0)

    def event(self, event_id: str) -> QueuedEvent:
        event = self.queue.get(event_id)
        assert event is not None
        return event

    def of(self, name: str) -> list[QueuedEvent]:
        return self.queue.list(function_name=name)

    async def later(self, seconds: float) -> None:
        self.h.clock.advance(seconds)
        self.h.warp.advance(seconds)
        self.events.wake()
        await settle()


@contextlib.asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = SqliteStore(tmp_path / "state" / "lamina.db")
    try:
        async with Harness(tmp_path) as h:
            w = World(h, store, RecordingBroker(known={"dlq", "results"}))
            try:
                yield w
            finally:
                await stop(w.events)
    finally:
        store.close()


def failing(runtime: object, invocation: Invocation) -> Fail:
    return Fail(ERROR)


def received_by(h: Harness, name: str) -> list[Invocation]:
    return [
        i
        for r in h.driver.runtimes
        if r.process.spec.env.get("AWS_LAMBDA_FUNCTION_NAME") == name
        for i in r.invocations
    ]


async def test_a_failing_event_is_tried_three_times_with_growing_delays_then_dead(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("fn")
        w.h.driver.default_script = Script(handler=failing)
        w.events.start()
        event_id = w.events.submit("fn", None, b'{"n": 1}')
        start = w.h.clock.time()

        await settle(lambda: w.event(event_id).attempts == 1)
        first = w.event(event_id)
        assert (first.status, first.not_before) == ("pending", start + 60)

        await w.later(59)
        assert w.event(event_id).attempts == 1  # not before its time
        await w.later(1)
        await settle(lambda: w.event(event_id).attempts == 2)
        assert w.event(event_id).not_before == start + 60 + 120

        await w.later(120)
        await settle(lambda: w.event(event_id).status == "dead")

        dead = w.event(event_id)
        assert dead.attempts == 3
        assert dead.detail["condition"] == "RetriesExhausted"
        assert dead.detail["outcome"]["function_error"] == "Unhandled"
        assert len(w.h.received()) == 3
        assert set(w.h.received()) == {event_id}  # every try carries the same request id
        assert w.events.completed == 1


async def test_an_event_that_fails_once_then_succeeds_is_succeeded(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("fn")
        calls = []

        def flaky(runtime: object, invocation: Invocation) -> Respond | Fail:
            calls.append(invocation.request_id)
            return Fail(ERROR) if len(calls) == 1 else Respond(b'"ok"')

        w.h.driver.default_script = Script(handler=flaky)
        w.events.start()
        event_id = w.events.submit("fn", None, b"{}")
        await settle(lambda: w.event(event_id).attempts == 1)
        await w.later(60)
        await settle(lambda: w.event(event_id).status == "succeeded")
        assert w.event(event_id).attempts == 2


async def test_the_on_failure_function_receives_the_invocation_record(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("fn")
        w.h.deploy("recorder")
        w.configure("fn", maximum_retry_attempts=1, on_failure="recorder")
        w.h.driver.default_script = Script(
            handler=lambda runtime, invocation: (
                Fail(ERROR) if invocation.invoked_arn.split(":")[6] == "fn" else Respond()
            )
        )
        w.events.start()
        event_id = w.events.submit("fn", None, b'{"order": 7}')
        await settle(lambda: w.event(event_id).attempts == 1)
        await w.later(60)
        await settle(lambda: w.event(event_id).status == "failed")
        await settle(lambda: [e.status for e in w.of("recorder")] == ["succeeded"])

        (delivered,) = received_by(w.h, "recorder")
        record = json.loads(delivered.payload)
        assert record == {
            "version": "1.0",
            "timestamp": record["timestamp"],
            "requestContext": {
                "requestId": event_id,
                "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 2,
            },
            "requestPayload": {"order": 7},
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorType": "ValueError", "errorMessage": "bad input"},
        }
        assert w.event(event_id).detail["delivered"] == [["on_failure", "recorder"]]


async def test_the_on_success_destination_receives_a_success_record(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("fn")
        w.configure("fn", on_success=f"{DLQ_ARN[:-3]}results")
        w.events.start()
        event_id = w.events.submit("fn", None, b'{"n": 2}')
        await settle(lambda: w.event(event_id).status == "succeeded")

        ((queue, body, attributes),) = w.broker.sent
        record = json.loads(body)
        assert (queue, attributes) == ("results", None)
        assert record["requestContext"]["condition"] == "Success"
        assert record["requestContext"]["approximateInvokeCount"] == 1
        assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
        assert record["responsePayload"] == {"n": 2}  # the fake runtime echoes


async def test_a_queue_destination_and_the_dead_letter_queue_both_receive_a_failure(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("fn")
        w.configure("fn", maximum_retry_attempts=0, on_failure=DLQ_ARN, dead_letter="dlq-fn")
        w.h.deploy("dlq-fn")
        w.h.driver.default_script = Script(
            handler=lambda runtime, invocation: (
                Fail(ERROR) if invocation.invoked_arn.split(":")[6] == "fn" else Respond()
            )
        )
        w.events.start()
        event_id = w.events.submit("fn", None, b'{"n": 3}')
        await settle(lambda: w.event(event_id).status == "failed")

        ((queue, body, attributes),) = w.broker.sent
        assert queue == "dlq"
        assert json.loads(body)["requestContext"]["condition"] == "RetriesExhausted"
        assert attributes is None
        # The legacy DLQ (a function here) gets the original event.
        await settle(lambda: len(received_by(w.h, "dlq-fn")) == 1)
        assert received_by(w.h, "dlq-fn")[0].payload == b'{"n": 3}'


async def test_a_dead_letter_queue_gets_the_event_with_aws_s_attributes(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("fn")
        w.configure("fn", maximum_retry_attempts=0, dead_letter=DLQ_ARN)
        w.h.driver.default_script = Script(handler=failing)
        w.events.start()
        event_id = w.events.submit("fn", None, b'{"n": 4}')
        await settle(lambda: w.event(event_id).status == "failed")

        assert w.broker.sent == [
            (
                "dlq",
                '{"n": 4}',
                {"RequestID": event_id, "ErrorCode": "200", "ErrorMessage": "bad input"},
            )
        ]


async def test_an_event_too_old_for_its_next_retry_is_event_age_exceeded(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("fn")
        w.configure("fn", maximum_event_age=60, on_failure=DLQ_ARN)
        w.h.driver.default_script = Script(handler=failing)
        w.events = async_invoker(w.store, w.h, queues=w.broker, retry_delay=61.0)
        w.events.start()
        event_id = w.events.submit("fn", None, b"{}")
        await settle(lambda: w.event(event_id).status == "failed")

        record = json.loads(w.broker.sent[0][1])
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == 1


async def test_an_event_that_waited_past_its_age_is_not_run(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("fn")
        w.configure("fn", maximum_event_age=60)
        event_id = w.events.submit("fn", None, b"{}")
        w.h.clock.advance(61)  # Lamina was down

        w.events.start()
        await settle(lambda: w.event(event_id).status == "dead")

        assert w.h.received() == []
        assert w.event(event_id).detail["condition"] == "EventAgeExceeded"


async def test_throttled_events_are_retried_until_their_age_then_exceeded(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("fn", reserved=1)
        w.configure("fn", maximum_event_age=60)
        w.h.ledger.admit("fn")  # the one slot is taken for the whole test
        w.events.start()
        event_id = w.events.submit("fn", None, b"{}")
        waits = []
        for throttles in range(1, 10):
            await settle(lambda n=throttles: w.event(event_id).throttles == n)  # type: ignore[misc]
            await settle()
            event = w.event(event_id)
            if event.status == "dead":
                break
            waits.append(event.not_before - w.h.clock.time())
            await w.later(waits[-1])
        assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]
        dead = w.event(event_id)
        assert (dead.status, dead.attempts, dead.throttles) == ("dead", 0, 6)
        assert dead.detail["condition"] == "EventAgeExceeded"
        assert dead.detail["outcome"]["status_code"] == 429
        w.h.ledger.finish("fn")


async def test_reserved_concurrency_zero_sends_events_straight_to_on_failure(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("off", reserved=0)
        w.configure("off", on_failure=DLQ_ARN)
        w.events.start()
        event_id = w.events.submit("off", None, b"{}")
        await settle(lambda: w.event(event_id).status == "failed")

        assert w.h.driver.specs == []
        record = json.loads(w.broker.sent[0][1])
        assert record["requestContext"]["approximateInvokeCount"] == 0
        assert record["responseContext"]["statusCode"] == 429


async def test_a_missing_destination_leaves_the_event_dead_saying_why(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("fn")
        w.configure(
            "fn",
            maximum_retry_attempts=0,
            on_failure="arn:aws:sqs:us-east-1:000000000000:gone",
            dead_letter="no-such-function",
        )
        w.h.driver.default_script = Script(handler=failing)
        w.events.start()
        event_id = w.events.submit("fn", None, b"{}")
        await settle(lambda: w.event(event_id).status == "dead")

        undelivered = w.event(event_id).detail["undelivered"]
        assert [kind for kind, _, _ in undelivered] == ["dead_letter", "on_failure"]
        assert "does not exist" in undelivered[1][2]


async def test_a_queue_service_fault_is_retried_and_survives_a_restart(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("fn")
        w.configure("fn", maximum_retry_attempts=0, on_failure=DLQ_ARN)
        w.h.driver.default_script = Script(handler=failing)
        w.broker.failures = 1
        w.events.start()
        event_id = w.events.submit("fn", None, b"{}")
        await settle(lambda: w.event(event_id).detail.get("send_failures") == 1)
        assert w.event(event_id).status == "delivering"

        await stop(w.events)  # Lamina stops before the delivery is tried again
        w.events = w.invoker()
        w.events.start()
        await w.later(1)
        await settle(lambda: w.event(event_id).status == "failed")

        assert [q for q, _, _ in w.broker.sent] == ["dlq"]
        assert len(w.h.received()) == 1  # delivering again does not run the function again


async def test_a_dead_event_can_be_redriven_with_a_fresh_count(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.h.deploy("fn")
        w.configure("fn", maximum_retry_attempts=0)
        calls: list[str] = []

        def once_bad(runtime: object, invocation: Invocation) -> Respond | Fail:
            calls.append(invocation.request_id)
            return Fail(ERROR) if len(calls) == 1 else Respond()

        w.h.driver.default_script = Script(handler=once_bad)
        w.events.start()
        event_id = w.events.submit("fn", None, b"{}")
        await settle(lambda: w.event(event_id).status == "dead")
        again = w.events.redrive(event_id)
        assert (again.status, again.attempts) == ("pending", 0)
        with pytest.raises(ResourceConflictException, match="only dead events"):
            w.events.redrive(event_id)  # queued now

        await settle(lambda: w.event(event_id).status == "succeeded")
        assert w.event(event_id).attempts == 1
        assert w.event(event_id).detail.get("redriven") == 1
        assert calls == [event_id, event_id]
        with pytest.raises(ResourceNotFoundException):
            w.events.redrive("no-such-event")
