"""Versions and aliases (reference 5.3) on the real stores: publishing, qualifiers on the
invoke path, weighted aliases, and what deleting does."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from tests.services.test_deploy_fakes import bundle, platform

from lamina.core.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lamina.services.functions import FunctionService
from lamina.services.registry import Registry
from lamina.store.versions import SqliteVersionStore

SETTINGS = {"runtime": "python3.12", "handler": "app.handler"}
ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"


async def test_publish_snapshots_latest_and_skips_when_nothing_changed(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        latest = p.functions.create("fn", bundle(1), SETTINGS)

        v1 = p.versions.publish_version("fn", description="first")
        again = p.versions.publish_version("fn")
        p.functions.update_configuration("fn", {"timeout": 10})
        v2 = p.versions.publish_version("fn")

        assert (v1.version, v1.code_sha256, v1.description) == ("1", latest.code_sha256, "first")
        assert v1.revision_id != latest.revision_id
        assert again == v1
        assert (v2.version, v2.timeout) == ("2", 10)
        listed = p.versions.list_versions("fn")
        assert [c.version for c in listed] == ["$LATEST", "1", "2"]
        assert p.functions.get("fn", "1") == v1


async def test_publish_checks_the_code_sha256_it_is_given(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        p.functions.create("fn", bundle(1), SETTINGS)
        with pytest.raises(InvalidParameterValueException, match="CodeSha256"):
            p.versions.publish_version("fn", code_sha256="0" * 64)
        with pytest.raises(ResourceNotFoundException, match=f"{ARN}2"):
            p.versions.publish_version("fn2")
        assert p.versions.list_versions("fn")[1:] == []


async def test_version_numbers_are_never_reused(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        p.functions.create("fn", bundle(1), SETTINGS)
        p.versions.publish_version("fn")
        p.functions.update_code("fn", bundle(2))
        p.versions.publish_version("fn")
        p.functions.delete("fn", "2")
        p.functions.update_code("fn", bundle(3))

        assert p.versions.publish_version("fn").version == "3"


async def test_invoke_resolves_version_alias_and_latest(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        p.functions.create("fn", bundle(1), SETTINGS)
        p.versions.publish_version("fn")
        p.functions.update_code("fn", bundle(2))
        p.versions.create_alias("fn", "live", "1")

        by_version = await p.h.invoker.invoke("fn", "1", b"{}")
        by_alias = await p.h.invoker.invoke("fn", "live", b"{}")
        by_latest = await p.h.invoker.invoke("fn", "$LATEST", b"{}")
        unqualified = await p.h.invoker.invoke("fn", None, b"{}")

        assert [r.executed_version for r in (by_version, by_alias, by_latest, unqualified)] == [
            "1",
            "1",
            "$LATEST",
            "$LATEST",
        ]
        arns = [i.invoked_arn for r in p.h.driver.runtimes for i in r.invocations]
        assert sorted(arns) == sorted([f"{ARN}:1", f"{ARN}:live", f"{ARN}:$LATEST", ARN])
        # Version 1 runs its own code, in its own environment.
        (v1_spec,) = [s for s in p.h.driver.specs if s.env["AWS_LAMBDA_FUNCTION_VERSION"] == "1"]
        assert "return 1" in (v1_spec.task_root / "app.py").read_text()


async def test_a_weighted_alias_draws_a_version_per_invocation(tmp_path: Path) -> None:
    draws = itertools.cycle([0.1, 0.5, 0.9])
    async with platform(tmp_path, random=lambda: next(draws)) as p:
        p.functions.create("fn", bundle(1), SETTINGS)
        p.versions.publish_version("fn")
        p.functions.update_code("fn", bundle(2))
        p.versions.publish_version("fn")
        alias = p.versions.create_alias("fn", "live", "1", routing={"2": 0.5})

        served = [(await p.h.invoker.invoke("fn", "live", b"{}")).executed_version for _ in "abc"]

        assert alias.routing == {"2": 0.5}
        assert served == ["2", "1", "1"]  # a draw below the weight goes to the extra version


async def test_unknown_qualifiers_are_not_found(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        p.functions.create("fn", bundle(1), SETTINGS)
        for qualifier in ("7", "prod"):
            with pytest.raises(ResourceNotFoundException, match=f"{ARN}:{qualifier}"):
                await p.h.invoker.invoke("fn", qualifier, b"{}")
            with pytest.raises(ResourceNotFoundException):
                p.functions.get("fn", qualifier)


@pytest.mark.parametrize(
    ("name", "version", "routing", "error"),
    [
        ("123", "1", None, "not only digits"),
        ("a" * 129, "1", None, "1-128"),
        ("live", "one", None, "FunctionVersion"),
        ("live", "$LATEST", {"1": 0.5}, "not \\$LATEST"),
        ("live", "1", {"1": 0.5}, "already"),
        ("live", "1", {"2": 1.5}, "between 0.0 and 1.0"),
        ("live", "1", {"2": 0.1, "3": 0.1}, "at most one"),
    ],
)
async def test_alias_rules(
    tmp_path: Path, name: str, version: str, routing: object, error: str
) -> None:
    async with platform(tmp_path) as p:
        p.functions.create("fn", bundle(1), SETTINGS)
        p.versions.publish_version("fn")
        with pytest.raises(InvalidParameterValueException, match=error):
            p.versions.create_alias("fn", name, version, routing=routing)
        assert p.versions.list_aliases("fn") == []


async def test_aliases_point_only_at_versions_that_exist(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        p.functions.create("fn", bundle(1), SETTINGS)
        p.versions.publish_version("fn")
        with pytest.raises(ResourceNotFoundException, match=f"{ARN}:2"):
            p.versions.create_alias("fn", "live", "1", routing={"2": 0.5})
        p.versions.create_alias("fn", "live", "1")
        with pytest.raises(ResourceConflictException, match="Alias already exists"):
            p.versions.create_alias("fn", "live", "$LATEST")
        with pytest.raises(ResourceNotFoundException, match="Alias not found"):
            p.versions.get_alias("fn", "beta")


async def test_update_alias_changes_only_what_it_is_given(tmp_path: Path) -> None:
    draws = itertools.repeat(0.0)
    async with platform(tmp_path, random=lambda: next(draws)) as p:
        p.functions.create("fn", bundle(1), SETTINGS)
        p.versions.publish_version("fn")
        p.functions.update_code("fn", bundle(2))
        p.versions.publish_version("fn")
        created = p.versions.create_alias("fn", "live", "1", description="prod")

        weighted = p.versions.update_alias("fn", "live", routing={"2": 0.25})
        moved = p.versions.update_alias("fn", "live", function_version="2", routing=None)

        assert (weighted.function_version, weighted.description) == ("1", "prod")
        assert weighted.routing == {"2": 0.25}
        assert weighted.revision_id != created.revision_id
        assert (moved.function_version, moved.routing) == ("2", {})
        assert (await p.h.invoker.invoke("fn", "live", b"{}")).executed_version == "2"
        assert p.versions.list_aliases("fn", "2") == [moved]
        assert p.versions.list_aliases("fn", "1") == []


async def test_a_version_an_alias_uses_cannot_be_deleted(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        p.functions.create("fn", bundle(1), SETTINGS)
        p.versions.publish_version("fn")
        p.functions.update_code("fn", bundle(2))
        p.versions.publish_version("fn")
        p.versions.create_alias("fn", "live", "2", routing={"1": 0.5})

        for version in ("1", "2"):
            with pytest.raises(ResourceConflictException, match="live"):
                p.functions.delete("fn", version)
        with pytest.raises(InvalidParameterValueException, match="LATEST"):
            p.functions.delete("fn", "$LATEST")
        p.versions.delete_alias("fn", "live")
        p.functions.delete("fn", "1")

        assert [c.version for c in p.versions.list_versions("fn")] == ["$LATEST", "2"]
        with pytest.raises(ResourceNotFoundException):
            await p.h.invoker.invoke("fn", "1", b"{}")


async def test_deleting_a_version_retires_its_idle_environments_only(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        p.functions.create("fn", bundle(1), SETTINGS)
        p.versions.publish_version("fn")
        v1 = await p.h.invoker.invoke("fn", "1", b"{}")
        latest = await p.h.invoker.invoke("fn", None, b"{}")

        p.functions.delete("fn", "1")

        assert p.h.driver.process(p.h.pid_that_served(v1.request_id)).killed
        assert not p.h.driver.process(p.h.pid_that_served(latest.request_id)).killed


async def test_deleting_the_function_deletes_versions_and_aliases(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        p.functions.create("fn", bundle(1), SETTINGS)
        p.versions.publish_version("fn")
        p.versions.create_alias("fn", "live", "1")

        p.functions.delete("fn")
        p.functions.create("fn", bundle(2), SETTINGS)

        assert p.versions.list_aliases("fn") == []
        assert [c.version for c in p.versions.list_versions("fn")] == ["$LATEST"]
        assert p.versions.publish_version("fn").version == "1"  # a new function starts over
        with pytest.raises(ResourceNotFoundException):
            await p.h.invoker.invoke("fn", "live", b"{}")


async def test_load_brings_versions_and_aliases_into_a_new_registry(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        p.functions.create("fn", bundle(1), SETTINGS)
        p.versions.publish_version("fn")
        p.versions.create_alias("fn", "live", "1")
        fresh = Registry(p.h.account)
        restarted = FunctionService(
            store=p.store,
            versions=SqliteVersionStore(p.store),
            code=p.code,
            registry=fresh,
            pool=p.h.pool,
            ledger=p.h.ledger,
            account=p.h.account,
        )

        assert restarted.load() == 1

        assert fresh.resolve("fn", "live").config.version == "1"
        assert fresh.resolve("fn", "1").config == p.functions.get("fn", "1")
        assert fresh.resolve("fn", None).config.version == "$LATEST"
