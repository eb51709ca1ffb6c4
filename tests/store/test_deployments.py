"""Round trips of versions, aliases, layer versions, deployments and stacks through SQLite,
and the transaction that makes a deployment all-or-nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.core.deployments import DeployedVersion
from lamina.core.models import FunctionConfig, LayerVersion
from lamina.core.versions import Alias
from lamina.store.deployments import SqliteDeploymentStore
from lamina.store.sqlite import SqliteStore
from lamina.store.versions import SqliteVersionStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "lamina.db")
    yield s
    s.close()


def _config(name: str = "fn", version: str = "$LATEST", **changes: object) -> FunctionConfig:
    fields: dict[str, object] = {
        "name": name,
        "runtime": "python3.12",
        "handler": "app.handler",
        "code_sha256": "a" * 64,
        "code_size": 10,
        "environment": {"A": "1"},
        "layers": ("arn:aws:lambda:us-east-1:000000000000:layer:deps:1",),
        "version": version,
        "revision_id": f"rev-{version}",
        **changes,
    }
    return FunctionConfig(**fields)  # type: ignore[arg-type]


def _deployed(version: str = "1") -> tuple[DeployedVersion, ...]:
    return (DeployedVersion("api", "app-dev-api", version, True),)


def test_versions_round_trip_in_numeric_order(store: SqliteStore) -> None:
    versions = SqliteVersionStore(store)
    with versions.transaction() as tx:
        tx.put_function(_config())
        for n in ("1", "2", "10"):
            tx.put_function(_config(version=n, timeout=int(n)))
        tx.put_function(_config("other", "1"))

    with versions.transaction(write=False) as tx:
        assert [c.version for c in tx.list_versions("fn")] == ["1", "2", "10"]
        assert [(c.name, c.version) for c in tx.list_versions()][-1] == ("other", "1")
        assert tx.latest_version("fn") == _config(version="10", timeout=10)
        assert tx.get_function("fn", "2") == _config(version="2", timeout=2)
        assert tx.latest_version("missing") is None
    assert store.list_functions()[0] == _config()  # $LATEST is what the Store port sees


def test_version_numbers_count_up_and_restart_with_a_new_function(store: SqliteStore) -> None:
    versions = SqliteVersionStore(store)
    with versions.transaction() as tx:
        tx.put_function(_config())
        assert [tx.next_version("fn") for _ in range(3)] == ["1", "2", "3"]
        assert tx.next_version("other") == "1"
        assert tx.delete_function("fn")
        assert not tx.delete_function("fn")
        assert tx.next_version("fn") == "1"


def test_delete_version_leaves_latest_and_other_versions(store: SqliteStore) -> None:
    versions = SqliteVersionStore(store)
    with versions.transaction() as tx:
        tx.put_function(_config())
        tx.put_function(_config(version="1"))
        tx.put_function(_config(version="2"))
        assert tx.delete_version("fn", "1")
        assert not tx.delete_version("fn", "1")
        assert not tx.delete_version("fn", "$LATEST")
        assert [c.version for c in tx.list_versions("fn")] == ["2"]
        assert tx.get_function("fn") is not None


def test_aliases_round_trip_and_go_with_their_function(store: SqliteStore) -> None:
    versions = SqliteVersionStore(store)
    live = Alias("fn", "live", "1", "prod", {"2": 0.25}, "r1")
    with versions.transaction() as tx:
        tx.put_function(_config())
        tx.put_alias(live)
        tx.put_alias(Alias("fn", "beta", "$LATEST", revision_id="r2"))
        tx.put_alias(Alias("other", "live", "3", revision_id="r3"))

    with versions.transaction() as tx:
        assert tx.get_alias("fn", "live") == live
        assert [a.name for a in tx.list_aliases("fn")] == ["beta", "live"]
        assert len(tx.list_aliases()) == 3
        assert tx.delete_alias("fn", "beta")
        assert not tx.delete_alias("fn", "beta")
        tx.delete_function("fn")
        assert tx.list_aliases("fn") == []
        assert tx.get_alias("other", "live") is not None


def test_layer_versions_are_numbered_per_layer(store: SqliteStore) -> None:
    versions = SqliteVersionStore(store)
    layer = LayerVersion("deps", 0, "b" * 64, 5, "d", ("python3.12",), "2024")
    with versions.transaction() as tx:
        assert tx.latest_layer_version("deps") is None
        first = tx.publish_layer_version(layer)
        second = tx.publish_layer_version(layer)
        assert (first.version, second.version) == (1, 2)
        assert tx.latest_layer_version("deps") == second
        assert tx.get_layer_version("deps", 1) == first
    assert store.get_layer_version("deps", 2) == second


def test_deployments_and_stacks_round_trip(store: SqliteStore) -> None:
    deployments = SqliteDeploymentStore(store)
    spec = {"service": "app", "stage": "dev", "functions": []}
    with deployments.transaction() as tx:
        first = tx.add_deployment(
            service="app", stage="dev", region="eu-west-1", created=10.0, spec=spec, functions=()
        )
        second = tx.add_deployment(
            service="app",
            stage="dev",
            region="eu-west-1",
            created=20.0,
            spec=spec,
            functions=_deployed(),
        )
        tx.set_live("app", "dev", second.id, 21.0)
        tx.set_deployment_functions(first.id, _deployed("7"))

    with deployments.transaction(write=False) as tx:
        assert tx.get_deployment("app", "dev", second.id) == second
        assert tx.get_deployment("app", "prod", second.id) is None
        assert [d.id for d in tx.list_deployments("app", "dev")] == [second.id, first.id]
        assert tx.get_deployment("app", "dev", first.id).versions == {"app-dev-api": "7"}  # type: ignore[union-attr]
        stack = tx.get_stack("app", "dev")
        assert stack is not None
        assert (stack.region, stack.deployment_id, stack.updated) == ("eu-west-1", second.id, 21.0)
        assert tx.list_stacks() == [stack]


def test_pruning_keeps_the_newest_and_the_live_deployment(store: SqliteStore) -> None:
    deployments = SqliteDeploymentStore(store)
    with deployments.transaction() as tx:
        ids = [
            tx.add_deployment(
                service="app", stage="dev", region="r", created=n, spec={}, functions=()
            ).id
            for n in range(6)
        ]
        other = tx.add_deployment(
            service="app", stage="prod", region="r", created=0, spec={}, functions=()
        )
        tx.set_live("app", "dev", ids[0], 1.0)  # rolled back to the oldest
        assert tx.prune_deployments("app", "dev", keep=3) == 2

        kept = [d.id for d in tx.list_deployments("app", "dev")]
        assert kept == [ids[5], ids[4], ids[3], ids[0]]
        assert tx.list_deployments("app", "prod") == [other]


def test_delete_stack_removes_its_history(store: SqliteStore) -> None:
    deployments = SqliteDeploymentStore(store)
    with deployments.transaction() as tx:
        d = tx.add_deployment(
            service="app", stage="dev", region="r", created=1, spec={}, functions=()
        )
        tx.set_live("app", "dev", d.id, 1.0)
        assert tx.delete_stack("app", "dev")
        assert not tx.delete_stack("app", "dev")
        assert tx.list_stacks() == []
        assert tx.list_deployments("app", "dev") == []


def test_a_failing_transaction_writes_nothing(store: SqliteStore) -> None:
    deployments = SqliteDeploymentStore(store)
    with pytest.raises(RuntimeError), deployments.transaction() as tx:
        tx.put_function(_config())
        tx.put_function(_config(version=tx.next_version("fn")))
        d = tx.add_deployment(
            service="app", stage="dev", region="r", created=1, spec={}, functions=()
        )
        tx.set_live("app", "dev", d.id, 1.0)
        raise RuntimeError("a check failed after the writes")

    with deployments.transaction(write=False) as tx:
        assert tx.get_function("fn") is None
        assert tx.list_stacks() == []
        assert tx.list_deployments("app", "dev") == []
    with deployments.transaction() as tx:
        assert tx.next_version("fn") == "1"
