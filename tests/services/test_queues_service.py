"""The queue service on a real SQLite store with a fake clock: visibility, receive counts,
redrive, delays, retention, FIFO order and deduplication, purge, long polls, and the
`QueueBroker` side (deployments, platform sends)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lamina.core.clock import FakeClock
from lamina.core.errors import ResourceNotFoundException
from lamina.core.models import Account
from lamina.core.queue_messages import MessageAttribute, NewMessage
from lamina.core.queues import (
    InvalidParameterValue,
    MessageNotInflight,
    PurgeQueueInProgress,
    QueueDoesNotExist,
    QueueNameExists,
    ReceiptHandleIsInvalid,
    SqsError,
)
from lamina.services.queues import QueueService, SendResult
from lamina.store.queues import SqliteQueueStore
from lamina.store.sqlite import SqliteStore
from lamina.wire.deployment import QueueSpec, SqsTrigger

T = TypeVar("T")
BASE = "http://127.0.0.1:8081"


async def inline(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    return func(*args, **kwargs)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "lamina.db"
        self.clock = FakeClock()
        self.store = SqliteStore(self.path)
        self.queues = self.service(self.store)

    def service(self, store: SqliteStore) -> QueueService:
        return QueueService(
            store=SqliteQueueStore(store),
            clock=self.clock,
            account=Account(),
            base_url=BASE,
            offload=inline,
        )

    def send(self, queue: str, *bodies: str, **fields: Any) -> list[SendResult]:
        results = self.queues.send_messages(
            queue, [NewMessage(b, **fields) for b in bodies], "AIDATEST"
        )
        assert all(isinstance(r, SendResult) for r in results), results
        return [r for r in results if isinstance(r, SendResult)]

    def bodies(self, queue: str, limit: int = 10, visibility: int | None = None) -> list[str]:
        return [m.body for m in self.queues.receive_now(queue, limit, visibility)]


@pytest.fixture
def s(tmp_path: Path) -> Iterator[Setup]:
    setup = Setup(tmp_path)
    yield setup
    setup.store.close()


def dlq_policy(name: str, count: int) -> dict[str, str]:
    target = f"arn:aws:sqs:us-east-1:000000000000:{name}"
    return {"RedrivePolicy": json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": count})}


# --- queues ----------------------------------------------------------------------------------


def test_create_is_idempotent_for_the_same_attributes(s: Setup) -> None:
    url = s.queues.create_queue("jobs", {"VisibilityTimeout": "45"})
    assert url == f"{BASE}/000000000000/jobs"
    assert s.queues.create_queue("jobs", {"VisibilityTimeout": "45"}) == url
    assert s.queues.create_queue("jobs", {}) == url
    with pytest.raises(QueueNameExists):
        s.queues.create_queue("jobs", {"VisibilityTimeout": "46"})


def test_queue_urls_name_queues(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    assert s.queues.name_of_url("http://localhost:9999/000000000000/jobs") == "jobs"
    assert s.queues.name_of_url("jobs") == "jobs"
    with pytest.raises(QueueDoesNotExist, match="not a queue URL"):
        s.queues.name_of_url("http://localhost/123456789012/jobs")
    with pytest.raises(QueueDoesNotExist):
        s.queues.queue_url("other")


def test_list_queues_by_prefix_and_page(s: Setup) -> None:
    for name in ("a1", "a2", "a3", "b1"):
        s.queues.create_queue(name, {})
    urls, token = s.queues.list_queues("a", max_results=2)
    assert [u.rsplit("/", 1)[1] for u in urls] == ["a1", "a2"]
    assert token is not None
    rest, token = s.queues.list_queues("a", max_results=2, next_token=token)
    assert ([u.rsplit("/", 1)[1] for u in rest], token) == (["a3"], None)
    assert len(s.queues.list_queues()[0]) == 4


def test_delete_queue_deletes_its_messages(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    s.send("jobs", "one")
    s.queues.delete_queue("jobs")
    with pytest.raises(QueueDoesNotExist):
        s.queues.receive_now("jobs", 1)
    s.queues.create_queue("jobs", {})
    assert s.bodies("jobs") == []


def test_dead_letter_targets_must_exist_and_match_the_type(s: Setup) -> None:
    with pytest.raises(InvalidParameterValue, match="Dead letter target does not exist"):
        s.queues.create_queue("jobs", dlq_policy("dlq", 3))
    s.queues.create_queue("dlq.fifo", {"FifoQueue": "true"})
    with pytest.raises(InvalidParameterValue, match="same type"):
        s.queues.create_queue("jobs", dlq_policy("dlq.fifo", 3))


# --- visibility and receive counts -----------------------------------------------------------


def test_a_received_message_is_hidden_for_the_visibility_timeout(s: Setup) -> None:
    s.queues.create_queue("jobs", {"VisibilityTimeout": "30"})
    s.send("jobs", "one")
    (first,) = s.queues.receive_now("jobs", 10)
    assert first.receive_count == 1
    assert s.queues.receive_now("jobs", 10) == []
    assert s.queues.counts("jobs").in_flight == 1
    s.clock.advance(29.9)
    assert s.queues.receive_now("jobs", 10) == []
    s.clock.advance(0.1)
    (again,) = s.queues.receive_now("jobs", 10)
    assert (again.id, again.receive_count) == (first.id, 2)
    assert again.receipt_handle != first.receipt_handle
    assert again.first_receive_at == first.first_receive_at


def test_a_stale_receipt_handle_deletes_nothing(s: Setup) -> None:
    s.queues.create_queue("jobs", {"VisibilityTimeout": "10"})
    s.send("jobs", "one")
    (first,) = s.queues.receive_now("jobs", 1)
    s.clock.advance(10)
    (second,) = s.queues.receive_now("jobs", 1)
    assert s.queues.delete_messages("jobs", [first.receipt_handle]) == [None]
    assert s.queues.counts("jobs").in_flight == 1
    assert s.queues.delete_messages("jobs", [second.receipt_handle]) == [None]
    assert s.queues.counts("jobs").in_flight == 0
    # Deleting again with the same handle succeeds, as on SQS.
    assert s.queues.delete_messages("jobs", [second.receipt_handle]) == [None]


def test_receipt_handles_of_other_queues_or_garbage_are_invalid(s: Setup) -> None:
    s.queues.create_queue("a", {})
    s.queues.create_queue("b", {})
    s.send("a", "one")
    (message,) = s.queues.receive_now("a", 1)
    (error,) = s.queues.delete_messages("b", [message.receipt_handle])
    assert isinstance(error, ReceiptHandleIsInvalid)
    (error,) = s.queues.delete_messages("a", ["garbage"])
    assert isinstance(error, ReceiptHandleIsInvalid)


def test_change_visibility(s: Setup) -> None:
    s.queues.create_queue("jobs", {"VisibilityTimeout": "30"})
    s.send("jobs", "one")
    (message,) = s.queues.receive_now("jobs", 1)
    assert s.queues.change_visibility("jobs", [(message.receipt_handle, 300)]) == [None]
    s.clock.advance(60)
    assert s.queues.receive_now("jobs", 1) == []
    assert s.queues.change_visibility("jobs", [(message.receipt_handle, 0)]) == [None]
    (again,) = s.queues.receive_now("jobs", 1, visibility=0)
    # Visible now: there is nothing in flight to change.
    (error,) = s.queues.change_visibility("jobs", [(again.receipt_handle, 10)])
    assert isinstance(error, MessageNotInflight)
    (error,) = s.queues.change_visibility("jobs", [(message.receipt_handle, 10)])
    assert isinstance(error, InvalidParameterValue)  # stale handle
    (error,) = s.queues.change_visibility("jobs", [(again.receipt_handle, 43_201)])
    assert isinstance(error, InvalidParameterValue)


def test_receive_takes_at_most_the_limit_in_send_order(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    s.send("jobs", *[f"m{i}" for i in range(15)])
    assert s.bodies("jobs", 10) == [f"m{i}" for i in range(10)]
    assert s.bodies("jobs", 10) == [f"m{i}" for i in range(10, 15)]


# --- redrive, delays, retention ----------------------------------------------------------------


def test_redrive_after_max_receive_count(s: Setup) -> None:
    s.queues.create_queue("dlq", {})
    s.queues.create_queue("jobs", {"VisibilityTimeout": "5", **dlq_policy("dlq", 3)})
    (sent,) = s.send("jobs", "poison", attributes={"k": MessageAttribute("String", "v")})
    for count in (1, 2, 3):
        (message,) = s.queues.receive_now("jobs", 1)
        assert message.receive_count == count
        s.clock.advance(5)
    assert s.queues.receive_now("jobs", 1) == []  # the fourth receive moved it
    (dead,) = s.queues.receive_now("dlq", 1)
    assert (dead.id, dead.body, dead.receive_count) == (sent.message_id, "poison", 1)
    assert dead.attributes == {"k": MessageAttribute("String", "v")}
    assert dead.system["DeadLetterQueueSourceArn"] == "arn:aws:sqs:us-east-1:000000000000:jobs"


def test_redrive_keeps_messages_when_the_dead_letter_queue_is_gone(s: Setup) -> None:
    s.queues.create_queue("dlq", {})
    s.queues.create_queue("jobs", {"VisibilityTimeout": "0", **dlq_policy("dlq", 1)})
    s.send("jobs", "poison")
    s.queues.receive_now("jobs", 1)
    s.queues.delete_queue("dlq")
    (again,) = s.queues.receive_now("jobs", 1)
    assert again.receive_count == 2


def test_delay_seconds_per_queue_and_per_message(s: Setup) -> None:
    s.queues.create_queue("jobs", {"DelaySeconds": "10"})
    s.send("jobs", "queue-delay")
    s.send("jobs", "no-delay", delay=0)
    s.send("jobs", "long-delay", delay=60)
    assert s.bodies("jobs", visibility=600) == ["no-delay"]
    assert s.queues.counts("jobs").delayed == 2
    s.clock.advance(10)
    assert s.bodies("jobs", visibility=600) == ["queue-delay"]
    s.clock.advance(50)
    assert s.bodies("jobs", visibility=600) == ["long-delay"]


def test_messages_past_retention_are_gone(s: Setup) -> None:
    s.queues.create_queue("jobs", {"MessageRetentionPeriod": "60"})
    s.send("jobs", "old")
    s.clock.advance(30)
    s.send("jobs", "new")
    s.clock.advance(30)
    assert s.queues.counts("jobs").visible == 1
    assert s.bodies("jobs", visibility=0) == ["new"]
    assert SqliteQueueStore(s.store).expire(s.clock.time()) == 1


def test_purge_once_a_minute(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    s.send("jobs", "a", "b")
    s.queues.receive_now("jobs", 1)
    assert s.queues.purge("jobs") == 2
    with pytest.raises(PurgeQueueInProgress):
        s.queues.purge("jobs")
    s.clock.advance(60)
    assert s.queues.purge("jobs") == 0


def test_attributes_count_messages(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    s.send("jobs", "a", "b", "c")
    s.send("jobs", "later", delay=30)
    s.queues.receive_now("jobs", 1)
    attributes = s.queues.get_attributes("jobs", ["All"])
    assert attributes["ApproximateNumberOfMessages"] == "2"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert attributes["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:jobs"
    assert s.queues.get_attributes("jobs", ["VisibilityTimeout"]) == {"VisibilityTimeout": "30"}
    assert s.queues.get_attributes("jobs", []) == {}


def test_refused_messages_in_a_batch_do_not_stop_the_others(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    results = s.queues.send_messages(
        "jobs", [NewMessage("ok"), NewMessage(""), NewMessage("fine")], "me"
    )
    assert [type(r).__name__ for r in results] == ["SendResult", "MissingParameter", "SendResult"]
    assert s.bodies("jobs") == ["ok", "fine"]


# --- FIFO ------------------------------------------------------------------------------------


def fifo(s: Setup, name: str = "jobs.fifo", **attributes: str) -> str:
    return s.queues.create_queue(name, {"FifoQueue": "true", **attributes})


def test_fifo_delivers_a_group_in_order_one_batch_at_a_time(s: Setup) -> None:
    fifo(s, VisibilityTimeout="30")
    for i in range(3):
        s.send("jobs.fifo", f"a{i}", group_id="a", dedup_id=f"a{i}")
        s.send("jobs.fifo", f"b{i}", group_id="b", dedup_id=f"b{i}")
    first = s.queues.receive_now("jobs.fifo", 2)
    assert [m.body for m in first] == ["a0", "b0"]
    # Both groups have a message in flight: nothing else may be delivered.
    assert s.queues.receive_now("jobs.fifo", 10) == []
    s.queues.delete_messages("jobs.fifo", [first[0].receipt_handle])
    assert s.bodies("jobs.fifo", visibility=300) == ["a1", "a2"]
    s.clock.advance(30)  # b0 was never deleted: it comes back first
    assert s.bodies("jobs.fifo") == ["b0", "b1", "b2"]


def test_fifo_sequence_numbers_grow(s: Setup) -> None:
    fifo(s)
    (one,) = s.send("jobs.fifo", "x", group_id="g", dedup_id="1")
    (two,) = s.send("jobs.fifo", "y", group_id="g", dedup_id="2")
    assert one.sequence_number is not None and two.sequence_number is not None
    assert len(one.sequence_number) == 20
    assert int(two.sequence_number) > int(one.sequence_number)


def test_fifo_deduplicates_for_five_minutes(s: Setup) -> None:
    fifo(s)
    (first,) = s.send("jobs.fifo", "x", group_id="g", dedup_id="same")
    (again,) = s.send("jobs.fifo", "other body", group_id="g", dedup_id="same")
    assert again.message_id == first.message_id
    assert again.sequence_number == first.sequence_number
    assert s.bodies("jobs.fifo") == ["x"]
    s.clock.advance(299)
    (still,) = s.send("jobs.fifo", "x", group_id="g", dedup_id="same")
    assert still.message_id == first.message_id
    s.clock.advance(1)
    (new,) = s.send("jobs.fifo", "x", group_id="g", dedup_id="same")
    assert new.message_id != first.message_id


def test_content_based_deduplication(s: Setup) -> None:
    fifo(s, ContentBasedDeduplication="true")
    (a,) = s.send("jobs.fifo", "same body", group_id="g")
    (b,) = s.send("jobs.fifo", "same body", group_id="h")
    (c,) = s.send("jobs.fifo", "another body", group_id="g")
    assert a.message_id == b.message_id != c.message_id


# --- long polling ----------------------------------------------------------------------------


async def test_a_long_poll_is_woken_by_a_send(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    poll = asyncio.create_task(s.queues.receive("jobs", 10, wait=20))
    await asyncio.sleep(0)
    assert not poll.done()
    s.send("jobs", "wake up")
    messages = await asyncio.wait_for(poll, 5)
    assert [m.body for m in messages] == ["wake up"]


async def test_a_send_from_another_thread_wakes_a_long_poll(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    poll = asyncio.create_task(s.queues.receive("jobs", 10, wait=20))
    await asyncio.sleep(0)
    await asyncio.to_thread(s.send, "jobs", "from a thread")
    assert [m.body for m in await asyncio.wait_for(poll, 5)] == ["from a thread"]


async def test_a_long_poll_ends_empty_after_its_wait(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    assert await s.queues.receive("jobs", 10, wait=0.01) == []
    assert await s.queues.receive("jobs", 10, wait=0) == []


async def test_the_queue_wait_time_is_the_default_long_poll(s: Setup) -> None:
    s.queues.create_queue("jobs", {"ReceiveMessageWaitTimeSeconds": "20"})
    poll = asyncio.create_task(s.queues.receive("jobs", 10))
    await asyncio.sleep(0.01)
    assert not poll.done()
    s.send("jobs", "x")
    assert len(await asyncio.wait_for(poll, 5)) == 1


# --- durability ------------------------------------------------------------------------------


def test_sent_messages_survive_a_new_process(s: Setup) -> None:
    s.queues.create_queue("jobs", {})
    s.send("jobs", *[str(i) for i in range(50)])
    s.queues.receive_now("jobs", 5)
    other = SqliteStore(s.path)  # what a restarted `lamina up` opens
    try:
        restarted = s.service(other)
        assert restarted.counts("jobs").visible == 45
        s.clock.advance(30)
        received = restarted.receive_now("jobs", 10) + restarted.receive_now("jobs", 10)
        assert sorted(int(m.body) for m in received) == list(range(20))
    finally:
        other.close()


# --- the QueueBroker port --------------------------------------------------------------------


def test_validate_queues_reports_every_problem(s: Setup) -> None:
    s.queues.create_queue("taken", {})
    s.queues.declare_queues("other", "dev", [QueueSpec("theirs")])
    specs = [
        QueueSpec("ok", dead_letter_queue="ok-dlq", max_receive_count=3),
        QueueSpec("ok-dlq"),
        QueueSpec("bad name!"),
        QueueSpec("jobs", fifo=True),
        QueueSpec("vis", visibility_timeout=50_000),
        QueueSpec("lost", dead_letter_queue="nowhere"),
        QueueSpec("counted", max_receive_count=3),
        QueueSpec("theirs"),
        QueueSpec("mixed", dead_letter_queue="arn:aws:sqs:us-east-1:000000000000:f.fifo"),
        QueueSpec("f.fifo", fifo=True),
        QueueSpec("taken"),  # adopting an API-created queue is fine
    ]
    problems = s.queues.validate_queues("app", "dev", specs)
    assert len(problems) == 7, problems
    for fragment in (
        "'bad name!'",
        "'jobs': the name of a FIFO queue must end with '.fifo'",
        "queue vis: visibilityTimeout = 50000",
        "queue lost: dead-letter queue nowhere",
        "queue counted: maxReceiveCount = 3 needs a dead-letter queue",
        "queue theirs: already declared by other-dev",
        "queue mixed: dead-letter queue f.fifo must be the same type",
    ):
        assert any(fragment in p for p in problems), (fragment, problems)
    assert s.queues.validate_queues("app", "dev", ["not a spec"]) != []


def test_declare_creates_updates_and_deletes_a_stacks_queues(s: Setup) -> None:
    s.queues.declare_queues(
        "app",
        "dev",
        [
            QueueSpec("app-jobs", visibility_timeout=60, dead_letter_queue="app-dlq"),
            QueueSpec("app-dlq"),
            QueueSpec("app-old"),
        ],
    )
    attributes = s.queues.get_attributes("app-jobs", ["All"])
    assert attributes["VisibilityTimeout"] == "60"
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 10
    s.send("app-jobs", "kept")
    s.queues.declare_queues("app", "dev", [QueueSpec("app-jobs", visibility_timeout=90)])
    assert s.queues.get_attributes("app-jobs", ["VisibilityTimeout"])["VisibilityTimeout"] == "90"
    assert s.bodies("app-jobs") == ["kept"]
    for gone in ("app-dlq", "app-old"):
        with pytest.raises(QueueDoesNotExist):
            s.queues.queue(gone)
    s.queues.declare_queues("app", "dev", [])
    with pytest.raises(QueueDoesNotExist):
        s.queues.queue("app-jobs")


def test_declared_fifo_queues_deduplicate_by_content(s: Setup) -> None:
    s.queues.declare_queues("app", "dev", [QueueSpec("app-jobs.fifo", fifo=True)])
    s.send("app-jobs.fifo", "x", group_id="g")


def test_set_mappings_replaces_the_stacks_mappings_and_tells_listeners(s: Setup) -> None:
    calls: list[int] = []
    s.queues.on_mappings_changed(lambda: calls.append(1))
    trigger = SqsTrigger("arn:aws:sqs:us-east-1:000000000000:jobs", batch_size=5)
    s.queues.set_mappings("app", "dev", [("app-dev-worker", "3", trigger)])
    s.queues.set_mappings("other", "dev", [("other-dev-fn", None, SqsTrigger("jobs"))])
    (mine, theirs) = s.queues.mappings()
    assert (mine.function_name, mine.qualifier, mine.queue, mine.batch_size) == (
        "app-dev-worker",
        "3",
        "jobs",
        5,
    )
    assert theirs.function_name == "other-dev-fn"
    uuid = mine.uuid
    s.queues.set_mappings("app", "dev", [("app-dev-worker", "4", trigger)])
    assert s.queues.mappings()[0].uuid != uuid  # another qualifier: another mapping
    s.queues.set_mappings("app", "dev", [("app-dev-worker", "3", trigger)])
    assert s.queues.mappings()[0].uuid == uuid  # stable across deployments
    s.queues.set_mappings("app", "dev", [])
    assert [m.service for m in s.queues.mappings()] == ["other"]
    assert len(calls) == 5


def test_platform_sends(s: Setup) -> None:
    s.queues.create_queue("dlq", {})
    s.queues.send(
        "arn:aws:sqs:us-east-1:000000000000:dlq",
        '{"event": 1}',
        {"RequestID": "5f8a-11", "ErrorCode": "200", "ErrorMessage": "boom"},
    )
    (message,) = s.queues.receive_now("dlq", 1)
    assert message.body == '{"event": 1}'
    assert message.attributes["ErrorCode"] == MessageAttribute("Number", "200")
    assert message.attributes["RequestID"] == MessageAttribute("String", "5f8a-11")
    with pytest.raises(ResourceNotFoundException):
        s.queues.send("missing", "x")
    s.queues.create_queue("dlq.fifo", {"FifoQueue": "true"})
    s.queues.send("dlq.fifo", "one")
    s.queues.send("dlq.fifo", "one")  # each platform send is its own message
    assert len(s.queues.receive_now("dlq.fifo", 10)) == 2
    with pytest.raises(SqsError):
        s.queues.send("dlq", "")


def test_validate_triggers_checks_queues_and_lambdas_limits(s: Setup) -> None:
    s.queues.create_queue("existing.fifo", {"FifoQueue": "true"})
    specs = [QueueSpec("declared")]
    triggers = [
        SqsTrigger("declared"),
        SqsTrigger("arn:aws:sqs:us-east-1:000000000000:existing.fifo", batch_size=20),
        SqsTrigger("missing"),
        SqsTrigger("declared", batch_size=50),
    ]
    problems = s.queues.validate_triggers("app-dev-worker", triggers, specs)
    assert len(problems) == 3, problems
    assert "batchSize = 20: must be between 1 and 10 for a FIFO queue" in problems[0]
    assert "sqs event on missing: no such queue" in problems[1]
    assert "batchSize = 50 needs maximumBatchingWindow" in problems[2]
