"""ProvisionedService on the real stores with the pool on fakes: configurations and their
rules, environments started ahead of time and used first, replaced when they die, adjusted
when a configuration or an alias changes, and re-applied after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.services.fakes import Gate, Script, settle
from tests.services.test_deploy_fakes import bundle, platform
from tests.services.test_provisioned_fakes import SETTINGS, Provisioned, provisioned_platform

from lamina.core.errors import (
    InvalidParameterValueException,
    ProvisionedConcurrencyConfigNotFoundException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lamina.services.provisioned import ProvisionedService
from lamina.store.versions import SqliteVersionStore

ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"


def published(x: Provisioned, generations: int = 1) -> None:
    """fn with versions 1..generations (version n returns n)."""
    p = x.p
    p.functions.create("fn", bundle(1), SETTINGS)
    p.versions.publish_version("fn")
    for generation in range(2, generations + 1):
        p.functions.update_code("fn", bundle(generation))
        p.versions.publish_version("fn")


# configurations and their environments


async def test_a_configuration_starts_environments_ahead_of_time_then_is_ready(
    tmp_path: Path,
) -> None:
    async with provisioned_platform(tmp_path) as x:
        published(x)
        put = x.service.put("fn", "1", 2)

        assert (put.status, put.allocated, put.config.requested) == ("IN_PROGRESS", 0, 2)
        await x.service.wait_settled()
        state = x.service.get("fn", "1")
        assert (state.status, state.allocated, state.available, state.reason) == (
            "READY",
            2,
            2,
            None,
        )
        assert x.types() == ["provisioned-concurrency"] * 2
        assert x.p.h.pool.cold_starts == 0
        assert x.p.h.ledger.provisioned == {"fn": 2}
        assert put.config.last_modified.endswith("+0000")


async def test_invocations_of_the_version_and_of_aliases_use_them_first(tmp_path: Path) -> None:
    async with provisioned_platform(tmp_path) as x:
        published(x)
        x.p.versions.create_alias("fn", "live", "1")
        x.service.put("fn", "live", 1)
        await x.service.wait_settled()
        [warm] = x.p.h.pool.environments("fn")

        by_alias = await x.p.h.invoker.invoke("fn", "live", b"{}")
        by_version = await x.p.h.invoker.invoke("fn", "1", b"{}")

        for response in (by_alias, by_version):
            assert x.p.h.pid_that_served(response.request_id) == warm.statistics()["pid"]
        assert x.p.h.pool.cold_starts == 0
        lines = await x.p.h.log_lines("fn")
        reports = [line for line in lines if line.startswith("REPORT")]
        assert len(reports) == 2 and not any("Init Duration" in r for r in reports)
        assert sum(line.startswith("INIT_START") for line in lines) == 1  # at provisioning


async def test_past_the_provisioned_environments_invocations_spill_over_to_on_demand(
    tmp_path: Path,
) -> None:
    async with provisioned_platform(tmp_path) as x:
        published(x)
        gate = Gate()
        x.p.h.driver.default_script = Script(handler=gate)
        x.service.put("fn", "1", 1)
        await x.service.wait_settled()

        latest = x.p.h.start_invoke("fn")  # unqualified: $LATEST, never provisioned
        by_version = [
            asyncio.ensure_future(x.p.h.invoker.invoke("fn", "1", b"{}")) for _ in range(2)
        ]
        await settle(lambda: gate.waiting == 3)
        gate.open()
        await asyncio.gather(latest, *by_version)

        assert x.types() == ["on-demand", "on-demand", "provisioned-concurrency"]
        assert x.p.h.ledger.in_flight == {}


async def test_changing_and_deleting_a_configuration_adjusts_the_environments(
    tmp_path: Path,
) -> None:
    async with provisioned_platform(tmp_path) as x:
        published(x)
        x.service.put("fn", "1", 3)
        await x.service.wait_settled()
        assert len(x.p.h.pool.environments("fn")) == 3

        x.service.put("fn", "1", 1)
        await x.service.wait_settled()
        assert len(x.p.h.pool.environments("fn")) == 1
        assert x.service.get("fn", "1").status == "READY"

        x.service.delete("fn", "1")
        await x.service.wait_settled()
        assert x.p.h.pool.environments("fn") == []
        assert x.p.h.ledger.provisioned == {}
        assert x.p.h.ledger.memory_in_use_mb == 0
        with pytest.raises(ProvisionedConcurrencyConfigNotFoundException) as caught:
            x.service.get("fn", "1")
        assert caught.value.status == 404
        x.service.delete("fn", "1")  # deleting again succeeds, as on Lambda


async def test_a_provisioned_environment_that_dies_is_replaced(tmp_path: Path) -> None:
    async with provisioned_platform(tmp_path) as x:
        published(x)
        x.service.put("fn", "1", 2)
        await x.service.wait_settled()
        [first, second] = x.p.h.pool.environments("fn")

        x.p.h.driver.process(first.statistics()["pid"]).exit(137)  # type: ignore[arg-type]
        await settle()
        assert x.service.get("fn", "1").status == "IN_PROGRESS"
        await x.settle()

        assert x.service.get("fn", "1").status == "READY"
        live = x.p.h.pool.environments("fn")
        assert len(live) == 2 and second in live and first not in live
        assert x.p.h.ledger.memory_in_use_mb == 256


async def test_a_failed_start_is_reported_and_retried_later(tmp_path: Path) -> None:
    async with provisioned_platform(tmp_path) as x:
        published(x)
        x.p.h.driver.scripts.append(Script(init="init_error"))
        x.service.put("fn", "1", 1)
        await x.service.wait_settled()

        failed = x.service.get("fn", "1")
        assert (failed.status, failed.reason) == (
            "FAILED",
            "init failed: Runtime.ImportModuleError",
        )
        await x.settle()  # not before its retry delay
        assert x.p.h.pool.environments("fn") == []

        x.p.h.clock.advance(2.0)
        await x.settle()
        assert x.service.get("fn", "1").status == "READY"


async def test_re_pointing_an_alias_moves_its_environments_to_the_new_version(
    tmp_path: Path,
) -> None:
    async with provisioned_platform(tmp_path) as x:
        published(x, generations=2)
        x.p.versions.create_alias("fn", "live", "1")
        x.service.put("fn", "live", 2)
        await x.service.wait_settled()
        assert x.versions() == ["1", "1"]

        x.p.versions.update_alias("fn", "live", function_version="2")
        await x.settle()

        assert x.versions() == ["2", "2"]
        assert len(x.p.h.pool.environments("fn")) == 2  # version 1's were retired
        assert x.service.get("fn", "live").status == "READY"


async def test_deleting_the_alias_or_the_function_drops_its_configuration(
    tmp_path: Path,
) -> None:
    async with provisioned_platform(tmp_path) as x:
        published(x)
        x.p.versions.create_alias("fn", "live", "1")
        x.service.put("fn", "live", 1)
        await x.service.wait_settled()

        x.p.versions.delete_alias("fn", "live")
        await x.settle()
        assert x.p.h.pool.environments("fn") == []
        assert x.service.list("fn") == []

        x.service.put("fn", "1", 1)
        await x.service.wait_settled()
        x.p.functions.delete("fn")
        await x.settle()
        assert x.p.h.pool.environments("fn") == []
        assert x.p.h.ledger.provisioned == {}
        with SqliteVersionStore(x.p.store).transaction(write=False) as tx:
            assert tx.list_provisioned() == []


async def test_configurations_are_re_applied_after_a_restart(tmp_path: Path) -> None:
    async with provisioned_platform(tmp_path) as x:
        published(x)
        x.service.put("fn", "1", 2)
        await x.service.wait_settled()

    async with platform(tmp_path, account_limit=1000) as p:  # a new process on the same home
        p.functions.load()
        p.h.pool.registry = p.h.registry
        service = ProvisionedService(
            store=SqliteVersionStore(p.store),
            registry=p.h.registry,
            pool=p.h.pool,
            ledger=p.h.ledger,
            account=p.h.account,
            clock=p.h.clock,
        )
        assert service.load() == 1
        await service.wait_settled()

        assert service.get("fn", "1").status == "READY"
        assert len(p.h.pool.provisioned(p.h.registry.resolve("fn", "1").key)) == 2
        assert p.h.ledger.provisioned == {"fn": 2}


# the rules


async def test_latest_and_missing_targets_are_refused(tmp_path: Path) -> None:
    async with provisioned_platform(tmp_path) as x:
        published(x)

        with pytest.raises(InvalidParameterValueException) as latest:
            x.service.put("fn", "$LATEST", 1)
        assert latest.value.message == (
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
            " Qualifier = '$LATEST': must be a published version number or an alias"
        )
        with pytest.raises(InvalidParameterValueException, match="unpublished"):
            x.service.put("fn", None, 1)
        with pytest.raises(InvalidParameterValueException, match="alias or a published version"):
            x.service.get("fn", "$LATEST")
        with pytest.raises(ResourceNotFoundException, match=f"Function not found: {ARN}:7"):
            x.service.put("fn", "7", 1)
        with pytest.raises(ResourceNotFoundException, match=f"Cannot find alias arn: {ARN}:live"):
            x.service.put("fn", "live", 1)
        with pytest.raises(ResourceNotFoundException, match="function:nope"):
            x.service.put("nope", "1", 1)
        with pytest.raises(InvalidParameterValueException, match="ProvisionedConcurrentExecutions"):
            x.service.put("fn", "1", 0)
        x.p.versions.create_alias("fn", "dev", "$LATEST")
        with pytest.raises(InvalidParameterValueException, match="points to \\$LATEST"):
            x.service.put("fn", "dev", 1)
        assert x.service.list("fn") == []


async def test_provisioned_concurrency_must_fit_the_reservation_and_the_account(
    tmp_path: Path,
) -> None:
    async with provisioned_platform(tmp_path, account_limit=1000) as x:
        published(x, generations=2)
        x.p.functions.put_concurrency("fn", 3)
        x.service.put("fn", "1", 2)

        with pytest.raises(InvalidParameterValueException, match="reservedConcurrentExecution"):
            x.service.put("fn", "2", 2)  # 2 + 2 > 3
        x.service.put("fn", "2", 1)
        x.p.functions.delete_concurrency("fn")
        x.p.h.ledger.set_reservation("fn", None)
        with pytest.raises(InvalidParameterValueException, match=r"minimum value of \[100\]"):
            x.service.put("fn", "1", 900)  # 900 + 1 would leave 99
        x.service.put("fn", "1", 899)
        assert x.p.h.ledger.unreserved_limit == 100
        assert [(s.config.qualifier, s.config.requested) for s in x.service.list("fn")] == [
            ("1", 899),
            ("2", 1),
        ]


async def test_a_version_is_provisioned_directly_or_through_an_alias(tmp_path: Path) -> None:
    async with provisioned_platform(tmp_path) as x:
        published(x)
        x.p.versions.create_alias("fn", "live", "1")
        x.service.put("fn", "live", 1)

        with pytest.raises(ResourceConflictException, match="pointed by a Provisioned"):
            x.service.put("fn", "1", 1)
        assert [s.config.qualifier for s in x.service.list("fn")] == ["live"]
