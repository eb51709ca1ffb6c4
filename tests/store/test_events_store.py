"""The async event queue, event invoke configs and schedules on SQLite: claiming, saving
with hand-ons in one transaction, recovery after a crash, pruning, and migration 4 keeping
the events of an older database."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.core.models import QueuedEvent
from lamina.core.retry import EventInvokeConfig
from lamina.core.schedules import ScheduleRule
from lamina.store import migrations
from lamina.store.events import EventNotFound, SqliteEventInvokeConfigStore, SqliteEventStore
from lamina.store.schedules import SqliteScheduleStore
from lamina.store.sqlite import SqliteStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "lamina.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(db_path)
    yield s
    s.close()


def _event(id_: str, enqueued_at: float, **fields: object) -> QueuedEvent:
    return QueuedEvent(
        id=id_,
        function_name=str(fields.pop("function_name", "api")),
        qualifier="$LATEST",
        payload=b'{"n": 1}\x00\xff',
        enqueued_at=enqueued_at,
        **fields,  # type: ignore[arg-type]
    )


def test_claim_takes_due_events_oldest_due_first_and_marks_them_running(
    store: SqliteStore,
) -> None:
    queue = SqliteEventStore(store)
    queue.enqueue(_event("later", 1.0, not_before=50.0))
    queue.enqueue(_event("b", 2.0))
    queue.enqueue(_event("a", 3.0))
    queue.enqueue(_event("sending", 0.5, status="delivering", not_before=5.0))
    queue.enqueue(_event("done", 0.1, status="succeeded"))
    queue.enqueue(_event("gone", 0.1, status="dead"))

    claimed = queue.claim(now=10.0, limit=10, busy={"a"})

    assert [(e.id, e.status) for e in claimed] == [
        ("b", "running"),
        ("sending", "delivering"),
    ]
    assert queue.get("b") == _event("b", 2.0, status="running", updated_at=10.0)
    assert queue.claim(now=10.0, limit=10) == [
        _event("a", 3.0, status="running", updated_at=10.0),
        _event("sending", 0.5, status="delivering", not_before=5.0),
    ]
    assert queue.next_due() == 5.0
    assert [e.id for e in queue.claim(now=100.0, limit=1)] == ["sending"]


def test_save_writes_the_state_and_hands_on_events_once(store: SqliteStore) -> None:
    queue = SqliteEventStore(store)
    queue.enqueue(_event("a", 1.0))
    failed = _event("a", 1.0, status="failed", attempts=3, detail={"condition": "X"})
    destination = _event("a-dest", 2.0, function_name="recorder")

    queue.save(failed, [destination])
    queue.save(failed, [destination])  # a retried hand-on is not a second event

    assert queue.list() == [failed, destination]
    assert queue.list(["failed"]) == [failed]
    assert queue.list(function_name="recorder") == [destination]
    assert queue.counts() == {"failed": 1, "pending": 1}
    with pytest.raises(EventNotFound):
        queue.save(_event("nope", 1.0), [destination])


def test_events_left_running_by_a_crash_are_pending_after_reopen(db_path: Path) -> None:
    before = SqliteStore(db_path)
    SqliteEventStore(before).enqueue(_event("a", 1.0, status="running", attempts=1))
    before.close()

    after = SqliteStore(db_path)
    queue = SqliteEventStore(after)
    assert queue.recover() == 1
    assert [(e.id, e.status, e.attempts) for e in queue.claim(2.0, 10)] == [("a", "running", 1)]
    after.close()


def test_prune_forgets_only_old_finished_events(store: SqliteStore) -> None:
    queue = SqliteEventStore(store)
    for status in ("succeeded", "failed", "dead", "pending"):
        queue.enqueue(_event(status, 1.0, status=status, updated_at=1.0))
    queue.enqueue(_event("recent", 1.0, status="succeeded", updated_at=100.0))

    assert queue.prune(before=50.0) == 2
    assert sorted(e.id for e in queue.list()) == ["dead", "pending", "recent"]


def test_event_invoke_configs_resolve_qualifier_then_function_then_defaults(
    store: SqliteStore,
) -> None:
    configs = SqliteEventInvokeConfigStore(store)
    everywhere = EventInvokeConfig(maximum_retry_attempts=1, on_failure="dlq")
    live = EventInvokeConfig(maximum_retry_attempts=0)
    configs.set_functions({"fn": everywhere, "other": None}, (), 1.0)
    configs.put("fn", "live", live, 2.0)

    assert configs.effective("fn", "live") == live
    assert configs.effective("fn", "3") == everywhere
    assert configs.effective("other", "$LATEST") == EventInvokeConfig()
    assert configs.get("fn", "live") == (live, 2.0)

    configs.set_functions({"fn": None}, ("gone",), 3.0)
    assert configs.effective("fn", "3") == EventInvokeConfig()
    assert configs.effective("fn", "live") == live
    configs.set_functions({}, ("fn",), 4.0)
    assert configs.get("fn", "live") is None
    assert not configs.delete("fn", "live")


def test_a_firing_and_its_event_are_written_together(store: SqliteStore) -> None:
    rules = SqliteScheduleStore(store)
    queue = SqliteEventStore(store)
    rule = ScheduleRule("tick", "app", "dev", "app-dev-job", "1", "rate(1 minute)")
    rules.set_stack("app", "dev", [rule], now=10.0)

    assert rules.fire("tick", 70.0, _event("e1", 70.0))
    assert rules.list() == [dataclasses.replace(rule, last_fired=70.0, created=10.0)]
    assert [e.id for e in queue.list()] == ["e1"]
    assert not rules.fire("missing", 80.0, _event("e2", 80.0))
    assert [e.id for e in queue.list()] == ["e1"]


def test_migration_4_keeps_the_events_of_an_older_database(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    for statement in migrations._statements("\n".join(migrations.MIGRATIONS[:3])):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    conn.execute(
        "INSERT INTO events (id, function_name, qualifier, payload, enqueued_at, attempts, status)"
        " VALUES ('old', 'api', '$LATEST', x'7b7d', 5.0, 1, 'running')"
    )
    conn.close()

    upgraded = SqliteStore(db_path)
    try:
        assert upgraded.schema_version >= 4
        assert SqliteEventStore(upgraded).list() == [
            QueuedEvent(
                id="old",
                function_name="api",
                qualifier="$LATEST",
                payload=b"{}",
                enqueued_at=5.0,
                attempts=1,
                status="running",
                updated_at=5.0,
            )
        ]
    finally:
        upgraded.close()
