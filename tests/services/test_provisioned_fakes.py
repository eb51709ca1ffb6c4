"""What the provisioned concurrency tests share: the real services (functions, versions,
deployments, provisioned concurrency) on a real SqliteStore in tmp_path, with the pool on
fakes, a registry-aware pool and a DeployService that tells the provisioned service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.services.test_deploy_fakes import Platform, platform

from lamina.services.deploy import DeployService
from lamina.services.provisioned import ProvisionedService
from lamina.store.deployments import SqliteDeploymentStore
from lamina.store.versions import SqliteVersionStore

SETTINGS = {"runtime": "python3.12", "handler": "app.handler"}


@dataclass
class Provisioned:
    p: Platform
    service: ProvisionedService
    deploy: DeployService

    async def settle(self) -> None:
        """Reconcile, and wait for the environments being started."""
        self.service.reconcile()
        await self.service.wait_settled()

    def types(self, name: str = "fn") -> list[str]:
        """AWS_LAMBDA_INITIALIZATION_TYPE of the live environments of `name`, sorted."""
        envs = self.p.h.pool.environments(name)
        return sorted(e.launch.env["AWS_LAMBDA_INITIALIZATION_TYPE"] for e in envs)

    def versions(self, name: str = "fn") -> list[str]:
        """The versions of `name`'s live provisioned environments, sorted."""
        pool = self.p.h.pool
        keys = [k for k in pool.provisioned_keys() if k[0] == name]
        return sorted(e.function.version for k in keys for e in pool.provisioned(k))


@contextlib.asynccontextmanager
async def provisioned_platform(
    tmp_path: Path, account_limit: int = 1000
) -> AsyncIterator[Provisioned]:
    async with platform(tmp_path, account_limit=account_limit) as p:
        h = p.h
        h.pool.registry = h.registry
        service = ProvisionedService(
            store=SqliteVersionStore(p.store),
            registry=h.registry,
            pool=h.pool,
            ledger=h.ledger,
            account=h.account,
            clock=h.clock,
        )
        deploy = DeployService(
            deployments=SqliteDeploymentStore(p.store),
            code=p.code,
            registry=h.registry,
            pool=h.pool,
            ledger=h.ledger,
            routes=p.routes,
            account=h.account,
            clock=h.clock,
            provisioned=service,
        )
        try:
            yield Provisioned(p, service, deploy)
        finally:
            await service.close()
            await service.wait_settled()
