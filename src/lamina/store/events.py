"""The asynchronous invocation queue and the functions' event invoke configs, on the SQLite
file of `SqliteStore` (its connection, lock and transactions).

Every method is one transaction. `save` writes an event's new state together with the events
it hands on (a function destination's invocation), so a crash never leaves one without the
other.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Collection, Iterable, Mapping, Sequence

import orjson

from lamina.core.models import EventStatus, QueuedEvent
from lamina.core.retry import EventInvokeConfig
from lamina.store.sqlite import SqliteStore

_COLUMNS = (
    "id, function_name, qualifier, payload, enqueued_at, attempts, status, not_before, "
    "throttles, updated_at, detail"
)
INSERT_EVENT = f"INSERT OR IGNORE INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
ALL_QUALIFIERS = ""  # an event invoke config for every qualifier without its own


class EventNotFound(KeyError):
    pass


class SqliteEventStore:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"<SqliteEventStore {self._store.path}>"

    def enqueue(self, event: QueuedEvent) -> None:
        with self._store.transaction() as conn:
            conn.execute(INSERT_EVENT, event_row(event))

    def recover(self) -> int:
        """At start-up: events a dead process left running are pending again (their
        attempt never finished, so it does not count)."""
        with self._store.transaction() as conn:
            return conn.execute(
                "UPDATE events SET status = 'pending' WHERE status = 'running'"
            ).rowcount

    def claim(self, now: float, limit: int, busy: Collection[str] = ()) -> list[QueuedEvent]:
        """Due events, oldest due first, skipping `busy` ones: pending ones become running,
        delivering ones stay so (their delivery is tried again)."""
        with self._store.transaction() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE status IN ('pending', 'delivering') "
                "AND not_before <= ? ORDER BY not_before, enqueued_at, id LIMIT ?",
                (now, limit + len(busy)),
            ).fetchall()
            claimed = [_event(row) for row in rows if row["id"] not in busy][:limit]
            pending = [e.id for e in claimed if e.status == "pending"]
            conn.executemany(
                "UPDATE events SET status = 'running', updated_at = ? WHERE id = ?",
                ((now, event_id) for event_id in pending),
            )
        return [
            dataclasses.replace(e, status="running", updated_at=now) if e.status == "pending" else e
            for e in claimed
        ]

    def next_due(self) -> float | None:
        """When the earliest waiting event is due (epoch seconds), if any waits."""
        with self._store.transaction(write=False) as conn:
            (due,) = conn.execute(
                "SELECT MIN(not_before) FROM events WHERE status IN ('pending', 'delivering')"
            ).fetchone()
        return None if due is None else float(due)

    def save(self, event: QueuedEvent, hand_on: Sequence[QueuedEvent] = ()) -> None:
        """Write the event's state, and enqueue `hand_on` (idempotent by their ids)."""
        with self._store.transaction() as conn:
            updated = conn.execute(
                "UPDATE events SET status = ?, attempts = ?, not_before = ?, throttles = ?, "
                "updated_at = ?, detail = ?, enqueued_at = ? WHERE id = ?",
                (
                    event.status,
                    event.attempts,
                    event.not_before,
                    event.throttles,
                    event.updated_at,
                    _json(event.detail),
                    event.enqueued_at,
                    event.id,
                ),
            ).rowcount
            if updated == 0:
                raise EventNotFound(event.id)
            conn.executemany(INSERT_EVENT, (event_row(e) for e in hand_on))

    def get(self, event_id: str) -> QueuedEvent | None:
        with self._store.transaction(write=False) as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE id = ?", (event_id,)
            ).fetchone()
        return _event(row) if row else None

    def list(
        self,
        statuses: Iterable[EventStatus] = (),
        function_name: str | None = None,
        limit: int = 1000,
    ) -> list[QueuedEvent]:
        """Oldest first."""
        clauses: list[str] = []
        params: list[object] = []
        wanted = list(statuses)
        if wanted:
            clauses.append(f"status IN ({', '.join('?' for _ in wanted)})")
            params += wanted
        if function_name is not None:
            clauses.append("function_name = ?")
            params.append(function_name)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._store.transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM events{where} ORDER BY enqueued_at, id LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_event(row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._store.transaction(write=False) as conn:
            rows = conn.execute("SELECT status, COUNT(*) FROM events GROUP BY status").fetchall()
        return {str(status): int(count) for status, count in rows}

    def prune(self, before: float) -> int:
        """Forget finished events (succeeded, failed) last changed before `before`."""
        with self._store.transaction() as conn:
            return conn.execute(
                "DELETE FROM events WHERE status IN ('succeeded', 'failed') AND updated_at < ?",
                (before,),
            ).rowcount


class SqliteEventInvokeConfigStore:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"<SqliteEventInvokeConfigStore {self._store.path}>"

    def get(self, function_name: str, qualifier: str) -> tuple[EventInvokeConfig, float] | None:
        """The config stored for exactly this qualifier (`ALL_QUALIFIERS` for the function's
        own), with when it was last modified."""
        with self._store.transaction(write=False) as conn:
            row = conn.execute(
                "SELECT config, last_modified FROM event_invoke_configs "
                "WHERE function_name = ? AND qualifier = ?",
                (function_name, qualifier),
            ).fetchone()
        return (_config(row["config"]), float(row["last_modified"])) if row else None

    def effective(self, function_name: str, qualifier: str) -> EventInvokeConfig:
        """The qualifier's own config, else the function's, else Lambda's defaults."""
        with self._store.transaction(write=False) as conn:
            row = conn.execute(
                "SELECT config FROM event_invoke_configs WHERE function_name = ? "
                "AND qualifier IN (?, ?) ORDER BY qualifier = ? LIMIT 1",
                (function_name, qualifier, ALL_QUALIFIERS, ALL_QUALIFIERS),
            ).fetchone()
        return _config(row["config"]) if row else EventInvokeConfig()

    def put(
        self, function_name: str, qualifier: str, config: EventInvokeConfig, now: float
    ) -> None:
        with self._store.transaction() as conn:
            _put(conn, function_name, qualifier, config, now)

    def delete(self, function_name: str, qualifier: str) -> bool:
        with self._store.transaction() as conn:
            return (
                conn.execute(
                    "DELETE FROM event_invoke_configs WHERE function_name = ? AND qualifier = ?",
                    (function_name, qualifier),
                ).rowcount
                > 0
            )

    def set_functions(
        self,
        configs: Mapping[str, EventInvokeConfig | None],
        removed: Collection[str],
        now: float,
    ) -> None:
        """A deployment's functions: each one's config for all qualifiers (None: Lambda's
        defaults); the configs of `removed` functions are all deleted."""
        with self._store.transaction() as conn:
            for name, config in configs.items():
                if config is None:
                    conn.execute(
                        "DELETE FROM event_invoke_configs WHERE function_name = ? "
                        "AND qualifier = ?",
                        (name, ALL_QUALIFIERS),
                    )
                else:
                    _put(conn, name, ALL_QUALIFIERS, config, now)
            conn.executemany(
                "DELETE FROM event_invoke_configs WHERE function_name = ?",
                ((name,) for name in removed),
            )


def _put(
    conn: sqlite3.Connection,
    function_name: str,
    qualifier: str,
    config: EventInvokeConfig,
    now: float,
) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO event_invoke_configs "
        "(function_name, qualifier, config, last_modified) VALUES (?, ?, ?, ?)",
        (function_name, qualifier, _json(dataclasses.asdict(config)), now),
    )


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _config(text: str) -> EventInvokeConfig:
    return EventInvokeConfig(**orjson.loads(text))


def event_row(e: QueuedEvent) -> tuple[object, ...]:
    return (
        e.id,
        e.function_name,
        e.qualifier,
        e.payload,
        e.enqueued_at,
        e.attempts,
        e.status,
        e.not_before,
        e.throttles,
        e.updated_at,
        _json(e.detail),
    )


def _event(row: sqlite3.Row) -> QueuedEvent:
    fields = dict(row)
    fields["detail"] = orjson.loads(fields["detail"])
    return QueuedEvent(**fields)
