"""Published versions, aliases and layer versions, on the `SqliteStore`'s file.

The services compose several of these operations into one use case (publish a version only
if `$LATEST` changed; delete a version only if no alias points to it; apply a whole
deployment), so they are methods of a transaction object rather than one transaction each:
`with versions.transaction() as tx: ...` commits everything done through `tx`, or nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import orjson

from lamina.core.models import LATEST, FunctionConfig, LayerVersion
from lamina.core.provisioned import ProvisionedConfig
from lamina.core.versions import Alias
from lamina.store.sqlite import (
    _FUNCTION_COLUMNS,
    _LAYER_COLUMNS,
    SqliteStore,
    _function,
    _json,
    _layer,
    insert_function,
)

_ALIAS_COLUMNS = "function_name, name, function_version, description, routing, revision_id"
_PROVISIONED_COLUMNS = "function_name, qualifier, requested, last_modified"
_PUBLISHED = "version != '$LATEST'"


class VersionsTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # functions, every version

    def get_function(self, name: str, version: str = LATEST) -> FunctionConfig | None:
        row = self._conn.execute(
            f"SELECT {_FUNCTION_COLUMNS} FROM functions WHERE name = ? AND version = ?",
            (name, version),
        ).fetchone()
        return _function(row) if row else None

    def put_function(self, config: FunctionConfig) -> None:
        insert_function(self._conn, config)

    def list_versions(self, name: str | None = None) -> list[FunctionConfig]:
        """Published versions (of one function, or of all), by name then number."""
        where, params = (f"{_PUBLISHED} AND name = ?", (name,)) if name else (_PUBLISHED, ())
        rows = self._conn.execute(
            f"SELECT {_FUNCTION_COLUMNS} FROM functions WHERE {where} "
            "ORDER BY name, CAST(version AS INTEGER)",
            params,
        ).fetchall()
        return [_function(row) for row in rows]

    def latest_version(self, name: str) -> FunctionConfig | None:
        row = self._conn.execute(
            f"SELECT {_FUNCTION_COLUMNS} FROM functions WHERE name = ? AND {_PUBLISHED} "
            "ORDER BY CAST(version AS INTEGER) DESC LIMIT 1",
            (name,),
        ).fetchone()
        return _function(row) if row else None

    def next_version(self, name: str) -> str:
        """Take the next version number of `name` (never one that was used before)."""
        self._conn.execute(
            "INSERT INTO version_counters (function_name, last_version) VALUES (?, 1) "
            "ON CONFLICT (function_name) DO UPDATE SET last_version = last_version + 1",
            (name,),
        )
        row = self._conn.execute(
            "SELECT last_version FROM version_counters WHERE function_name = ?", (name,)
        ).fetchone()
        return str(row[0])

    def delete_function(self, name: str) -> bool:
        """Every version, every alias (with their provisioned concurrency) and the version
        counter; False if there was none."""
        deleted = self._conn.execute("DELETE FROM functions WHERE name = ?", (name,)).rowcount
        self._conn.execute("DELETE FROM aliases WHERE function_name = ?", (name,))
        self._conn.execute("DELETE FROM provisioned_concurrency WHERE function_name = ?", (name,))
        self._conn.execute("DELETE FROM version_counters WHERE function_name = ?", (name,))
        return deleted > 0

    def delete_version(self, name: str, version: str) -> bool:
        """The version and its provisioned concurrency."""
        self.delete_provisioned(name, version)
        return (
            self._conn.execute(
                f"DELETE FROM functions WHERE name = ? AND version = ? AND {_PUBLISHED}",
                (name, version),
            ).rowcount
            > 0
        )

    # aliases

    def get_alias(self, function_name: str, name: str) -> Alias | None:
        row = self._conn.execute(
            f"SELECT {_ALIAS_COLUMNS} FROM aliases WHERE function_name = ? AND name = ?",
            (function_name, name),
        ).fetchone()
        return _alias(row) if row else None

    def put_alias(self, alias: Alias) -> None:
        a = alias
        self._conn.execute(
            f"INSERT OR REPLACE INTO aliases ({_ALIAS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                a.function_name,
                a.name,
                a.function_version,
                a.description,
                _json(a.routing),
                a.revision_id,
            ),
        )

    def delete_alias(self, function_name: str, name: str) -> bool:
        """The alias and its provisioned concurrency."""
        self.delete_provisioned(function_name, name)
        return (
            self._conn.execute(
                "DELETE FROM aliases WHERE function_name = ? AND name = ?", (function_name, name)
            ).rowcount
            > 0
        )

    def list_aliases(self, function_name: str | None = None) -> list[Alias]:
        """Aliases (of one function, or of all), by function name then alias name."""
        where, params = ("WHERE function_name = ?", (function_name,)) if function_name else ("", ())
        rows = self._conn.execute(
            f"SELECT {_ALIAS_COLUMNS} FROM aliases {where} ORDER BY function_name, name", params
        ).fetchall()
        return [_alias(row) for row in rows]

    # provisioned concurrency

    def get_provisioned(self, function_name: str, qualifier: str) -> ProvisionedConfig | None:
        row = self._conn.execute(
            f"SELECT {_PROVISIONED_COLUMNS} FROM provisioned_concurrency "
            "WHERE function_name = ? AND qualifier = ?",
            (function_name, qualifier),
        ).fetchone()
        return ProvisionedConfig(**dict(row)) if row else None

    def put_provisioned(self, config: ProvisionedConfig) -> None:
        self._conn.execute(
            f"INSERT OR REPLACE INTO provisioned_concurrency ({_PROVISIONED_COLUMNS}) "
            "VALUES (?, ?, ?, ?)",
            (config.function_name, config.qualifier, config.requested, config.last_modified),
        )

    def delete_provisioned(self, function_name: str, qualifier: str) -> bool:
        return (
            self._conn.execute(
                "DELETE FROM provisioned_concurrency WHERE function_name = ? AND qualifier = ?",
                (function_name, qualifier),
            ).rowcount
            > 0
        )

    def list_provisioned(self, function_name: str | None = None) -> list[ProvisionedConfig]:
        """Configurations (of one function, or of all), by function name then qualifier."""
        where, params = ("WHERE function_name = ?", (function_name,)) if function_name else ("", ())
        rows = self._conn.execute(
            f"SELECT {_PROVISIONED_COLUMNS} FROM provisioned_concurrency {where} "
            "ORDER BY function_name, qualifier",
            params,
        ).fetchall()
        return [ProvisionedConfig(**dict(row)) for row in rows]

    # layers

    def get_layer_version(self, name: str, version: int) -> LayerVersion | None:
        row = self._conn.execute(
            f"SELECT {_LAYER_COLUMNS} FROM layer_versions WHERE name = ? AND version = ?",
            (name, version),
        ).fetchone()
        return _layer(row) if row else None

    def latest_layer_version(self, name: str) -> LayerVersion | None:
        row = self._conn.execute(
            f"SELECT {_LAYER_COLUMNS} FROM layer_versions WHERE name = ? "
            "ORDER BY version DESC LIMIT 1",
            (name,),
        ).fetchone()
        return _layer(row) if row else None

    def publish_layer_version(self, layer: LayerVersion) -> LayerVersion:
        latest = self.latest_layer_version(layer.name)
        stored = replace(layer, version=latest.version + 1 if latest else 1)
        self._conn.execute(
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


class SqliteVersionStore:
    """Versions and aliases in the `SqliteStore`'s database, under its lock."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"<SqliteVersionStore {self._store.path}>"

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[VersionsTransaction]:
        with self._store.transaction(write=write) as conn:
            yield VersionsTransaction(conn)


def _alias(row: sqlite3.Row) -> Alias:
    fields = dict(row)
    fields["routing"] = orjson.loads(fields["routing"])
    return Alias(**fields)
