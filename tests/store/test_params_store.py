from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from lamina.core.params import (
    MAX_VERSIONS,
    ParameterAlreadyExists,
    ParameterFilter,
    ParameterMaxVersionLimitExceeded,
    ParameterVersion,
    ParameterVersionNotFound,
    PutParameterRequest,
    Selector,
    next_version,
)
from lamina.store.params import SqliteParameterStore
from lamina.store.sqlite import SqliteStore


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "lamina.db")
    yield store
    store.close()


@pytest.fixture
def params(sqlite: SqliteStore) -> SqliteParameterStore:
    return SqliteParameterStore(sqlite)


def put(
    params: SqliteParameterStore,
    name: str,
    value: str = "v",
    type: str | None = "String",
    *,
    overwrite: bool = True,
    now: float = 1000.0,
    **fields: object,
) -> ParameterVersion:
    request = PutParameterRequest(name, value, type, overwrite, **fields)  # type: ignore[arg-type]
    return params.put(name, lambda current: next_version(request, current, now))


def found(
    params: SqliteParameterStore, name: str, selector: Selector | None = None
) -> ParameterVersion:
    version = params.get(name, selector)
    assert version is not None, f"{name}{selector or ''} not found"
    return version


def names(versions: list[ParameterVersion]) -> list[str]:
    return [v.name for v in versions]


def test_put_and_get_versions(params: SqliteParameterStore) -> None:
    first = put(params, "/app/a", "one", description="d", now=1.5)
    second = put(params, "/app/a", "two", type=None, now=2.5)

    assert (first.version, second.version) == (1, 2)
    assert params.get("/app/a") == second
    assert params.get("/app/a", Selector(version=1)) == first
    assert params.get("/app/a", Selector(version=3)) is None
    assert params.get("/app/b") is None
    assert second.description == "d" and second.last_modified == 2.5


def test_a_failed_build_changes_nothing(params: SqliteParameterStore) -> None:
    put(params, "/app/a", "one")
    with pytest.raises(ParameterAlreadyExists):
        put(params, "/app/a", "two", overwrite=False)
    assert params.get("/app/a") is not None
    assert [v.value for v in params.history("/app/a")] == [b"one"]


def test_values_are_stored_as_given(params: SqliteParameterStore, sqlite: SqliteStore) -> None:
    request = PutParameterRequest("/s", "plain", "SecureString")
    sealed = b"\x01sealed\x00bytes"
    params.put("/s", lambda c: replace(next_version(request, c, 1.0), value=sealed))
    with sqlite.transaction(write=False) as conn:
        (stored,) = conn.execute("SELECT value FROM parameter_versions").fetchone()
    assert stored == sealed
    assert found(params, "/s").value == sealed


def test_get_many_in_one_go(params: SqliteParameterStore) -> None:
    put(params, "/a", "1")
    put(params, "/a", "2")
    many = params.get_many([("/a", None), ("/nope", None), ("/a", Selector(version=1))])
    assert [v.value if v else None for v in many] == [b"2", None, b"1"]


def test_only_the_newest_100_versions_are_kept(params: SqliteParameterStore) -> None:
    for i in range(MAX_VERSIONS + 2):
        put(params, "/many", str(i))
    history = params.history("/many")
    assert len(history) == MAX_VERSIONS
    assert (history[0].version, history[-1].version) == (3, MAX_VERSIONS + 2)
    assert params.get("/many", Selector(version=2)) is None


def test_a_labelled_oldest_version_blocks_the_101st(params: SqliteParameterStore) -> None:
    for i in range(MAX_VERSIONS):
        put(params, "/many", str(i))
    params.label("/many", 1, ["keep"])
    with pytest.raises(ParameterMaxVersionLimitExceeded, match="version 1, cannot be dropped"):
        put(params, "/many", "one too many")
    assert found(params, "/many").version == 100
    assert len(params.history("/many")) == MAX_VERSIONS


def test_labels_select_and_move(params: SqliteParameterStore) -> None:
    put(params, "/a", "1")
    put(params, "/a", "2")
    assert params.label("/a", 1, ["prod", "blue"]) == 1
    assert found(params, "/a", Selector(label="prod")).version == 1
    assert params.label("/a", None, ["prod"]) == 2  # None: the newest version
    assert [v.labels for v in params.history("/a")] == [("blue",), ("prod",)]
    assert found(params, "/a", Selector(label="prod")).version == 2
    assert params.get("/a", Selector(label="green")) is None
    assert params.label("/nope", None, ["x"]) is None
    with pytest.raises(ParameterVersionNotFound):
        params.label("/a", 9, ["x"])


def test_delete_removes_every_version(params: SqliteParameterStore, sqlite: SqliteStore) -> None:
    put(params, "/a")
    put(params, "/a")
    assert params.delete("/a") is True
    assert params.delete("/a") is False
    with sqlite.transaction(write=False) as conn:
        assert conn.execute("SELECT COUNT(*) FROM parameter_versions").fetchone()[0] == 0
    assert put(params, "/a").version == 1  # a new parameter, from version 1


def test_delete_many(params: SqliteParameterStore) -> None:
    put(params, "/a")
    put(params, "/b")
    assert params.delete_many(["/a", "/x", "/b", "/a"]) == ["/a", "/b"]
    assert params.get("/a") is None


@pytest.fixture
def tree(params: SqliteParameterStore) -> SqliteParameterStore:
    for name in ["/app/b", "/app/a", "/app/deep/c", "/app/deep/er/d", "/apple", "/other/x", "flat"]:
        put(params, name, name)
    put(params, "/app/s", "secret", "SecureString", key_id="alias/mine")
    return params


def by_path(
    params: SqliteParameterStore, path: str, recursive: bool = False, **kw: object
) -> list[str]:
    args: dict[str, object] = {"filters": (), "after": None, "limit": 50, **kw}
    return names(params.by_path(path, recursive=recursive, **args))  # type: ignore[arg-type]


def test_by_path_one_level_or_recursive_sorted(tree: SqliteParameterStore) -> None:
    assert by_path(tree, "/app") == ["/app/a", "/app/b", "/app/s"]
    assert by_path(tree, "/app", True) == [
        "/app/a",
        "/app/b",
        "/app/deep/c",
        "/app/deep/er/d",
        "/app/s",
    ]
    assert by_path(tree, "/") == ["/apple"]
    assert "flat" not in by_path(tree, "/", True)
    assert by_path(tree, "/app/a") == []  # a parameter is not below itself


def test_by_path_pages_by_name(tree: SqliteParameterStore) -> None:
    assert by_path(tree, "/app", True, limit=2) == ["/app/a", "/app/b"]
    assert by_path(tree, "/app", True, after="/app/b", limit=2) == ["/app/deep/c", "/app/deep/er/d"]


def test_by_path_filters(tree: SqliteParameterStore) -> None:
    secure = ParameterFilter("Type", ("SecureString",), "Equals")
    key = ParameterFilter("KeyId", ("alias/mine",), "Equals")
    assert by_path(tree, "/app", filters=(secure,)) == ["/app/s"]
    assert by_path(tree, "/app", filters=(key,)) == ["/app/s"]


def test_by_path_with_a_label_returns_the_labelled_version(tree: SqliteParameterStore) -> None:
    put(tree, "/app/a", "newer")
    tree.label("/app/a", 1, ["prod"])
    label = ParameterFilter("Label", ("prod", "other"), "Equals")
    [labelled] = tree.by_path("/app", recursive=False, filters=(label,), after=None, limit=10)
    assert (labelled.name, labelled.version, labelled.value) == ("/app/a", 1, b"/app/a")


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (ParameterFilter("Name", ("/app/a", "flat"), "Equals"), ["/app/a", "flat"]),
        (ParameterFilter("Name", ("/app/d",), "BeginsWith"), ["/app/deep/c", "/app/deep/er/d"]),
        (
            ParameterFilter("Name", ("pp",), "Contains"),
            ["/app/a", "/app/b", "/app/deep/c", "/app/deep/er/d", "/app/s", "/apple"],
        ),
        (ParameterFilter("Path", ("/app/deep", "/other"), "OneLevel"), ["/app/deep/c", "/other/x"]),
        (ParameterFilter("Path", ("/app/deep",), "Recursive"), ["/app/deep/c", "/app/deep/er/d"]),
        (ParameterFilter("Type", ("SecureString",), "Equals"), ["/app/s"]),
        (ParameterFilter("KeyId", ("alias/mine",), "Equals"), ["/app/s"]),
        (ParameterFilter("Tier", ("Standard",), "Equals"), None),
        (ParameterFilter("DataType", ("text",), "Equals"), None),
    ],
)
def test_describe_filters(
    tree: SqliteParameterStore, flt: ParameterFilter, expected: list[str] | None
) -> None:
    everything = names(tree.describe((), after=None, limit=50))
    assert names(tree.describe((flt,), after=None, limit=50)) == (expected or everything)


def test_describe_label_filter_and_paging(tree: SqliteParameterStore) -> None:
    put(tree, "/app/b", "2")
    tree.label("/app/b", 1, ["old"])
    label = ParameterFilter("Label", ("old",), "Equals")
    [described] = tree.describe((label,), after=None, limit=50)
    assert (described.name, described.version) == ("/app/b", 2)  # metadata of the newest version
    assert names(tree.describe((), after="/app/s", limit=2)) == ["/apple", "/other/x"]


def test_history_is_oldest_first_and_empty_when_missing(params: SqliteParameterStore) -> None:
    put(params, "/a", "1", now=1.0)
    put(params, "/a", "2", "StringList", now=2.0)
    history = params.history("/a")
    assert [(v.version, v.type, v.last_modified) for v in history] == [
        (1, "String", 1.0),
        (2, "StringList", 2.0),
    ]
    assert params.history("/nope") == []


def test_sql_wildcards_in_names_are_plain_characters(params: SqliteParameterStore) -> None:
    put(params, "/a_b/x")
    put(params, "/aXb/y")
    assert by_path(params, "/a_b") == ["/a_b/x"]


def test_the_schema_keeps_types_closed(sqlite: SqliteStore) -> None:
    with pytest.raises(sqlite3.IntegrityError), sqlite.transaction() as conn:
        conn.execute(
            "INSERT INTO parameters (name, type, version, last_modified) VALUES ('x', 'Bad', 1, 0)"
        )
