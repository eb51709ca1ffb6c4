"""DeployService on the real stores with a fake route table: what a deployment, a failed
one, a rollback and a removal leave behind in the store, the registry, the ledger, the
warm environments and the routes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from tests.services.test_deploy_fakes import (
    FakeRouteTable,
    Platform,
    bundle,
    function,
    platform,
    spec,
)

from lamina.core.errors import InvalidParameterValueException, ResourceNotFoundException
from lamina.core.routes import Route
from lamina.store.deployments import SqliteDeploymentStore
from lamina.wire.deployment import LayerSpec

GET_HELLO = {"method": "GET", "path": "/hello"}


def _code(p: Platform, name: str, qualifier: str | None) -> str:
    """What the handler that `qualifier` resolves to returns."""
    source = (p.h.registry.resolve(name, qualifier).code_dir / "app.py").read_text()
    return source.split("return ")[1].strip().strip("'")


def _live(p: Platform, service: str = "app", stage: str = "dev") -> int:
    stack, _ = p.deploy.stack(service, stage)
    return stack.deployment_id


async def test_a_first_deployment_creates_functions_versions_and_routes(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        sha = p.upload(bundle("v1"))

        deployment = p.deploy.deploy(
            spec(function("api", sha, routes=[GET_HELLO], timeout=10), function("worker", sha))
        )

        assert [(f.key, f.name, f.version, f.changed) for f in deployment.functions] == [
            ("api", "app-dev-api", "1", True),
            ("worker", "app-dev-worker", "1", True),
        ]
        assert (deployment.id, deployment.service, deployment.stage) == (1, "app", "dev")
        assert p.functions.get("app-dev-api").timeout == 10
        assert p.functions.get("app-dev-api", "1").code_sha256 == sha
        assert p.h.registry.resolve("app-dev-api", "1").config.version == "1"
        assert p.routes.routes == [
            Route(
                "httpApi", "app", "dev", "app-dev-api", qualifier="1", method="GET", path="/hello"
            )
        ]
        assert _live(p) == 1
        assert _code(p, "app-dev-api", "1") == "v1"


async def test_an_unchanged_redeployment_publishes_nothing(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        sha = p.upload(bundle("v1"))
        first = p.deploy.deploy(spec(function("api", sha)))
        latest = p.functions.get("app-dev-api")

        second = p.deploy.deploy(spec(function("api", sha)))

        assert second.id == 2
        assert [(f.version, f.changed) for f in second.functions] == [("1", False)]
        assert p.functions.get("app-dev-api") == latest  # same revision: warm stays warm
        assert first.functions[0].version == "1"


async def test_changed_code_publishes_a_new_version_and_retires_idle_environments(
    tmp_path: Path,
) -> None:
    async with platform(tmp_path) as p:
        v1 = p.upload(bundle("v1"))
        p.deploy.deploy(spec(function("api", v1, routes=[GET_HELLO])))
        warm = await p.h.invoker.invoke("app-dev-api", None, b"{}")

        deployment = p.deploy.deploy(
            spec(function("api", p.upload(bundle("v2")), routes=[GET_HELLO]))
        )

        assert [(f.version, f.changed) for f in deployment.functions] == [("2", True)]
        assert p.routes.qualifiers() == {"app-dev-api": "2"}
        assert p.h.driver.process(p.h.pid_that_served(warm.request_id)).killed
        assert (_code(p, "app-dev-api", "2"), _code(p, "app-dev-api", "1")) == ("v2", "v1")


async def test_without_versioning_routes_go_to_latest(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        sha = p.upload(bundle("v1"))

        deployment = p.deploy.deploy(
            spec(function("api", sha, routes=[GET_HELLO]), version_functions=False)
        )

        assert [f.version for f in deployment.functions] == ["$LATEST"]
        assert p.routes.qualifiers() == {"app-dev-api": None}
        assert [c.version for c in p.versions.list_versions("app-dev-api")] == ["$LATEST"]


async def test_a_failed_deployment_changes_nothing_and_reports_every_problem(
    tmp_path: Path,
) -> None:
    async with platform(tmp_path) as p:
        v1 = p.upload(bundle("v1"))
        p.deploy.deploy(spec(function("api", v1, routes=[GET_HELLO])))
        latest = p.functions.get("app-dev-api")
        routes = list(p.routes.routes)

        bad = spec(
            function("api", p.upload(bundle("v2")), routes=[GET_HELLO]),
            function("new", v1),
            function("broken", "f" * 64, timeout=0, memory_size=64, layers=("layer:nope",)),
        )
        with pytest.raises(InvalidParameterValueException) as raised:
            p.deploy.deploy(bad)

        message = raised.value.message
        for expected in ("functions.broken: Timeout = 0", "MemorySize = 64", "no such code bundle"):
            assert expected in message
        assert p.functions.get("app-dev-api") == latest
        with pytest.raises(ResourceNotFoundException):
            p.functions.get("app-dev-new")
        assert [c.version for c in p.versions.list_versions("app-dev-api")] == ["$LATEST", "1"]
        assert [d.id for d in p.deploy.deployments("app", "dev")] == [1]
        assert p.routes.routes == routes
        assert p.h.registry.resolve("app-dev-api", None).config == latest
        with pytest.raises(ResourceNotFoundException):
            p.h.registry.resolve("app-dev-new", None)


async def test_a_route_conflict_refuses_the_deployment_and_keeps_the_live_routes(
    tmp_path: Path,
) -> None:
    async with platform(tmp_path) as p:
        v1 = p.upload(bundle("v1"))
        p.deploy.deploy(spec(function("api", v1, routes=[GET_HELLO])))
        routes = list(p.routes.routes)

        with pytest.raises(InvalidParameterValueException, match="route conflict"):
            p.deploy.deploy(
                spec(
                    function("api", p.upload(bundle("v2")), routes=[GET_HELLO]),
                    function("other", v1, routes=[GET_HELLO]),
                )
            )

        assert p.routes.routes == routes
        assert p.functions.get("app-dev-api").code_sha256 == v1
        assert [d.id for d in p.deploy.deployments("app", "dev")] == [1]


async def test_a_failure_after_the_dry_run_restores_the_routes(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        v1 = p.upload(bundle("v1"))
        p.deploy.deploy(spec(function("api", v1, routes=[GET_HELLO])))
        routes = list(p.routes.routes)
        other = spec(function("other", v1, stage="prod", routes=[GET_HELLO]), stage="prod")

        # The store refuses a NULL region: the write fails after the route table took
        # the new routes.
        with pytest.raises(Exception, match="NOT NULL"):
            p.deploy.deploy(dataclasses.replace(other, region=None))  # type: ignore[arg-type]

        assert p.routes.routes == routes
        assert len(p.routes.calls) == 4  # dry run + swap, then dry run + restore
        with pytest.raises(ResourceNotFoundException):
            p.functions.get("app-prod-other")


async def test_functions_left_out_of_the_spec_are_deleted(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        sha = p.upload(bundle("v1"))
        p.deploy.deploy(spec(function("api", sha), function("old", sha, routes=[GET_HELLO])))
        await p.h.invoker.invoke("app-dev-old", None, b"{}")

        p.deploy.deploy(spec(function("api", sha)))

        with pytest.raises(ResourceNotFoundException):
            p.functions.get("app-dev-old")
        with pytest.raises(ResourceNotFoundException):
            p.h.registry.resolve("app-dev-old", "1")
        assert p.routes.routes == []
        assert p.h.pool.environments("app-dev-old") == []


async def test_service_layers_are_published_when_they_change(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        sha = p.upload(bundle("v1"))
        deps = LayerSpec(key="deps", name="app-dev-deps", code_sha256=p.upload(bundle("lib")))
        fn = function("api", sha, layers=("layer:deps",))

        p.deploy.deploy(spec(fn, layers=(deps,)))
        p.deploy.deploy(spec(fn, layers=(deps,)))
        first = p.functions.get("app-dev-api")
        changed = dataclasses.replace(deps, code_sha256=p.upload(bundle("lib2")))
        third = p.deploy.deploy(spec(fn, layers=(changed,)))

        arn = "arn:aws:lambda:us-east-1:000000000000:layer:app-dev-deps"
        assert first.layers == (f"{arn}:1",)
        assert p.functions.get("app-dev-api").layers == (f"{arn}:2",)
        assert [f.version for f in third.functions] == ["2"]
        opt = p.h.registry.resolve("app-dev-api", "2").opt_root
        assert opt is not None and "lib2" in (opt / "app.py").read_text()


async def test_layer_references_must_resolve(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        sha = p.upload(bundle("v1"))
        missing = "arn:aws:lambda:us-east-1:000000000000:layer:nope:1"
        with pytest.raises(InvalidParameterValueException) as raised:
            p.deploy.deploy(
                spec(function("a", sha, layers=("layer:x",)), function("b", sha, layers=(missing,)))
            )
        assert "'layer:x' is not a layer of this service" in raised.value.message
        assert f"layer version {missing!r} does not exist" in raised.value.message


async def test_reserved_concurrency_must_fit_the_account(tmp_path: Path) -> None:
    async with platform(tmp_path, account_limit=300) as p:
        sha = p.upload(bundle("v1"))
        p.functions.create("outsider", bundle(0), {"runtime": "python3.12", "handler": "a.b"})
        p.functions.put_concurrency("outsider", 150)

        with pytest.raises(InvalidParameterValueException, match="ReservedConcurrentExecutions"):
            p.deploy.deploy(
                spec(
                    function("a", sha, reserved_concurrency=30),
                    function("b", sha, reserved_concurrency=30),
                )
            )
        p.deploy.deploy(spec(function("a", sha, reserved_concurrency=50)))

        assert p.h.ledger.reserved == {"outsider": 150, "app-dev-a": 50}
        p.deploy.deploy(spec(function("a", sha)))
        assert p.h.ledger.reserved == {"outsider": 150}


async def test_a_function_of_another_stack_is_not_taken_over(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        sha = p.upload(bundle("v1"))
        p.deploy.deploy(spec(function("api", sha, name="shared")))
        with pytest.raises(
            InvalidParameterValueException, match="belongs to service app stage dev"
        ):
            p.deploy.deploy(spec(function("api", sha, name="shared", stage="prod"), stage="prod"))


async def test_rollback_makes_an_earlier_deployment_live_with_its_versions(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        v1, v2 = p.upload(bundle("v1")), p.upload(bundle("v2"))
        p.deploy.deploy(spec(function("api", v1, routes=[GET_HELLO])))
        p.deploy.deploy(spec(function("api", v2, routes=[GET_HELLO]), function("extra", v2)))

        back = p.deploy.rollback("app", "dev", 1)

        assert back.id == 1 and _live(p) == 1
        assert [(f.version, f.changed) for f in back.functions] == [("1", True)]
        assert p.functions.get("app-dev-api").code_sha256 == v1
        assert p.routes.qualifiers() == {"app-dev-api": "1"}
        with pytest.raises(ResourceNotFoundException):
            p.functions.get("app-dev-extra")
        forward = p.deploy.rollback("app", "dev", 2)  # "extra" comes back with a new version
        assert [(f.name, f.version) for f in forward.functions] == [
            ("app-dev-api", "2"),
            ("app-dev-extra", "1"),
        ]


async def test_rollback_without_a_target_goes_to_the_deployment_before_the_live_one(
    tmp_path: Path,
) -> None:
    async with platform(tmp_path) as p:
        for n in range(3):
            p.deploy.deploy(spec(function("api", p.upload(bundle(n)))))

        assert p.deploy.rollback("app", "dev").id == 2
        assert p.deploy.rollback("app", "dev").id == 1
        with pytest.raises(ResourceNotFoundException, match="no deployment before 1"):
            p.deploy.rollback("app", "dev")
        with pytest.raises(ResourceNotFoundException, match="deployment 9 of app-dev"):
            p.deploy.rollback("app", "dev", 9)
        with pytest.raises(ResourceNotFoundException, match="Stack not found"):
            p.deploy.rollback("app", "prod")
        # A new deployment after a rollback is the newest.
        assert p.deploy.deploy(spec(function("api", p.upload(bundle(9))))).id == 4


async def test_only_the_newest_deployments_are_kept(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        for n in range(7):
            p.deploy.deploy(spec(function("api", p.upload(bundle(n)))))

        assert [d.id for d in p.deploy.deployments("app", "dev")] == [7, 6, 5, 4, 3]


async def test_remove_deletes_functions_routes_and_history(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        sha = p.upload(bundle("v1"))
        p.deploy.deploy(spec(function("api", sha, routes=[GET_HELLO])))
        p.deploy.deploy(
            spec(
                function("web", sha, service="site", stage="prod", routes=[GET_HELLO]),
                service="site",
                stage="prod",
            )
        )
        p.versions.create_alias("app-dev-api", "live", "1")

        p.deploy.remove("app", "dev")

        with pytest.raises(ResourceNotFoundException):
            p.functions.get("app-dev-api")
        with pytest.raises(ResourceNotFoundException):
            p.h.registry.resolve("app-dev-api", "live")
        assert [r.function_name for r in p.routes.routes] == ["site-prod-web"]
        assert [(s.service, s.stage) for s in p.deploy.stacks()] == [("site", "prod")]
        with SqliteDeploymentStore(p.store).transaction(write=False) as tx:
            assert tx.list_deployments("app", "dev") == []
        with pytest.raises(ResourceNotFoundException):
            p.deploy.remove("app", "dev")


async def test_load_puts_every_live_stacks_routes_in_the_route_table(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        sha = p.upload(bundle("v1"))
        p.deploy.deploy(spec(function("api", sha, routes=[GET_HELLO])))
        p.deploy.deploy(
            spec(function("web", sha, service="site", routes=[GET_HELLO]), service="site")
        )
        table = FakeRouteTable()

        assert p.new_deploy_service(table).load() == 2

        assert sorted((r.function_name, r.qualifier) for r in table.routes) == [
            ("app-dev-api", "1"),
            ("site-dev-web", "1"),
        ]
        empty = FakeRouteTable()
        p.deploy.remove("app", "dev")
        p.deploy.remove("site", "dev")
        assert p.new_deploy_service(empty).load() == 0
        assert empty.calls == []  # an empty table stays untouched


async def test_endpoints_are_the_route_tables_for_the_stack(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        sha = p.upload(bundle("v1"))
        p.deploy.deploy(spec(function("api", sha, routes=[GET_HELLO])))
        p.deploy.deploy(
            spec(function("web", sha, service="site", routes=[GET_HELLO]), service="site")
        )

        (endpoint,) = p.deploy.endpoints("app", "dev", "http://data")

        assert endpoint[0].function_name == "app-dev-api"
        assert endpoint[1] == "http://data/app/dev/hello"
