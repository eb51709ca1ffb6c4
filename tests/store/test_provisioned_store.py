"""Migration 6: provisioned concurrency configurations, their round trip, and that deleting
a function, a version or an alias deletes its configurations in the same transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.core.models import FunctionConfig
from lamina.core.provisioned import ProvisionedConfig
from lamina.core.versions import Alias
from lamina.store.migrations import MIGRATIONS
from lamina.store.sqlite import SqliteStore
from lamina.store.versions import SqliteVersionStore

WHEN = "2024-05-01T12:00:00.000+0000"


@pytest.fixture
def versions(tmp_path: Path) -> Iterator[SqliteVersionStore]:
    store = SqliteStore(tmp_path / "lamina.db")
    versions = SqliteVersionStore(store)
    with versions.transaction() as tx:
        for name in ("fn", "other"):
            for version in ("$LATEST", "1", "2"):
                tx.put_function(
                    FunctionConfig(name, "python3.12", "app.handler", "ab" * 32, 1, version=version)
                )
            tx.put_alias(Alias(name, "live", "1"))
    yield versions
    store.close()


def _configs(versions: SqliteVersionStore) -> list[tuple[str, str, int]]:
    with versions.transaction(write=False) as tx:
        return [(c.function_name, c.qualifier, c.requested) for c in tx.list_provisioned()]


def _fill(versions: SqliteVersionStore) -> None:
    with versions.transaction() as tx:
        for name in ("fn", "other"):
            tx.put_provisioned(ProvisionedConfig(name, "live", 2, WHEN))
            tx.put_provisioned(ProvisionedConfig(name, "2", 1, WHEN))


def test_migration_6_creates_the_table(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "lamina.db")
    store.close()
    conn = sqlite3.connect(tmp_path / "lamina.db")
    columns = [row[1] for row in conn.execute("PRAGMA table_info(provisioned_concurrency)")]
    conn.close()
    assert len(MIGRATIONS) == 6
    assert columns == ["function_name", "qualifier", "requested", "last_modified"]


def test_configurations_round_trip_and_replace(versions: SqliteVersionStore) -> None:
    _fill(versions)
    with versions.transaction() as tx:
        tx.put_provisioned(ProvisionedConfig("fn", "live", 5, WHEN))
        assert tx.get_provisioned("fn", "live") == ProvisionedConfig("fn", "live", 5, WHEN)
        assert tx.get_provisioned("fn", "3") is None
        assert [c.qualifier for c in tx.list_provisioned("fn")] == ["2", "live"]
        assert tx.delete_provisioned("fn", "2") is True
        assert tx.delete_provisioned("fn", "2") is False
    assert _configs(versions) == [("fn", "live", 5), ("other", "2", 1), ("other", "live", 2)]


def test_the_schema_refuses_latest_and_zero(versions: SqliteVersionStore) -> None:
    for bad in (ProvisionedConfig("fn", "$LATEST", 1, WHEN), ProvisionedConfig("fn", "1", 0, WHEN)):
        with pytest.raises(sqlite3.IntegrityError), versions.transaction() as tx:
            tx.put_provisioned(bad)
    assert _configs(versions) == []


def test_deleting_an_alias_a_version_or_a_function_deletes_its_configurations(
    versions: SqliteVersionStore,
) -> None:
    _fill(versions)
    with versions.transaction() as tx:
        tx.delete_alias("fn", "live")
    assert _configs(versions) == [("fn", "2", 1), ("other", "2", 1), ("other", "live", 2)]

    with versions.transaction() as tx:
        tx.delete_version("fn", "2")
    assert _configs(versions) == [("other", "2", 1), ("other", "live", 2)]

    with versions.transaction() as tx:
        tx.delete_function("other")
    assert _configs(versions) == []


def test_a_rolled_back_transaction_leaves_configurations_as_they_were(
    versions: SqliteVersionStore,
) -> None:
    _fill(versions)
    with pytest.raises(RuntimeError), versions.transaction() as tx:
        tx.delete_function("fn")
        raise RuntimeError("refused after the write")
    assert len(_configs(versions)) == 4
