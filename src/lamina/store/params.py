"""`SqliteParameterStore`: the parameter store (`core.params.ParameterRepository`) in SQLite.

Two tables (migration 2): `parameters` holds one row per name with its newest version's
settings; `parameter_versions` holds each kept version's value (sealed for a SecureString)
and labels (a JSON list). Every method is one transaction on `SqliteStore`'s connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from lamina.core.params import (
    MAX_VERSIONS,
    Build,
    ParameterFilter,
    ParameterMaxVersionLimitExceeded,
    ParameterType,
    ParameterVersion,
    Selector,
    attach_labels,
    under,
)
from lamina.store.sqlite import SqliteStore

# A version row with its parameter's tier and data type (they are per parameter).
_SELECT = (
    "SELECT v.name, v.version, v.type, v.value, v.last_modified, v.description, v.key_id, "
    "v.allowed_pattern, v.labels, p.tier, p.data_type "
    "FROM parameters p JOIN parameter_versions v ON v.name = p.name"
)


class SqliteParameterStore:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"<SqliteParameterStore {self._store.path}>"

    def put(self, name: str, build: Build) -> ParameterVersion:
        with self._store.transaction() as conn:
            new = build(_latest(conn, name))
            _make_room(conn, name)
            conn.execute(
                "INSERT INTO parameters (name, type, version, description, key_id, "
                "allowed_pattern, tier, data_type, last_modified) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "type = excluded.type, version = excluded.version, "
                "description = excluded.description, key_id = excluded.key_id, "
                "allowed_pattern = excluded.allowed_pattern, tier = excluded.tier, "
                "data_type = excluded.data_type, last_modified = excluded.last_modified",
                (
                    new.name,
                    new.type,
                    new.version,
                    new.description,
                    new.key_id,
                    new.allowed_pattern,
                    new.tier,
                    new.data_type,
                    new.last_modified,
                ),
            )
            conn.execute(
                "INSERT INTO parameter_versions (name, version, type, value, description, "
                "key_id, allowed_pattern, labels, last_modified) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.name,
                    new.version,
                    new.type,
                    new.value,
                    new.description,
                    new.key_id,
                    new.allowed_pattern,
                    _json(list(new.labels)),
                    new.last_modified,
                ),
            )
        return new

    def get(self, name: str, selector: Selector | None = None) -> ParameterVersion | None:
        with self._store.transaction(write=False) as conn:
            return _get(conn, name, selector)

    def get_many(
        self, references: Sequence[tuple[str, Selector | None]]
    ) -> list[ParameterVersion | None]:
        with self._store.transaction(write=False) as conn:
            return [_get(conn, name, selector) for name, selector in references]

    def by_path(
        self,
        path: str,
        *,
        recursive: bool,
        filters: Sequence[ParameterFilter],
        after: str | None,
        limit: int,
    ) -> list[ParameterVersion]:
        prefix = under(path)
        where = ["substr(p.name, 1, ?) = ?", "p.name > ?"]
        args: list[object] = [len(prefix), prefix, after or ""]
        if not recursive:
            where.append("instr(substr(p.name, ?), '/') = 0")
            args.append(len(prefix) + 1)
        labels = [value for f in filters if f.key == "Label" for value in f.values]
        if labels:
            # With a Label filter, the answer is the newest version carrying the label.
            version = (
                "(SELECT MAX(lv.version) FROM parameter_versions lv, json_each(lv.labels) l "
                f"WHERE lv.name = p.name AND l.value IN ({_marks(labels)}))"
            )
            args = [*labels, *args]
        else:
            version = "p.version"
        for f in filters:
            if f.key in ("Type", "KeyId"):
                where.append(f"v.{_COLUMNS[f.key]} IN ({_marks(f.values)})")
                args.extend(f.values)
        sql = f"{_SELECT} AND v.version = {version} WHERE {' AND '.join(where)}"
        with self._store.transaction(write=False) as conn:
            rows = conn.execute(f"{sql} ORDER BY p.name LIMIT ?", (*args, limit)).fetchall()
        return [_version(row) for row in rows]

    def describe(
        self, filters: Sequence[ParameterFilter], *, after: str | None, limit: int
    ) -> list[ParameterVersion]:
        where = ["p.name > ?"]
        args: list[object] = [after or ""]
        for f in filters:
            clause, values = _filter(f)
            where.append(clause)
            args.extend(values)
        sql = f"{_SELECT} AND v.version = p.version WHERE {' AND '.join(where)}"
        with self._store.transaction(write=False) as conn:
            rows = conn.execute(f"{sql} ORDER BY p.name LIMIT ?", (*args, limit)).fetchall()
        return [_version(row) for row in rows]

    def history(self, name: str) -> list[ParameterVersion]:
        with self._store.transaction(write=False) as conn:
            rows = conn.execute(
                f"{_SELECT} WHERE p.name = ? ORDER BY v.version", (name,)
            ).fetchall()
        return [_version(row) for row in rows]

    def label(self, name: str, version: int | None, labels: Sequence[str]) -> int | None:
        with self._store.transaction() as conn:
            rows = conn.execute(
                "SELECT v.version, v.labels, p.version AS latest FROM parameter_versions v "
                "JOIN parameters p ON p.name = v.name WHERE v.name = ?",
                (name,),
            ).fetchall()
            if not rows:
                return None
            target = version if version is not None else int(rows[0]["latest"])
            before = {int(r["version"]): tuple(orjson.loads(r["labels"])) for r in rows}
            after = attach_labels(name, before, target, labels)
            conn.executemany(
                "UPDATE parameter_versions SET labels = ? WHERE name = ? AND version = ?",
                ((_json(list(ls)), name, v) for v, ls in after.items() if ls != before[v]),
            )
        return target

    def delete(self, name: str) -> bool:
        with self._store.transaction() as conn:
            return _delete(conn, name)

    def delete_many(self, names: Sequence[str]) -> list[str]:
        with self._store.transaction() as conn:
            return [name for name in dict.fromkeys(names) if _delete(conn, name)]


_COLUMNS = {"Type": "type", "KeyId": "key_id", "Tier": "tier", "DataType": "data_type"}


def _filter(f: ParameterFilter) -> tuple[str, list[object]]:
    """DescribeParameters' filters on a parameter's newest version; values are alternatives."""
    values = list(f.values)
    if f.key in _COLUMNS:
        return f"p.{_COLUMNS[f.key]} IN ({_marks(values)})", [*values]
    if f.key == "Label":
        return (
            "EXISTS (SELECT 1 FROM parameter_versions lv, json_each(lv.labels) l "
            f"WHERE lv.name = p.name AND l.value IN ({_marks(values)}))",
            [*values],
        )
    if f.key == "Path":
        # OneLevel: names directly below the path; Recursive: anywhere below it.
        one = "(substr(p.name, 1, ?) = ? AND instr(substr(p.name, ?), '/') = 0)"
        deep = "substr(p.name, 1, ?) = ?"
        args: list[object] = []
        for value in values:
            prefix = under(value)
            args += [len(prefix), prefix] + ([] if f.option == "Recursive" else [len(prefix) + 1])
        each = deep if f.option == "Recursive" else one
        return "(" + " OR ".join([each] * len(values)) + ")", args
    # Name: Equals, BeginsWith or Contains.
    each = {
        "Equals": "p.name = ?",
        "BeginsWith": "substr(p.name, 1, length(?)) = ?",
        "Contains": "instr(p.name, ?) > 0",
    }[f.option]
    per = 2 if f.option == "BeginsWith" else 1
    return "(" + " OR ".join([each] * len(values)) + ")", [v for v in values for _ in range(per)]


def _latest(conn: sqlite3.Connection, name: str) -> ParameterVersion | None:
    row = conn.execute(f"{_SELECT} AND v.version = p.version WHERE p.name = ?", (name,)).fetchone()
    return _version(row) if row else None


def _get(conn: sqlite3.Connection, name: str, selector: Selector | None) -> ParameterVersion | None:
    if selector is None:
        return _latest(conn, name)
    if selector.version is not None:
        row = conn.execute(
            f"{_SELECT} WHERE p.name = ? AND v.version = ?", (name, selector.version)
        ).fetchone()
    else:
        row = conn.execute(
            f"{_SELECT} WHERE p.name = ? AND EXISTS "
            "(SELECT 1 FROM json_each(v.labels) l WHERE l.value = ?)",
            (name, selector.label),
        ).fetchone()
    return _version(row) if row else None


def _make_room(conn: sqlite3.Connection, name: str) -> None:
    """Drop the oldest version if the parameter has all it may keep, unless it is labelled:
    a label is a promise that the version stays reachable."""
    rows = conn.execute(
        "SELECT version, labels FROM parameter_versions WHERE name = ? ORDER BY version",
        (name,),
    ).fetchall()
    if len(rows) < MAX_VERSIONS:
        return
    oldest = rows[0]
    if orjson.loads(oldest["labels"]):
        raise ParameterMaxVersionLimitExceeded(
            f"Parameter {name} has {len(rows)} versions, the most kept; its oldest, version "
            f"{oldest['version']}, cannot be dropped because it has a label. Move the label "
            "to another version and try again"
        )
    conn.execute(
        "DELETE FROM parameter_versions WHERE name = ? AND version = ?", (name, oldest["version"])
    )


def _delete(conn: sqlite3.Connection, name: str) -> bool:
    # parameter_versions go with it (ON DELETE CASCADE).
    return conn.execute("DELETE FROM parameters WHERE name = ?", (name,)).rowcount > 0


def _version(row: sqlite3.Row) -> ParameterVersion:
    kind: ParameterType = row["type"]
    return ParameterVersion(
        name=row["name"],
        version=int(row["version"]),
        type=kind,
        value=bytes(row["value"]),
        last_modified=float(row["last_modified"]),
        description=row["description"],
        key_id=row["key_id"],
        allowed_pattern=row["allowed_pattern"],
        labels=tuple(orjson.loads(row["labels"])),
        tier=row["tier"],
        data_type=row["data_type"],
    )


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def _json(value: object) -> str:
    return orjson.dumps(value).decode()
