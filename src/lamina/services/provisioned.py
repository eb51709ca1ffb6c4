"""Provisioned concurrency: its configurations (Put/Get/Delete/ListProvisionedConcurrency-
Configs) and the execution environments that serve them.

A configuration is validated, then written in one store transaction (`core.provisioned`
has the rules). The store is the truth: a reconciler reads the configurations and brings
the pool in line with them, after every change (`changed`) and every `interval` seconds:

- each configuration wants `requested` environments of the version it names (an alias's
  primary version), started with `AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`
  and initialised ahead of time (`Pool.start_ahead`); invocations of that version, by
  number or through any alias, take them before on-demand ones;
- an environment that died, or failed to start, is started again (after a failed start,
  with a growing delay, and the configuration says FAILED and why);
- environments no configuration wants any more (changed or deleted configuration, alias
  re-pointed by a deployment, version or function deleted) are retired, busy ones when
  their invocation ends.

At start-up `load` re-applies every stored configuration. The ledger learns each function's
total, which counts against its reservation or the account's unreserved pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from lamina.core import provisioned as rules
from lamina.core.clock import Clock
from lamina.core.errors import (
    ProvisionedConcurrencyConfigNotFoundException,
    ResourceNotFoundException,
)
from lamina.core.models import LATEST, Account, FunctionConfig
from lamina.core.provisioned import ProvisionedConfig, ProvisionedState
from lamina.core.scheduling import Ledger
from lamina.core.versions import Alias, is_version
from lamina.services.environment import EnvState
from lamina.services.functions import now_iso
from lamina.services.pool import Key, Pool, StartFailed
from lamina.services.registry import DeployedFunction, Registry

log = logging.getLogger(__name__)


class ProvisionedTx(Protocol):
    """What this service reads and writes in one transaction
    (`lamina.store.versions.VersionsTransaction`)."""

    def get_function(self, name: str, version: str = LATEST) -> FunctionConfig | None: ...
    def get_alias(self, function_name: str, name: str) -> Alias | None: ...
    def list_aliases(self, function_name: str | None = None) -> list[Alias]: ...
    def get_provisioned(self, function_name: str, qualifier: str) -> ProvisionedConfig | None: ...
    def put_provisioned(self, config: ProvisionedConfig) -> None: ...
    def delete_provisioned(self, function_name: str, qualifier: str) -> bool: ...
    def list_provisioned(self, function_name: str | None = None) -> list[ProvisionedConfig]: ...


class ProvisionedStore(Protocol):
    def transaction(self, *, write: bool = True) -> AbstractContextManager[ProvisionedTx]: ...


@dataclass(slots=True)
class _Failure:
    reason: str
    attempts: int
    retry_at: float  # monotonic


class ProvisionedService:
    def __init__(
        self,
        *,
        store: ProvisionedStore,
        registry: Registry,
        pool: Pool,
        ledger: Ledger,
        account: Account,
        clock: Clock,
        interval: float = 1.0,
        retry_delay: float = 2.0,
        max_retry_delay: float = 300.0,
    ) -> None:
        self._store = store
        self._registry = registry
        self._pool = pool
        self._ledger = ledger
        self._account = account
        self._clock = clock
        self._interval = interval
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._desired: dict[Key, int] = {}
        self._starting: dict[Key, int] = {}
        self._failures: dict[Key, _Failure] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        wanted = sum(self._desired.values())
        starting = sum(self._starting.values())
        return (
            f"<ProvisionedService versions={len(self._desired)} wanted={wanted} "
            f"starting={starting} failing={len(self._failures)}>"
        )

    def statistics(self) -> dict[str, object]:
        return {
            "versions": len(self._desired),
            "wanted": sum(self._desired.values()),
            "allocated": sum(len(self._pool.provisioned(k)) for k in self._desired),
            "starting": sum(self._starting.values()),
            "failing": {"/".join(k[:2]): f.reason for k, f in self._failures.items()},
        }

    # configurations

    def put(self, name: str, qualifier: str | None, value: object) -> ProvisionedState:
        """PutProvisionedConcurrencyConfig: IN_PROGRESS until the environments are ready."""
        count = rules.requested(value)
        if qualifier is None or qualifier in ("", LATEST):
            raise rules.unpublished(qualifier)
        with self._store.transaction() as tx:
            function = self._function(tx, name, qualifier)
            self._check_target_exists(tx, name, qualifier)
            current = {c.qualifier: c.requested for c in tx.list_provisioned(name)}
            others = {q: n for q, n in current.items() if q != qualifier}
            rules.check_target(name, qualifier, tx.list_aliases(name), others)
            total = sum(others.values()) + count
            rules.check_limits(
                name,
                total,
                sum(current.values()),
                function.reserved_concurrency,
                self._unreserved_without(name),
            )
            config = ProvisionedConfig(name, qualifier, count, now_iso())
            tx.put_provisioned(config)
        self._ledger.set_provisioned(name, total)
        self.changed()
        return self.state(config)

    def get(self, name: str, qualifier: str | None) -> ProvisionedState:
        qualifier = rules.qualifier(qualifier)
        with self._store.transaction(write=False) as tx:
            self._function(tx, name, qualifier)
            self._check_target_exists(tx, name, qualifier)
            config = tx.get_provisioned(name, qualifier)
        if config is None:
            raise ProvisionedConcurrencyConfigNotFoundException(
                "No Provisioned Concurrency Config found for this function: "
                f"{self._account.function_arn(name, qualifier)}"
            )
        return self.state(config)

    def delete(self, name: str, qualifier: str | None) -> None:
        """DeleteProvisionedConcurrencyConfig; deleting one that does not exist succeeds."""
        qualifier = rules.qualifier(qualifier)
        with self._store.transaction() as tx:
            self._function(tx, name, qualifier)
            self._check_target_exists(tx, name, qualifier)
            tx.delete_provisioned(name, qualifier)
            total = sum(c.requested for c in tx.list_provisioned(name))
        self._ledger.set_provisioned(name, total)
        self.changed()

    def list(self, name: str) -> list[ProvisionedState]:
        with self._store.transaction(write=False) as tx:
            self._function(tx, name, None)
            configs = tx.list_provisioned(name)
        return [self.state(c) for c in configs]

    def state(self, config: ProvisionedConfig) -> ProvisionedState:
        """The configuration with the environments the node has initialised for it."""
        deployed = self.target(config)
        if deployed is None:
            return ProvisionedState(config, 0, "IN_PROGRESS")
        key = deployed.key
        ready = len(self._pool.provisioned(key))
        # Configurations sharing a version (two aliases on it) share its environments.
        with self._store.transaction(write=False) as tx:
            sharing = [c for c in tx.list_provisioned(config.function_name) if c != config]
        for other in sorted(sharing, key=lambda c: c.qualifier):
            target = self.target(other)
            if target is not None and target.key == key and other.qualifier < config.qualifier:
                ready -= min(ready, other.requested)
        allocated = min(ready, config.requested)
        failure = self._failures.get(key)
        reason = failure.reason if failure is not None else None
        status, reason = rules.status(config.requested, allocated, reason)
        return ProvisionedState(config, allocated, status, reason)

    def target(self, config: ProvisionedConfig) -> DeployedFunction | None:
        """The version a configuration provisions, as the invoke path sees it now."""
        version = config.qualifier
        if not is_version(version):
            alias = self._registry.alias(config.function_name, version)
            if alias is None or alias.function_version == LATEST:
                return None
            version = alias.function_version
        return self._registry.version(config.function_name, version)

    def _function(self, tx: ProvisionedTx, name: str, qualifier: str | None) -> FunctionConfig:
        function = tx.get_function(name)
        if function is None:
            raise ResourceNotFoundException(
                f"Function not found: {self._account.function_arn(name, qualifier)}"
            )
        return function

    def _check_target_exists(self, tx: ProvisionedTx, name: str, qualifier: str) -> None:
        arn = self._account.function_arn(name, qualifier)
        if is_version(qualifier):
            if tx.get_function(name, qualifier) is None:
                raise ResourceNotFoundException(f"Function not found: {arn}")
        elif tx.get_alias(name, qualifier) is None:
            raise ResourceNotFoundException(f"Cannot find alias arn: {arn}")

    def _unreserved_without(self, name: str) -> int:
        ledger = self._ledger
        return (
            ledger.account_limit - sum(ledger.reserved.values()) - ledger.carved_out(excluding=name)
        )

    # bringing the pool in line

    def load(self) -> int:
        """At start-up: the stored configurations, brought to the pool. Returns how many."""
        with self._store.transaction(write=False) as tx:
            count = len(tx.list_provisioned())
        self.reconcile()
        return count

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="provisioned-concurrency")

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task

    def changed(self) -> None:
        """A configuration, an alias or a version changed: act on it now."""
        self.reconcile()
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                self.reconcile()
            except Exception:
                log.exception("provisioned concurrency: reconciling failed")

    def reconcile(self) -> None:
        """Compare what the configurations want with what the pool has, and act."""
        with self._store.transaction(write=False) as tx:
            configs = tx.list_provisioned()
        totals: dict[str, int] = {}
        desired: dict[Key, tuple[DeployedFunction, int]] = {}
        for config in configs:
            name = config.function_name
            totals[name] = totals.get(name, 0) + config.requested
            deployed = self.target(config)
            if deployed is not None:
                _, wanted = desired.get(deployed.key, (deployed, 0))
                desired[deployed.key] = (deployed, wanted + config.requested)
        for name in set(self._ledger.provisioned) | set(totals):
            self._ledger.set_provisioned(name, totals.get(name, 0))
        self._desired = {key: wanted for key, (_, wanted) in desired.items()}
        for key in self._pool.provisioned_keys():
            self._release_extra(key, self._desired.get(key, 0))
        for key in [k for k in self._failures if k not in self._desired]:
            del self._failures[key]
        now = self._clock.monotonic()
        for key, (deployed, wanted) in desired.items():
            missing = wanted - len(self._pool.provisioned(key)) - self._starting.get(key, 0)
            failure = self._failures.get(key)
            if missing <= 0 or (failure is not None and now < failure.retry_at):
                continue
            for _ in range(missing):
                self._starting[key] = self._starting.get(key, 0) + 1
                self._pool.spawn(self._start(key, deployed), f"provision {deployed.config.name}")

    def _release_extra(self, key: Key, wanted: int) -> None:
        envs = self._pool.provisioned(key)
        extra = len(envs) - wanted
        if extra <= 0:
            return
        # Idle ones first: they go at once; a busy one finishes its invocation.
        envs.sort(key=lambda env: env.state is EnvState.BUSY)
        for env in envs[:extra]:
            self._pool.unprovision(env)

    async def _start(self, key: Key, deployed: DeployedFunction) -> None:
        try:
            env = await self._pool.start_ahead(deployed, provisioned=True)
        except StartFailed as failed:
            self._failed(key, str(failed))
        except Exception as exc:
            log.exception("provisioned concurrency: starting %s failed", deployed.config.name)
            self._failed(key, f"internal error: {type(exc).__name__}")
        else:
            self._failures.pop(key, None)
            if len(self._pool.provisioned(key)) <= self._desired.get(key, 0):
                self._pool.provision(env)
            else:
                self._pool.unprovision(env)
        finally:
            self._starting[key] -= 1
            if not self._starting[key]:
                del self._starting[key]
            self._wake.set()

    def _failed(self, key: Key, reason: str) -> None:
        if key not in self._desired:
            return  # no longer wanted: it was stopped on purpose
        previous = self._failures.get(key)
        attempts = previous.attempts + 1 if previous else 1
        delay = min(self._max_retry_delay, self._retry_delay * 2 ** (attempts - 1))
        self._failures[key] = _Failure(reason, attempts, self._clock.monotonic() + delay)
        log.warning(
            "provisioned concurrency of %s version %s: %s (attempt %d, next in %.0f s)",
            key[0],
            key[1],
            reason,
            attempts,
            delay,
        )

    async def wait_settled(self) -> None:
        """Wait until no environment is being started (for tests and shutdown)."""
        while self._starting:
            await self._pool.wait_background()
            await asyncio.sleep(0)
