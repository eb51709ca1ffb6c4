"""What the versions and deploy tests share: a `FakeRouteTable`, code bundles, and the real
services on a real SqliteStore/CodeStore in tmp_path with the pool on fakes (`Platform`)."""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.services.fakes import Harness

from lamina.core.errors import InvalidParameterValueException
from lamina.core.routes import Route
from lamina.services.deploy import DeployService
from lamina.services.functions import FunctionService
from lamina.services.versions import VersionService
from lamina.store.blobs import CodeStore
from lamina.store.deployments import SqliteDeploymentStore
from lamina.store.sqlite import SqliteStore
from lamina.store.versions import SqliteVersionStore
from lamina.wire.deployment import DeploymentSpec, FunctionSpec, LayerSpec


class FakeRouteTable:
    """Records every route set; refuses two routes on one method and path of one API (or
    anything at all while `refuse` holds a message), keeping the routes it had."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.calls: list[list[Route]] = []
        self.refuse: str | None = None

    def set_routes(self, routes: Sequence[Route]) -> None:
        self.calls.append(list(routes))
        if self.refuse is not None:
            raise InvalidParameterValueException(self.refuse)
        seen: set[tuple[str, str, str, str]] = set()
        for route in routes:
            key = (route.kind, route.api_id, route.method, route.path)
            if key in seen:
                raise InvalidParameterValueException(f"route conflict: {route.route_key}")
            seen.add(key)
        self.routes = list(routes)

    def endpoints(self, base_url: str) -> list[tuple[Route, str]]:
        return [(r, f"{base_url}/{r.service}/{r.stage}{r.path}") for r in self.routes]

    def qualifiers(self) -> dict[str, str | None]:
        return {r.function_name: r.qualifier for r in self.routes}


def bundle(result: object, files: dict[str, str] | None = None) -> bytes:
    """A Python function's zip whose handler returns `result`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", f"def handler(event, context):\n    return {result!r}\n")
        for name, content in (files or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def function(
    key: str, code_sha256: str, *, service: str = "app", stage: str = "dev", **fields: Any
) -> FunctionSpec:
    name = fields.pop("name", f"{service}-{stage}-{key}")
    routes = tuple(
        Route(kind="httpApi", service=service, stage=stage, function_name=name, **r)
        for r in fields.pop("routes", ())
    )
    return FunctionSpec(
        key=key,
        name=name,
        runtime=fields.pop("runtime", "python3.12"),
        handler=fields.pop("handler", "app.handler"),
        code_sha256=code_sha256,
        routes=routes,
        **fields,
    )


def spec(
    *functions: FunctionSpec,
    service: str = "app",
    stage: str = "dev",
    layers: tuple[LayerSpec, ...] = (),
    version_functions: bool = True,
) -> DeploymentSpec:
    return DeploymentSpec(
        service=service,
        stage=stage,
        region="us-east-1",
        functions=functions,
        layers=layers,
        version_functions=version_functions,
    )


@dataclass
class Platform:
    h: Harness
    store: SqliteStore
    code: CodeStore
    functions: FunctionService
    versions: VersionService
    deploy: DeployService
    routes: FakeRouteTable = field(default_factory=FakeRouteTable)

    def upload(self, zip_bytes: bytes) -> str:
        sha, _ = self.code.put(zip_bytes)
        return sha

    def new_deploy_service(self, routes: FakeRouteTable) -> DeployService:
        """Another DeployService on the same state, as a restarted server builds it."""
        return build_deploy(self.h, self.store, self.code, routes)


def build_deploy(
    h: Harness, store: SqliteStore, code: CodeStore, routes: FakeRouteTable
) -> DeployService:
    return DeployService(
        deployments=SqliteDeploymentStore(store),
        code=code,
        registry=h.registry,
        pool=h.pool,
        ledger=h.ledger,
        routes=routes,
        account=h.account,
        clock=h.clock,
    )


@contextlib.asynccontextmanager
async def platform(
    tmp_path: Path, *, random: Callable[[], float] | None = None, account_limit: int = 1000
) -> AsyncIterator[Platform]:
    store = SqliteStore(tmp_path / "state" / "lamina.db")
    code = CodeStore(tmp_path / "bundles")
    try:
        async with Harness(tmp_path, account_limit=account_limit, random=random) as h:
            functions = FunctionService(
                store=store,
                versions=SqliteVersionStore(store),
                code=code,
                registry=h.registry,
                pool=h.pool,
                ledger=h.ledger,
                account=h.account,
            )
            versions = VersionService(
                versions=SqliteVersionStore(store),
                functions=functions,
                registry=h.registry,
                account=h.account,
            )
            routes = FakeRouteTable()
            yield Platform(
                h, store, code, functions, versions, build_deploy(h, store, code, routes), routes
            )
    finally:
        store.close()
