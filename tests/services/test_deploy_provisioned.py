"""`provisionedConcurrency` in a deployment, as the Serverless Framework makes it: an alias
named `provisioned` on the version the deployment published, carrying the configuration,
with the function's routes going to it; re-pointed by later deployments, removed with the
setting, and checked against reservations and the account before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.services.test_deploy_fakes import bundle, function, spec
from tests.services.test_provisioned_fakes import provisioned_platform

from lamina.core.errors import InvalidParameterValueException
from lamina.store.versions import SqliteVersionStore

GET_HELLO = {"method": "GET", "path": "/hello"}
NAME = "app-dev-api"


def stored(x: object) -> list[tuple[str, str, int]]:
    with SqliteVersionStore(x.p.store).transaction(write=False) as tx:  # type: ignore[attr-defined]
        return [(c.function_name, c.qualifier, c.requested) for c in tx.list_provisioned()]


async def test_a_deployment_provisions_the_version_it_publishes_through_an_alias(
    tmp_path: Path,
) -> None:
    async with provisioned_platform(tmp_path) as x:
        sha = x.p.upload(bundle("v1"))

        deployment = x.deploy.deploy(
            spec(
                function("api", sha, routes=[GET_HELLO], provisioned_concurrency=2, memory_size=128)
            )
        )
        await x.service.wait_settled()

        assert deployment.versions == {NAME: "1"}
        alias = x.p.versions.get_alias(NAME, "provisioned")
        assert alias.function_version == "1"
        assert stored(x) == [(NAME, "provisioned", 2)]
        assert x.p.routes.qualifiers() == {NAME: "provisioned"}  # events go to the alias
        assert x.service.get(NAME, "provisioned").status == "READY"
        assert x.types(NAME) == ["provisioned-concurrency"] * 2
        response = await x.p.h.invoker.invoke(NAME, "provisioned", b"{}")
        assert (response.executed_version, x.p.h.pool.cold_starts) == ("1", 0)


async def test_a_new_version_moves_the_alias_and_its_environments(tmp_path: Path) -> None:
    async with provisioned_platform(tmp_path) as x:
        first = x.p.upload(bundle("v1"))
        second = x.p.upload(bundle("v2"))
        x.deploy.deploy(spec(function("api", first, provisioned_concurrency=1)))
        await x.service.wait_settled()
        [old] = x.p.h.pool.environments(NAME)

        x.deploy.deploy(spec(function("api", second, provisioned_concurrency=1)))
        await x.settle()

        assert x.p.versions.get_alias(NAME, "provisioned").function_version == "2"
        assert x.versions(NAME) == ["2"]
        assert not old.alive
        assert stored(x) == [(NAME, "provisioned", 1)]

        x.deploy.rollback("app", "dev")  # the previous deployment's version again
        await x.settle()
        assert x.p.versions.get_alias(NAME, "provisioned").function_version == "1"
        assert x.versions(NAME) == ["1"]


async def test_dropping_the_setting_removes_the_alias_and_its_environments(
    tmp_path: Path,
) -> None:
    async with provisioned_platform(tmp_path) as x:
        sha = x.p.upload(bundle("v1"))
        x.deploy.deploy(
            spec(
                function("api", sha, routes=[GET_HELLO], provisioned_concurrency=2, memory_size=128)
            )
        )
        await x.service.wait_settled()

        x.deploy.deploy(spec(function("api", sha, routes=[GET_HELLO], memory_size=128)))
        await x.settle()

        assert x.p.versions.list_aliases(NAME) == []
        assert stored(x) == []
        assert x.p.routes.qualifiers() == {NAME: "1"}
        assert x.p.h.pool.environments(NAME) == []
        assert x.p.h.ledger.provisioned == {}


async def test_an_alias_the_user_made_is_left_alone_by_deployments_without_the_setting(
    tmp_path: Path,
) -> None:
    async with provisioned_platform(tmp_path) as x:
        sha = x.p.upload(bundle("v1"))
        x.deploy.deploy(spec(function("api", sha)))
        x.p.versions.create_alias(NAME, "provisioned", "1")

        x.deploy.deploy(spec(function("api", x.p.upload(bundle("v2")))))

        assert x.p.versions.get_alias(NAME, "provisioned").function_version == "1"


async def test_provisioned_concurrency_publishes_a_version_even_without_versioning(
    tmp_path: Path,
) -> None:
    async with provisioned_platform(tmp_path) as x:
        sha = x.p.upload(bundle("v1"))

        deployment = x.deploy.deploy(
            spec(
                function("api", sha, routes=[GET_HELLO], provisioned_concurrency=1),
                function("plain", sha, routes=[{"method": "GET", "path": "/plain"}]),
                version_functions=False,
            )
        )
        await x.service.wait_settled()

        assert deployment.versions == {NAME: "1", "app-dev-plain": "$LATEST"}
        assert x.p.routes.qualifiers() == {NAME: "provisioned", "app-dev-plain": None}
        assert x.service.get(NAME, "provisioned").status == "READY"


async def test_removing_the_stack_drops_its_configurations(tmp_path: Path) -> None:
    async with provisioned_platform(tmp_path) as x:
        sha = x.p.upload(bundle("v1"))
        x.deploy.deploy(spec(function("api", sha, provisioned_concurrency=1)))
        await x.service.wait_settled()

        x.deploy.remove("app", "dev")
        await x.settle()

        assert stored(x) == []
        assert x.p.h.pool.environments() == []


@pytest.mark.parametrize(
    ("fields", "account_limit", "error"),
    [
        (
            {"provisioned_concurrency": 3, "reserved_concurrency": 2},
            1000,
            "functions.api.provisionedConcurrency = 3: must not exceed reservedConcurrency (2)",
        ),
        (
            {"provisioned_concurrency": 101},
            200,
            "functions.api.provisionedConcurrency: would leave 99 of the account's 200 "
            "unreserved concurrency, below its minimum of 100",
        ),
        (
            {"provisioned_concurrency": "two"},
            1000,
            "functions.api.provisionedConcurrency = 'two': must be a whole number (0 for none)",
        ),
    ],
)
async def test_a_deployment_that_asks_too_much_is_refused_whole(
    tmp_path: Path, fields: dict[str, object], account_limit: int, error: str
) -> None:
    async with provisioned_platform(tmp_path, account_limit=account_limit) as x:
        sha = x.p.upload(bundle("v1"))
        x.deploy.deploy(spec(function("api", sha, provisioned_concurrency=1)))
        await x.service.wait_settled()
        before = (stored(x), x.p.versions.list_aliases(NAME), x.p.routes.qualifiers())

        with pytest.raises(InvalidParameterValueException) as caught:
            x.deploy.deploy(spec(function("api", x.p.upload(bundle("v2")), **fields)))

        assert error in caught.value.message
        assert (stored(x), x.p.versions.list_aliases(NAME), x.p.routes.qualifiers()) == before
        assert x.versions(NAME) == ["1"]


async def test_other_configurations_of_the_function_count_against_its_reservation(
    tmp_path: Path,
) -> None:
    async with provisioned_platform(tmp_path) as x:
        sha = x.p.upload(bundle("v1"))
        x.deploy.deploy(spec(function("api", sha, reserved_concurrency=3)))
        x.service.put(NAME, "1", 2)

        with pytest.raises(InvalidParameterValueException) as caught:
            x.deploy.deploy(
                spec(function("api", sha, reserved_concurrency=3, provisioned_concurrency=2))
            )

        assert "less what its other versions and aliases have (2)" in caught.value.message
