"""`SqliteQueueStore`: queues, messages and event source mappings on the SQLite file
(migration 5)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from lamina.core.queue_messages import Message, MessageAttribute
from lamina.core.queues import EventSourceMapping, Queue, QueueSettings, Redrive
from lamina.store.queues import SqliteQueueStore
from lamina.store.sqlite import SqliteStore

NOW = 1_700_000_000.0
_ids = count()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteQueueStore]:
    sqlite = SqliteStore(tmp_path / "lamina.db")
    yield SqliteQueueStore(sqlite)
    sqlite.close()


def message(queue: str, body: str, **fields: object) -> Message:
    return Message(
        queue=queue, id=f"m{next(_ids)}", seq=0, body=body, sent_at=NOW, visible_at=NOW, **fields
    )  # type: ignore[arg-type]


def token() -> str:
    return f"t{next(_ids)}"


def test_queues_round_trip_with_their_settings(store: SqliteQueueStore) -> None:
    settings = QueueSettings(
        visibility_timeout=5, redrive=Redrive("dlq", 2), extra=(("Policy", "{}"),)
    )
    queue = Queue("jobs", settings, NOW, NOW)
    assert store.create_queue(queue) == queue
    assert store.get_queue("jobs") == queue
    # A second create returns what is stored, unchanged.
    assert store.create_queue(Queue("jobs", QueueSettings(), NOW + 1, NOW + 1)) == queue
    assert [q.name for q in store.list_queues("jo")] == ["jobs"]
    assert store.list_queues("x") == []


def test_attributes_of_messages_round_trip(store: SqliteQueueStore) -> None:
    store.create_queue(Queue("jobs"))
    attributes = {
        "s": MessageAttribute("String", "text"),
        "b": MessageAttribute("Binary", binary_value=b"\x00\xff"),
    }
    (sent,) = store.send("jobs", [message("jobs", "x", attributes=attributes)], NOW + 300, NOW)
    assert sent.seq > 0
    (received,), moved = store.receive(Queue("jobs"), 10, 30, NOW, token, "arn")
    assert (received.attributes, received.receive_count, moved) == (attributes, 1, 0)
    assert received.visible_at == NOW + 30


def test_declare_queues_owns_and_forgets(store: SqliteQueueStore) -> None:
    store.create_queue(Queue("adopted"))
    gone = store.declare_queues(
        "app",
        "dev",
        [Queue("adopted", service="app", stage="dev"), Queue("new", service="app", stage="dev")],
    )
    assert gone == []
    assert store.get_queue("adopted") is not None
    assert store.get_queue("adopted").owner == "app-dev"  # type: ignore[union-attr]
    assert store.declare_queues("app", "dev", [Queue("new", service="app", stage="dev")]) == [
        "adopted"
    ]
    assert store.get_queue("adopted") is None


def test_two_receivers_never_get_the_same_delivery(store: SqliteQueueStore) -> None:
    store.create_queue(Queue("jobs"))
    store.send("jobs", [message("jobs", str(i)) for i in range(200)], NOW + 300, NOW)
    got: list[str] = []
    lock = threading.Lock()

    def drain() -> None:
        while True:
            batch, _ = store.receive(Queue("jobs"), 3, 60, NOW, token, "arn")
            if not batch:
                return
            with lock:
                got.extend(m.id for m in batch)

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == len(set(got)) == 200


def test_expire_removes_old_messages_and_dedup_ids(store: SqliteQueueStore) -> None:
    store.create_queue(Queue("jobs", QueueSettings(message_retention=60)))
    store.send("jobs", [message("jobs", "old", dedup_id="d")], NOW + 300, NOW)
    assert store.expire(NOW + 59) == 0
    assert store.expire(NOW + 301) == 1
    (again,) = store.send("jobs", [message("jobs", "new", dedup_id="d")], NOW + 600, NOW + 301)
    assert again.body == "new"  # the deduplication id was forgotten


def test_mappings_replace_per_stack(store: SqliteQueueStore) -> None:
    mine = EventSourceMapping("u1", "app", "dev", "fn", "2", "jobs", batch_size=7, enabled=False)
    theirs = EventSourceMapping("u2", "other", "dev", "fn2", None, "jobs", maximum_concurrency=3)
    store.replace_mappings("app", "dev", [mine], NOW)
    store.replace_mappings("other", "dev", [theirs], NOW)
    assert store.list_mappings() == [mine, theirs]
    store.replace_mappings("app", "dev", [], NOW)
    assert store.list_mappings() == [theirs]
