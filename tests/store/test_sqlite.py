from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.core.models import FunctionConfig, LayerVersion, LogEvent
from lamina.store import migrations
from lamina.store.migrations import MIGRATIONS, SchemaTooNewError
from lamina.store.sqlite import SqliteStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "lamina.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(db_path)
    yield s
    s.close()


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _function(name: str = "api", **changes: object) -> FunctionConfig:
    fields: dict[str, object] = {
        "name": name,
        "runtime": "python3.12",
        "handler": "app.handler",
        "code_sha256": "ab" * 32,
        "code_size": 1234,
    }
    fields.update(changes)
    return FunctionConfig(**fields)  # type: ignore[arg-type]


# schema and migrations


def test_fresh_database_is_at_latest_version_in_wal_mode(store: SqliteStore, db_path: Path) -> None:
    assert store.schema_version == len(MIGRATIONS)
    assert _user_version(db_path) == len(MIGRATIONS)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_reopening_is_idempotent_and_keeps_data(db_path: Path) -> None:
    first = SqliteStore(db_path)
    first.put_function(_function())
    first.close()

    second = SqliteStore(db_path)
    assert second.schema_version == len(MIGRATIONS)
    assert second.get_function("api") == _function()
    second.close()


def test_newer_schema_is_refused(db_path: Path) -> None:
    SqliteStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()

    with pytest.raises(SchemaTooNewError) as excinfo:
        SqliteStore(db_path)
    assert str(excinfo.value) == (
        f"{db_path}: schema version 7 is newer than this Lamina (knows {len(MIGRATIONS)}); "
        "upgrade Lamina"
    )
    assert _user_version(db_path) == 7


def test_failing_migration_is_rolled_back_whole(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SqliteStore(db_path).close()
    broken = "CREATE TABLE half (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, broken))

    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        SqliteStore(db_path)

    assert _user_version(db_path) == len(MIGRATIONS)
    conn = sqlite3.connect(db_path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "half" not in tables


def test_migration_scripts_split_into_statements() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (x INTEGER);
    CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
        UPDATE t SET x = x + 1;
    END;
    """
    statements = list(migrations._statements(script))
    assert len(statements) == 2
    assert statements[1].endswith("END;")


# functions


def test_function_round_trips_every_field(store: SqliteStore) -> None:
    config = _function(
        memory_size=512,
        timeout=30,
        environment={"A": "1", "UNICODE": "é ✓", "EMPTY": ""},
        layers=("arn:aws:lambda:us-east-1:000000000000:layer:x:2", "arn:...:layer:y:1"),
        description="the api",
        reserved_concurrency=0,
        revision_id="rev-1",
        last_modified="2024-01-02T03:04:05.000+0000",
    )
    store.put_function(config)
    assert store.get_function("api") == config

    store.put_function(_function(reserved_concurrency=None))
    stored = store.get_function("api")
    assert stored is not None
    assert stored.reserved_concurrency is None
    assert stored.layers == ()
    assert stored.environment == {}


def test_versions_are_kept_apart_and_list_shows_latest_by_name(store: SqliteStore) -> None:
    store.put_function(_function("zeta"))
    store.put_function(_function("api", handler="v1.handler", version="1"))
    store.put_function(_function("api", handler="latest.handler"))

    assert store.get_function("api", "1") == _function("api", handler="v1.handler", version="1")
    assert [f.name for f in store.list_functions()] == ["api", "zeta"]
    assert store.list_functions()[0].handler == "latest.handler"
    assert store.get_function("api", "2") is None
    assert store.get_function("missing") is None


def test_delete_function_removes_every_version(store: SqliteStore) -> None:
    store.put_function(_function())
    store.put_function(_function(version="1"))
    store.put_function(_function("other"))

    assert store.delete_function("api") is True
    assert store.get_function("api") is None
    assert store.get_function("api", "1") is None
    assert store.delete_function("api") is False
    assert [f.name for f in store.list_functions()] == ["other"]


# layers


def _layer(name: str = "deps", version: int = 99) -> LayerVersion:
    return LayerVersion(
        name=name,
        version=version,
        code_sha256="cd" * 32,
        code_size=10,
        description="dependencies",
        compatible_runtimes=("python3.11", "python3.12"),
        created_date="2024-01-02T03:04:05.000+0000",
    )


def test_publish_layer_version_assigns_the_next_version(store: SqliteStore) -> None:
    first = store.publish_layer_version(_layer(version=99))
    second = store.publish_layer_version(_layer(version=0))
    other = store.publish_layer_version(_layer("other"))

    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert store.get_layer_version("deps", 1) == _layer(version=1)
    assert store.get_layer_version("deps", 3) is None
    assert [lv.version for lv in store.list_layer_versions("deps")] == [2, 1]
    assert store.list_layer_versions("missing") == []


# logs


def _log(function: str, ts: int, message: str = "line") -> LogEvent:
    return LogEvent(
        function_name=function, stream="2024/01/01/[$LATEST]abc", timestamp_ms=ts, message=message
    )


def test_query_logs_filters_by_function_and_time(store: SqliteStore) -> None:
    store.append_logs([_log("api", 100, "a"), _log("other", 150), _log("api", 200, "b")])
    store.append_logs([_log("api", 50, "late but old")])

    rows = store.query_logs("api", since_ms=0)
    assert [e.message for _, e in rows] == ["a", "b", "late but old"]
    assert [i for i, _ in rows] == sorted(i for i, _ in rows)
    assert rows[0][1] == _log("api", 100, "a")
    assert [e.message for _, e in store.query_logs("api", since_ms=100)] == ["a", "b"]
    assert store.query_logs("nobody", since_ms=0) == []


def test_query_logs_pages_with_after_id(store: SqliteStore) -> None:
    store.append_logs([_log("api", ts, str(ts)) for ts in range(10)])

    seen: list[str] = []
    after_id = 0
    while page := store.query_logs("api", since_ms=0, after_id=after_id, limit=3):
        assert len(page) <= 3
        seen += [e.message for _, e in page]
        after_id = page[-1][0]
    assert seen == [str(ts) for ts in range(10)]


def test_failing_log_batch_leaves_nothing(store: SqliteStore) -> None:
    store.append_logs([_log("api", 1, "kept")])
    batch = [_log("api", 2), _log("api", 3), _log("api", 2**70)]  # too big for an INTEGER

    with pytest.raises(OverflowError):
        store.append_logs(batch)

    assert [e.message for _, e in store.query_logs("api", since_ms=0)] == ["kept"]
    store.append_logs([_log("api", 4, "after")])  # the connection is usable again
    assert len(store.query_logs("api", since_ms=0)) == 2


def test_empty_log_batch_is_a_no_op(store: SqliteStore) -> None:
    store.append_logs([])
    assert store.query_logs("api", since_ms=0) == []


def test_store_is_shared_between_threads(store: SqliteStore) -> None:
    def write(function: str) -> None:
        for ts in range(50):
            store.append_logs([_log(function, ts), _log(function, ts)])

    threads = [threading.Thread(target=write, args=(f"f{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for ts in range(50):
        store.put_function(_function(timeout=ts + 1))
        store.list_functions()
    for t in threads:
        t.join()

    assert all(len(store.query_logs(f"f{i}", since_ms=0)) == 100 for i in range(4))
