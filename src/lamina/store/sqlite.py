"""`SqliteStore`: the `Store` port on one SQLite file in WAL mode.

One connection shared by the event loop thread and the log-batching thread, so every method
holds `_lock` for its whole transaction. Transactions are explicit (`BEGIN IMMEDIATE`) rather
than the sqlite3 module's implicit ones, which do not cover SELECTs and so cannot make a
read-then-write atomic.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import orjson

from lamina.core.models import LATEST, FunctionConfig, LayerVersion, LogEvent
from lamina.store.migrations import migrate, transaction

BUSY_TIMEOUT_MS = 5_000

_FUNCTION_COLUMNS = (
    "name, version, runtime, handler, code_sha256, code_size, memory_size, timeout, "
    "environment, layers, description, reserved_concurrency, revision_id, last_modified"
)
_LAYER_COLUMNS = (
    "name, version, code_sha256, code_size, description, compatible_runtimes, created_date"
)


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self.schema_version = migrate(self._conn, path)
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"<SqliteStore {self.path} schema={self.schema_version}>"

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction on the shared connection; for the store's other adapters
        (`store/params.py`, `store/deployments.py`), which share this file and its lock."""
        # Reads begin DEFERRED: under WAL they then never block another process's writer.
        with self._lock, transaction(self._conn, immediate=write):
            yield self._conn

    # functions

    def get_function(self, name: str, version: str = LATEST) -> FunctionConfig | None:
        with self.transaction(write=False) as conn:
            row = conn.execute(
                f"SELECT {_FUNCTION_COLUMNS} FROM functions WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
        return _function(row) if row else None

    def list_functions(self) -> list[FunctionConfig]:
        with self.transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT {_FUNCTION_COLUMNS} FROM functions WHERE version = ? ORDER BY name",
                (LATEST,),
            ).fetchall()
        return [_function(row) for row in rows]

    def put_function(self, config: FunctionConfig) -> None:
        with self.transaction() as conn:
            insert_function(conn, config)

    def delete_function(self, name: str) -> bool:
        with self.transaction() as conn:
            deleted = conn.execute("DELETE FROM functions WHERE name = ?", (name,)).rowcount
        return deleted > 0

    # layers

    def publish_layer_version(self, layer: LayerVersion) -> LayerVersion:
        with self.transaction() as conn:
            (latest,) = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM layer_versions WHERE name = ?",
                (layer.name,),
            ).fetchone()
            stored = replace(layer, version=int(latest) + 1)
            conn.execute(
                f"INSERT INTO layer_versions ({_LAYER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    stored.name,
                    stored.version,
                    stored.code_sha256,
                    stored.code_size,
                    stored.description,
                    _json(list(stored.compatible_runtimes)),
                    stored.created_date,
                ),
            )
        return stored

    def get_layer_version(self, name: str, version: int) -> LayerVersion | None:
        with self.transaction(write=False) as conn:
            row = conn.execute(
                f"SELECT {_LAYER_COLUMNS} FROM layer_versions WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
        return _layer(row) if row else None

    def list_layer_versions(self, name: str) -> list[LayerVersion]:
        with self.transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT {_LAYER_COLUMNS} FROM layer_versions WHERE name = ? ORDER BY version DESC",
                (name,),
            ).fetchall()
        return [_layer(row) for row in rows]

    # logs

    def append_logs(self, events: Sequence[LogEvent]) -> None:
        if not events:
            return
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO logs (function_name, stream, timestamp_ms, message) "
                "VALUES (?, ?, ?, ?)",
                ((e.function_name, e.stream, e.timestamp_ms, e.message) for e in events),
            )

    def query_logs(
        self, function_name: str, since_ms: int, after_id: int = 0, limit: int = 10_000
    ) -> list[tuple[int, LogEvent]]:
        with self.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT id, function_name, stream, timestamp_ms, message FROM logs "
                "WHERE function_name = ? AND timestamp_ms >= ? AND id > ? ORDER BY id LIMIT ?",
                (function_name, since_ms, after_id, limit),
            ).fetchall()
        return [_log(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _function(row: sqlite3.Row) -> FunctionConfig:
    fields = dict(row)
    fields["environment"] = orjson.loads(fields["environment"])
    fields["layers"] = tuple(orjson.loads(fields["layers"]))
    return FunctionConfig(**fields)


def _layer(row: sqlite3.Row) -> LayerVersion:
    fields = dict(row)
    fields["compatible_runtimes"] = tuple(orjson.loads(fields["compatible_runtimes"]))
    return LayerVersion(**fields)


def _log(row: sqlite3.Row) -> tuple[int, LogEvent]:
    fields = dict(row)
    log_id = fields.pop("id")
    return log_id, LogEvent(**fields)


def insert_function(conn: sqlite3.Connection, config: FunctionConfig) -> None:
    """Insert or replace one function version's row (inside the caller's transaction)."""
    c = config
    conn.execute(
        f"INSERT OR REPLACE INTO functions ({_FUNCTION_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            c.name,
            c.version,
            c.runtime,
            c.handler,
            c.code_sha256,
            c.code_size,
            c.memory_size,
            c.timeout,
            _json(c.environment),
            _json(list(c.layers)),
            c.description,
            c.reserved_concurrency,
            c.revision_id,
            c.last_modified,
        ),
    )
