"""`sqs` event source mappings: the consumers on a real queue service (SQLite, fake clock,
the loop's clock warped) with a fake function: batches and Lambda's event shape, deletes on
success, failures left to the visibility timeout and redrive, partial batch failures,
throttling, batching windows, and pollers that grow with a backlog and shrink when idle."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tests.services.fakes import LoopTimeWarp, settle
from tests.services.test_queues_service import inline

from lamina.core.clock import FakeClock
from lamina.core.errors import ResourceNotFoundException, TooManyRequestsException
from lamina.core.invocation import InvocationResult, Outcome
from lamina.core.models import Account
from lamina.core.queue_messages import MessageAttribute, NewMessage
from lamina.services.event_sources import EventSourceConsumers, MappingConsumer
from lamina.services.invoke import InvokeResponse
from lamina.services.queues import QueueService
from lamina.store.queues import SqliteQueueStore
from lamina.store.sqlite import SqliteStore
from lamina.wire.deployment import SqsTrigger

FUNCTION = "app-dev-worker"
Handler = Callable[[dict[str, Any]], Awaitable[InvocationResult]]


async def ok(event: dict[str, Any]) -> InvocationResult:
    return InvocationResult(Outcome.SUCCESS, b"null")


@dataclass
class FakeFunction:
    """Stands in for the invoke service: records each event, answers with `handler`."""

    handler: Handler = ok
    reserved: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    running: int = 0
    peak: int = 0

    def resolve(self, name: str, qualifier: str | None) -> Any:
        if name != FUNCTION:
            raise ResourceNotFoundException(f"Function not found: {name}")
        return SimpleNamespace(
            config=SimpleNamespace(reserved_concurrency=self.reserved, timeout=3)
        )

    async def invoke(self, name: str, qualifier: str | None, payload: bytes, **_: Any) -> Any:
        self.resolve(name, qualifier)
        event = json.loads(payload)
        self.events.append(event)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            result = await self.handler(event)
        finally:
            self.running -= 1
        return InvokeResponse("request-id", result, "$LATEST", b"")

    def bodies(self) -> list[list[str]]:
        return [[r["body"] for r in e["Records"]] for e in self.events]


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = FakeClock()
        self.store = SqliteStore(tmp_path / "lamina.db")
        self.queues = QueueService(
            store=SqliteQueueStore(self.store),
            clock=self.clock,
            account=Account(),
            base_url="http://127.0.0.1:8081",
            offload=inline,
        )
        self.function = FakeFunction()
        self.consumers = EventSourceConsumers(
            queues=self.queues,
            invoke=self.function,
            clock=self.clock,
            account=Account(),
            backoff=(1.0,),
        )
        self.warp = LoopTimeWarp()

    def send(self, queue: str, *bodies: str, **fields: Any) -> None:
        self.queues.send_messages(queue, [NewMessage(b, **fields) for b in bodies], "AIDATEST")

    def map(self, queue: str, **settings: Any) -> MappingConsumer:
        trigger = SqsTrigger(queue, **settings)
        self.queues.set_mappings("app", "dev", [(FUNCTION, None, trigger)])
        self.consumers.reconcile()
        (mapping,) = self.queues.mappings()
        consumer = self.consumers.consumer(mapping.uuid)
        assert consumer is not None
        return consumer

    async def elapse(self, seconds: float) -> None:
        """Time passes for the queue (fake clock) and for the pollers' timers (loop)."""
        self.clock.advance(seconds)
        self.warp.advance(seconds)
        await settle()

    def remaining(self, queue: str) -> int:
        counts = self.queues.counts(queue)
        return counts.visible + counts.in_flight + counts.delayed


@pytest.fixture
async def s(tmp_path: Path) -> AsyncIterator[Setup]:
    setup = Setup(tmp_path)
    setup.consumers.start()
    yield setup
    await setup.consumers.close()
    setup.warp.close()
    setup.store.close()


async def test_a_batch_arrives_in_lambdas_sqs_event_and_is_deleted(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    s.map("jobs")
    s.send("jobs", "one", attributes={"kind": MessageAttribute("String", "doc")})
    await settle(lambda: s.remaining("jobs") == 0)
    (event,) = s.function.events
    (record,) = event["Records"]
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "md5OfMessageAttributes",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["body"] == "one"
    assert record["md5OfBody"] == "f97c5d29941bfb1b2fdab0874906ab82"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:000000000000:jobs"
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["attributes"]["SenderId"] == "AIDATEST"
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "doc",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }


async def test_batches_hold_up_to_batch_size(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    s.send("jobs", *[str(i) for i in range(7)])
    consumer = s.map("jobs", batch_size=3, maximum_concurrency=2)
    await settle(lambda: s.remaining("jobs") == 0)
    assert sorted(len(b) for b in s.function.bodies()) == [1, 3, 3]
    assert consumer.deleted == 7


async def test_a_failed_batch_reappears_after_the_visibility_timeout(s: Setup) -> None:
    outcomes = [Outcome.ERROR, Outcome.SUCCESS]

    async def flaky(event: dict[str, Any]) -> InvocationResult:
        return InvocationResult(outcomes.pop(0), b'{"errorMessage": "boom"}')

    s.function.handler = flaky
    s.queues.create_queue("jobs", {"VisibilityTimeout": "30"})
    s.map("jobs")
    s.send("jobs", "a", "b")
    await settle(lambda: len(s.function.events) == 1)
    await settle()
    assert s.queues.counts("jobs").in_flight == 2  # not deleted, hidden
    await s.elapse(30)
    await settle(lambda: s.remaining("jobs") == 0)
    assert s.function.bodies() == [["a", "b"], ["a", "b"]]
    assert s.function.events[1]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"


async def test_a_poison_message_goes_to_the_dead_letter_queue(s: Setup) -> None:
    async def fail(event: dict[str, Any]) -> InvocationResult:
        return InvocationResult(Outcome.ERROR, b"{}")

    s.function.handler = fail
    s.queues.create_queue("dlq", {})
    policy = {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "maxReceiveCount": 2}
    s.queues.create_queue("jobs", {"VisibilityTimeout": "0", "RedrivePolicy": json.dumps(policy)})
    s.map("jobs")
    s.send("jobs", "poison")
    await settle(lambda: s.queues.counts("dlq").visible == 1)
    assert s.function.bodies() == [["poison"], ["poison"]]
    assert s.remaining("jobs") == 0


async def test_partial_batch_failures(s: Setup) -> None:
    async def report(event: dict[str, Any]) -> InvocationResult:
        failed = [
            {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"
        ]
        return InvocationResult(Outcome.SUCCESS, json.dumps({"batchItemFailures": failed}).encode())

    s.function.handler = report
    s.queues.create_queue("jobs", {"VisibilityTimeout": "60"})
    s.send("jobs", "good", "bad", "fine")
    consumer = s.map("jobs", report_batch_item_failures=True)
    await settle(lambda: consumer.batches == 1)
    await settle(lambda: s.queues.counts("jobs").in_flight == 1)
    assert (consumer.deleted, consumer.failed) == (2, 1)
    assert s.remaining("jobs") == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"not json",
        b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
        b'{"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]}',
        b'{"batchItemFailures": [{"id": "x"}]}',
    ],
)
async def test_an_answer_lambda_cannot_read_fails_the_whole_batch(s: Setup, answer: bytes) -> None:
    async def garbled(event: dict[str, Any]) -> InvocationResult:
        return InvocationResult(Outcome.SUCCESS, answer)

    s.function.handler = garbled
    s.queues.create_queue("jobs", {"VisibilityTimeout": "60"})
    s.send("jobs", "a", "b")
    consumer = s.map("jobs", report_batch_item_failures=True)
    await settle(lambda: consumer.batches == 1)
    await settle()
    assert (consumer.deleted, consumer.failed) == (0, 2)


async def test_without_report_batch_item_failures_the_answer_is_ignored(s: Setup) -> None:
    async def report(event: dict[str, Any]) -> InvocationResult:
        ids = [{"itemIdentifier": r["messageId"]} for r in event["Records"]]
        return InvocationResult(Outcome.SUCCESS, json.dumps({"batchItemFailures": ids}).encode())

    s.function.handler = report
    s.queues.create_queue("jobs", {})
    s.send("jobs", "a")
    s.map("jobs")
    await settle(lambda: s.remaining("jobs") == 0)


async def test_a_throttled_batch_is_retried_after_a_backoff(s: Setup) -> None:
    throttles = [True, True, False]

    async def busy(event: dict[str, Any]) -> InvocationResult:
        if throttles.pop(0):
            raise TooManyRequestsException(
                "Rate Exceeded.", reason="ReservedFunctionConcurrentInvocationLimitExceeded"
            )
        return InvocationResult(Outcome.SUCCESS, b"null")

    s.function.handler = busy
    s.queues.create_queue("jobs", {"VisibilityTimeout": "30"})
    s.send("jobs", "a")
    consumer = s.map("jobs")
    await settle(lambda: consumer.throttles == 1)
    await s.elapse(1)
    await settle(lambda: consumer.throttles == 2)
    await s.elapse(1)
    await settle(lambda: s.remaining("jobs") == 0)
    assert consumer.batches == 1
    assert len(s.function.events) == 3


async def test_a_batching_window_waits_for_a_fuller_batch(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    s.map("jobs", batch_size=5, maximum_batching_window=2)
    s.send("jobs", "a", "b")
    await settle()
    assert s.function.events == []
    s.send("jobs", "c")
    await settle()
    assert s.function.events == []
    await s.elapse(2)
    await settle(lambda: len(s.function.events) == 1)
    assert s.function.bodies() == [["a", "b", "c"]]
    s.send("jobs", *"vwxyz")
    await settle(lambda: len(s.function.events) == 2)  # full: no need to wait
    assert s.function.bodies()[1] == list("vwxyz")


async def test_pollers_grow_with_a_backlog_and_shrink_when_idle(s: Setup) -> None:
    gate = asyncio.Event()

    async def slow(event: dict[str, Any]) -> InvocationResult:
        await gate.wait()
        return InvocationResult(Outcome.SUCCESS, b"null")

    s.function.handler = slow
    s.queues.create_queue("jobs", {})
    s.send("jobs", *[str(i) for i in range(20)])
    consumer = s.map("jobs", batch_size=2, maximum_concurrency=4)
    await settle(lambda: s.function.running == 4)
    await settle()
    assert consumer.pollers == 4  # full batches kept adding pollers, up to the maximum
    gate.set()
    await settle(lambda: s.remaining("jobs") == 0)
    assert s.function.peak == 4
    await s.elapse(20)  # long polls come back empty: all but one poller stop
    await settle(lambda: consumer.pollers == 1)


async def test_pollers_stay_within_reserved_concurrency(s: Setup) -> None:
    s.function.reserved = 2
    gate = asyncio.Event()

    async def slow(event: dict[str, Any]) -> InvocationResult:
        await gate.wait()
        return InvocationResult(Outcome.SUCCESS, b"null")

    s.function.handler = slow
    s.queues.create_queue("jobs", {})
    s.send("jobs", *[str(i) for i in range(20)])
    consumer = s.map("jobs", batch_size=1)
    await settle(lambda: s.function.running == 2)
    await settle()
    assert consumer.pollers == 2
    gate.set()
    await settle(lambda: s.remaining("jobs") == 0)
    assert s.function.peak == 2


async def test_a_fifo_group_is_processed_in_order(s: Setup) -> None:
    s.queues.create_queue("jobs.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    for i in range(6):
        s.send("jobs.fifo", f"{'ab'[i % 2]}{i}", group_id="ab"[i % 2])
    s.map("jobs.fifo", batch_size=1, maximum_concurrency=3)
    await settle(lambda: s.remaining("jobs.fifo") == 0)
    order = [b[0] for b in s.function.bodies()]
    assert [b for b in order if b.startswith("a")] == ["a0", "a2", "a4"]
    assert [b for b in order if b.startswith("b")] == ["b1", "b3", "b5"]
    record = s.function.events[0]["Records"][0]
    assert {"MessageGroupId", "SequenceNumber", "MessageDeduplicationId"} <= set(
        record["attributes"]
    )


async def test_mappings_follow_deployments(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    s.map("jobs", enabled=False)
    s.send("jobs", "waiting")
    await settle()
    assert s.function.events == []
    s.map("jobs")  # enabled by a redeploy
    await settle(lambda: s.remaining("jobs") == 0)
    s.queues.set_mappings("app", "dev", [])
    await settle()  # the listener reconciles on the next loop turn
    assert s.consumers.statistics() == []
    s.send("jobs", "nobody listens")
    await settle()
    assert s.remaining("jobs") == 1


async def test_a_missing_queue_is_waited_for(s: Setup) -> None:
    consumer = s.map("later")
    await settle()
    assert consumer.pollers == 1
    s.queues.create_queue("later", {})
    s.send("later", "x")
    await s.elapse(5)
    await settle(lambda: s.remaining("later") == 0)


async def test_messages_for_a_missing_function_stay_queued(s: Setup) -> None:
    s.queues.create_queue("jobs", {"VisibilityTimeout": "30"})
    s.send("jobs", "x")
    s.queues.set_mappings("app", "dev", [("no-such-function", None, SqsTrigger("jobs"))])
    s.consumers.reconcile()
    await settle()
    assert s.remaining("jobs") == 1
