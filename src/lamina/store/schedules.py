"""Schedule rules, on the SQLite file of `SqliteStore`.

A firing is one transaction: the rule's `last_fired` and the asynchronous event it starts are
written together, so a crash neither loses a firing nor repeats one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from lamina.core.models import QueuedEvent
from lamina.core.schedules import ScheduleRule
from lamina.store.events import INSERT_EVENT, event_row
from lamina.store.sqlite import SqliteStore

_COLUMNS = (
    "rule, service, stage, function_name, qualifier, expression, timezone, enabled, input, "
    "input_path, description, last_fired, created"
)


class SqliteScheduleStore:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"<SqliteScheduleStore {self._store.path}>"

    def list(self) -> list[ScheduleRule]:
        with self._store.transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM schedules ORDER BY service, stage, rule"
            ).fetchall()
        return [_rule(row) for row in rows]

    def owners(self, rules: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Rule name -> (service, stage) of the stack that has it, for these names."""
        with self._store.transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT rule, service, stage FROM schedules "
                f"WHERE rule IN ({', '.join('?' for _ in rules)})",
                tuple(rules),
            ).fetchall()
        return {row["rule"]: (row["service"], row["stage"]) for row in rows}

    def set_stack(
        self, service: str, stage: str, rules: Sequence[ScheduleRule], now: float
    ) -> None:
        """The stack's rules become exactly `rules`. A rule that keeps its name, expression
        and time zone keeps its last firing; any other starts afresh from `now`."""
        with self._store.transaction() as conn:
            current = {
                row["rule"]: row
                for row in conn.execute(
                    "SELECT rule, expression, timezone FROM schedules "
                    "WHERE service = ? AND stage = ?",
                    (service, stage),
                )
            }
            wanted = {r.rule for r in rules}
            conn.executemany(
                "DELETE FROM schedules WHERE rule = ?",
                ((name,) for name in current if name not in wanted),
            )
            for r in rules:
                old = current.get(r.rule)
                same = old is not None and (old["expression"], old["timezone"]) == (
                    r.expression,
                    r.timezone,
                )
                if same:
                    conn.execute(
                        "UPDATE schedules SET function_name = ?, qualifier = ?, enabled = ?, "
                        "input = ?, input_path = ?, description = ? WHERE rule = ?",
                        (
                            r.function_name,
                            r.qualifier,
                            int(r.enabled),
                            r.input,
                            r.input_path,
                            r.description,
                            r.rule,
                        ),
                    )
                    continue
                conn.execute(
                    f"INSERT OR REPLACE INTO schedules ({_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                    (
                        r.rule,
                        service,
                        stage,
                        r.function_name,
                        r.qualifier,
                        r.expression,
                        r.timezone,
                        int(r.enabled),
                        r.input,
                        r.input_path,
                        r.description,
                        now,
                    ),
                )

    def delete_stack(self, service: str, stage: str) -> int:
        with self._store.transaction() as conn:
            return conn.execute(
                "DELETE FROM schedules WHERE service = ? AND stage = ?", (service, stage)
            ).rowcount

    def fire(self, rule: str, fired: float, event: QueuedEvent) -> bool:
        """Record the firing and enqueue its event; False (nothing written) when the rule
        is gone (a deployment removed it meanwhile)."""
        with self._store.transaction() as conn:
            updated = conn.execute(
                "UPDATE schedules SET last_fired = ? WHERE rule = ?", (fired, rule)
            ).rowcount
            if updated:
                conn.execute(INSERT_EVENT, event_row(event))
        return updated > 0


def _rule(row: sqlite3.Row) -> ScheduleRule:
    fields = dict(row)
    fields["enabled"] = bool(fields["enabled"])
    return ScheduleRule(**fields)
