"""Deployments and stacks, on the `SqliteStore`'s file.

A deployment is applied in one transaction that also writes functions, versions and layers,
so its transaction object extends the versions one: everything a deploy does commits
together or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from lamina.core.deployments import DeployedVersion, Deployment, Stack
from lamina.store.sqlite import SqliteStore, _json
from lamina.store.versions import VersionsTransaction

_DEPLOYMENT_COLUMNS = "id, service, stage, region, created, spec, functions"
_STACK_COLUMNS = "s.service, s.stage, d.region, s.deployment_id, s.updated"


class DeploymentsTransaction(VersionsTransaction):
    def add_deployment(
        self,
        *,
        service: str,
        stage: str,
        region: str,
        created: float,
        spec: dict[str, Any],
        functions: tuple[DeployedVersion, ...],
    ) -> Deployment:
        cursor = self._conn.execute(
            "INSERT INTO deployments (service, stage, region, created, spec, functions) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                service,
                stage,
                region,
                created,
                _json(spec),
                _json([_deployed_json(f) for f in functions]),
            ),
        )
        assert cursor.lastrowid is not None
        return Deployment(cursor.lastrowid, service, stage, region, created, spec, functions)

    def set_deployment_functions(
        self, deployment_id: int, functions: tuple[DeployedVersion, ...]
    ) -> None:
        """What a deployment made live when it was applied again (a rollback)."""
        self._conn.execute(
            "UPDATE deployments SET functions = ? WHERE id = ?",
            (_json([_deployed_json(f) for f in functions]), deployment_id),
        )

    def get_deployment(self, service: str, stage: str, deployment_id: int) -> Deployment | None:
        row = self._conn.execute(
            f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments "
            "WHERE service = ? AND stage = ? AND id = ?",
            (service, stage, deployment_id),
        ).fetchone()
        return _deployment(row) if row else None

    def list_deployments(self, service: str, stage: str) -> list[Deployment]:
        """Newest first."""
        rows = self._conn.execute(
            f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE service = ? AND stage = ? "
            "ORDER BY id DESC",
            (service, stage),
        ).fetchall()
        return [_deployment(row) for row in rows]

    def prune_deployments(self, service: str, stage: str, keep: int) -> int:
        """Delete all but the `keep` newest deployments of a stack, never the live one."""
        return self._conn.execute(
            "DELETE FROM deployments WHERE service = ? AND stage = ? AND id NOT IN "
            "(SELECT id FROM deployments WHERE service = ? AND stage = ? "
            " ORDER BY id DESC LIMIT ?) "
            "AND id NOT IN (SELECT deployment_id FROM stacks)",
            (service, stage, service, stage, keep),
        ).rowcount

    def set_live(self, service: str, stage: str, deployment_id: int, updated: float) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO stacks (service, stage, deployment_id, updated) "
            "VALUES (?, ?, ?, ?)",
            (service, stage, deployment_id, updated),
        )

    def get_stack(self, service: str, stage: str) -> Stack | None:
        row = self._conn.execute(
            f"SELECT {_STACK_COLUMNS} FROM stacks s JOIN deployments d ON d.id = s.deployment_id "
            "WHERE s.service = ? AND s.stage = ?",
            (service, stage),
        ).fetchone()
        return Stack(**dict(row)) if row else None

    def list_stacks(self) -> list[Stack]:
        rows = self._conn.execute(
            f"SELECT {_STACK_COLUMNS} FROM stacks s JOIN deployments d ON d.id = s.deployment_id "
            "ORDER BY s.service, s.stage"
        ).fetchall()
        return [Stack(**dict(row)) for row in rows]

    def delete_stack(self, service: str, stage: str) -> bool:
        """The stack and its whole deployment history (its functions are the caller's)."""
        deleted = self._conn.execute(
            "DELETE FROM stacks WHERE service = ? AND stage = ?", (service, stage)
        ).rowcount
        self._conn.execute(
            "DELETE FROM deployments WHERE service = ? AND stage = ?", (service, stage)
        )
        return deleted > 0


class SqliteDeploymentStore:
    """Deployments, stacks, and (through the same transaction) versions and layers."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"<SqliteDeploymentStore {self._store.path}>"

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[DeploymentsTransaction]:
        with self._store.transaction(write=write) as conn:
            yield DeploymentsTransaction(conn)


def _deployed_json(f: DeployedVersion) -> dict[str, object]:
    return {"key": f.key, "name": f.name, "version": f.version, "changed": f.changed}


def _deployment(row: sqlite3.Row) -> Deployment:
    fields = dict(row)
    return Deployment(
        id=fields["id"],
        service=fields["service"],
        stage=fields["stage"],
        region=fields["region"],
        created=fields["created"],
        spec=orjson.loads(fields["spec"]),
        functions=tuple(DeployedVersion(**f) for f in orjson.loads(fields["functions"])),
    )
