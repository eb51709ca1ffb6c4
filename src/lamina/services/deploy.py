"""Deployments: a whole service/stage (a stack) applied atomically, rolled back, removed.

Applying a `DeploymentSpec`:

1. Check everything (`deploy_plan.plan`): names, settings, bundles, layer references,
   reserved concurrency; then the new full route set is handed to the route table, which
   refuses conflicts. Nothing has been written yet.
2. In one store transaction: publish changed layers, upsert the stack's functions, publish
   a version of each changed one (when `version_functions`), delete the functions the spec
   no longer has, record the deployment and make it the stack's live one.
3. Only after the commit: the registry, the ledger's reservations, the idle environments of
   changed functions, and the routes of every live stack (each pointing at the version the
   deployment made live, or `$LATEST` without versioning).

Provisioned concurrency, as the Serverless Framework (v3) does it: a function with
`provisionedConcurrency: N` always gets a published version (even without
`version_functions`), an alias named `provisioned` pointing at it carries the configuration
(N), and the function's routes and events go to that alias. When a later deployment drops
`provisionedConcurrency`, the alias and its configuration go too. The provisioned
concurrency service then brings the environments in line (`ProvisionedService.changed`).

All of it runs synchronously on the event loop, with no await in between: no invocation can
observe a half-applied deployment, and a failure before the commit restores the routes.

History: a rollback makes an earlier deployment live again (it is not a new deployment);
its functions go back to the versions it recorded when they still match its code and
configuration, else new versions are published. Each stack keeps its newest
`KEEP_DEPLOYMENTS` deployments (and always the live one); older ones are deleted when a
deployment is recorded, and cannot be rolled back to.
"""

from __future__ import annotations

import dataclasses
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from lamina.core.clock import Clock
from lamina.core.deployments import KEEP_DEPLOYMENTS, DeployedVersion, Deployment, Stack
from lamina.core.errors import ResourceNotFoundException
from lamina.core.models import LATEST, Account, FunctionConfig, LayerVersion
from lamina.core.ports import RouteTable
from lamina.core.provisioned import DEPLOY_ALIAS, ProvisionedConfig, check_target
from lamina.core.routes import Route
from lamina.core.scheduling import Ledger
from lamina.core.versions import Alias, unchanged
from lamina.services.deploy_plan import LAYER_REF, CodeBundles, Context, Plan, plan
from lamina.services.functions import CONFIG_FIELDS, VersionsTx, now_iso
from lamina.services.pool import Pool
from lamina.services.provisioned import ProvisionedService
from lamina.services.registry import DeployedFunction, Registry
from lamina.services.triggers import Triggers
from lamina.services.versions import publish
from lamina.wire.deployment import DeploymentSpec, from_json, to_json

StackKey = tuple[str, str]  # (service, stage)


class DeploymentsTx(VersionsTx, Protocol):
    """`lamina.store.deployments.DeploymentsTransaction`."""

    def add_deployment(
        self,
        *,
        service: str,
        stage: str,
        region: str,
        created: float,
        spec: dict[str, Any],
        functions: tuple[DeployedVersion, ...],
    ) -> Deployment: ...
    def set_deployment_functions(
        self, deployment_id: int, functions: tuple[DeployedVersion, ...]
    ) -> None: ...
    def get_deployment(self, service: str, stage: str, deployment_id: int) -> Deployment | None: ...
    def list_deployments(self, service: str, stage: str) -> list[Deployment]: ...
    def prune_deployments(self, service: str, stage: str, keep: int) -> int: ...
    def set_live(self, service: str, stage: str, deployment_id: int, updated: float) -> None: ...
    def get_stack(self, service: str, stage: str) -> Stack | None: ...
    def list_stacks(self) -> list[Stack]: ...
    def delete_stack(self, service: str, stage: str) -> bool: ...
    def get_provisioned(self, function_name: str, qualifier: str) -> ProvisionedConfig | None: ...
    def put_provisioned(self, config: ProvisionedConfig) -> None: ...
    def list_provisioned(self, function_name: str | None = None) -> list[ProvisionedConfig]: ...


class DeploymentStore(Protocol):
    def transaction(self, *, write: bool = True) -> AbstractContextManager[DeploymentsTx]: ...


@dataclass(frozen=True, slots=True)
class _Applied:
    """A function as a deployment left it, for the in-memory side."""

    latest: DeployedFunction
    changed: bool  # new revision of $LATEST: its idle environments are stale
    version: DeployedFunction | None  # published by this deployment
    alias: Alias | None = None  # the `provisioned` alias, created or re-pointed
    alias_removed: bool = False  # the `provisioned` alias was deleted


class DeployService:
    def __init__(
        self,
        *,
        deployments: DeploymentStore,
        code: CodeBundles,
        registry: Registry,
        pool: Pool,
        ledger: Ledger,
        routes: RouteTable,
        account: Account,
        clock: Clock,
        triggers: Triggers | None = None,
        provisioned: ProvisionedService | None = None,
    ) -> None:
        self._store = deployments
        self._code = code
        self._registry = registry
        self._pool = pool
        self._ledger = ledger
        self._routes = routes
        self._account = account
        self._clock = clock
        self._triggers = triggers
        self._provisioned = provisioned
        self._live: dict[StackKey, tuple[Route, ...]] = {}  # each live stack's routes
        self._owners: dict[str, StackKey] = {}  # function name -> its live stack

    def __repr__(self) -> str:
        routes = sum(len(r) for r in self._live.values())
        return f"<DeployService stacks={len(self._live)} routes={routes}>"

    def load(self) -> int:
        """Bring the live stacks' routes into the route table (at start-up)."""
        with self._store.transaction(write=False) as tx:
            live = [
                tx.get_deployment(s.service, s.stage, s.deployment_id) for s in tx.list_stacks()
            ]
        for deployment in live:
            if deployment is not None:
                spec = from_json(deployment.spec)
                self._remember(deployment, spec)
                if self._triggers is not None:
                    self._triggers.reload(spec, _qualifiers(deployment, spec))
        if self._live:  # the route table starts empty
            self._routes.set_routes(self._all_routes())
        return len(self._live)

    # reading

    def stacks(self) -> list[Stack]:
        with self._store.transaction(write=False) as tx:
            return tx.list_stacks()

    def stack(self, service: str, stage: str) -> tuple[Stack, Deployment]:
        with self._store.transaction(write=False) as tx:
            stack = tx.get_stack(service, stage)
            live = tx.get_deployment(service, stage, stack.deployment_id) if stack else None
        if stack is None or live is None:
            raise _no_stack(service, stage)
        return stack, live

    def deployments(self, service: str, stage: str) -> list[Deployment]:
        """Newest first."""
        with self._store.transaction(write=False) as tx:
            if tx.get_stack(service, stage) is None:
                raise _no_stack(service, stage)
            return tx.list_deployments(service, stage)

    def endpoints(self, service: str, stage: str, base_url: str) -> list[tuple[Route, str]]:
        """The stack's live routes with their URLs, as the route table gives them."""
        return [
            (route, url)
            for route, url in self._routes.endpoints(base_url)
            if (route.service, route.stage) == (service, stage)
        ]

    # changing

    def deploy(self, spec: DeploymentSpec) -> Deployment:
        return self._apply(spec, None)

    def rollback(self, service: str, stage: str, deployment_id: int | None = None) -> Deployment:
        """Make an earlier deployment live again (by default the one before the live one)."""
        with self._store.transaction(write=False) as tx:
            stack = tx.get_stack(service, stage)
            if stack is None:
                raise _no_stack(service, stage)
            history = tx.list_deployments(service, stage)
        if deployment_id is None:
            older = [d for d in history if d.id < stack.deployment_id]
            if not older:
                raise ResourceNotFoundException(
                    f"{service}-{stage} has no deployment before {stack.deployment_id} "
                    "to roll back to"
                )
            target = older[0]
        else:
            found = [d for d in history if d.id == deployment_id]
            if not found:
                kept = ", ".join(str(d.id) for d in history)
                raise ResourceNotFoundException(
                    f"deployment {deployment_id} of {service}-{stage} not found "
                    f"(deployments kept: {kept})"
                )
            target = found[0]
        return self._apply(from_json(target.spec), target)

    def remove(self, service: str, stage: str) -> None:
        """The stack's functions (every version and alias), routes and deployments."""
        with self._store.transaction() as tx:
            stack = tx.get_stack(service, stage)
            if stack is None:
                raise _no_stack(service, stage)
            live = tx.get_deployment(service, stage, stack.deployment_id)
            names = [f.name for f in live.functions] if live else []
            for name in names:
                tx.delete_function(name)
            tx.delete_stack(service, stage)
        for name in names:
            self._forget_function(name)
        self._live.pop((service, stage), None)
        self._routes.set_routes(self._all_routes())
        if self._triggers is not None:
            self._triggers.remove(service, stage, names)
        if self._provisioned is not None:
            self._provisioned.changed()

    # applying

    def _apply(self, spec: DeploymentSpec, target: Deployment | None) -> Deployment:
        key = (spec.service, spec.stage)
        # Before the transaction: these read the store through their own transactions.
        trigger_problems = tuple(self._triggers.check(spec)) if self._triggers else ()
        dry_run = False
        try:
            with self._store.transaction() as tx:
                stack = tx.get_stack(*key)
                live = tx.get_deployment(*key, stack.deployment_id) if stack else None
                context = Context(
                    live_functions=tuple(f.name for f in live.functions) if live else (),
                    owners=dict(self._owners),
                    reserved=dict(self._ledger.reserved),
                    account_limit=self._ledger.account_limit,
                    trigger_problems=trigger_problems,
                    provisioned={
                        (c.function_name, c.qualifier): c.requested for c in tx.list_provisioned()
                    },
                )
                checked = plan(spec, context, self._code, tx)
                # The route table refuses conflicts before anything is written. It then holds
                # the new routes, but nothing can be routed before the final swap below:
                # there is no await in between.
                proposed = [r for k, rs in self._live.items() if k != key for r in rs]
                proposed += [r for f in spec.functions for r in f.routes]
                dry_run = True
                self._routes.set_routes(proposed)
                deployment, applied = self._write(tx, checked, live, target)
        except BaseException:
            if dry_run:
                self._routes.set_routes(self._all_routes())
            raise
        self._activate(deployment, spec, applied, checked.removed)
        if self._triggers is not None:
            self._triggers.apply(spec, _qualifiers(deployment, spec), checked.removed)
        return deployment

    def _write(
        self, tx: DeploymentsTx, checked: Plan, live: Deployment | None, target: Deployment | None
    ) -> tuple[Deployment, dict[str, _Applied]]:
        spec = checked.spec
        now = self._clock.time()
        layer_arns = self._publish_layers(tx, checked)
        applied: dict[str, _Applied] = {}
        released: list[DeployedVersion] = []
        had_alias = _provisioned_functions(live)
        for planned in checked.functions:
            f = planned.spec
            wanted = FunctionConfig(
                name=f.name,
                runtime=f.runtime,
                handler=f.handler,
                code_sha256=f.code_sha256,
                code_size=planned.code_size,
                memory_size=f.memory_size,
                timeout=f.timeout,
                environment=dict(f.environment),
                layers=tuple(layer_arns.get(ref, ref) for ref in f.layers),
                description=f.description,
                reserved_concurrency=f.reserved_concurrency,
            )
            latest, changed = _upsert(tx, wanted)
            version: FunctionConfig | None = None
            published = False
            if spec.version_functions or f.provisioned_concurrency:
                preferred = [d.versions.get(f.name) for d in (target, live) if d is not None]
                version, published = _version_for(tx, latest, preferred)
            alias: Alias | None = None
            if f.provisioned_concurrency and version is not None:
                alias = self._provision(tx, f.name, version.version, f.provisioned_concurrency)
            elif f.name in had_alias:
                tx.delete_alias(f.name, DEPLOY_ALIAS)  # and its configuration
            applied[f.name] = _Applied(
                latest=DeployedFunction(latest, planned.code_dir, planned.opt_root),
                changed=changed,
                version=DeployedFunction(version, planned.code_dir, planned.opt_root)
                if version is not None and published
                else None,
                alias=alias,
                alias_removed=alias is None and f.name in had_alias,
            )
            released.append(
                DeployedVersion(f.key, f.name, version.version if version else LATEST, changed)
            )
        for name in checked.removed:
            tx.delete_function(name)
        functions = tuple(released)
        if target is None:
            deployment = tx.add_deployment(
                service=spec.service,
                stage=spec.stage,
                region=spec.region,
                created=now,
                spec=to_json(spec),
                functions=functions,
            )
        else:
            tx.set_deployment_functions(target.id, functions)
            deployment = dataclasses.replace(target, functions=functions)
        tx.set_live(spec.service, spec.stage, deployment.id, now)
        tx.prune_deployments(spec.service, spec.stage, KEEP_DEPLOYMENTS)
        return deployment, applied

    def _provision(
        self, tx: DeploymentsTx, name: str, version: str, requested: int
    ) -> Alias | None:
        """Point the `provisioned` alias at `version` and give it `requested` executions.
        Returns the alias when it was created or re-pointed."""
        current = tx.get_alias(name, DEPLOY_ALIAS)
        others = {
            c.qualifier: c.requested
            for c in tx.list_provisioned(name)
            if c.qualifier != DEPLOY_ALIAS
        }
        alias = None
        if current is None or current.function_version != version or current.routing:
            alias = Alias(
                function_name=name,
                name=DEPLOY_ALIAS,
                function_version=version,
                description=current.description if current else "",
                revision_id=str(uuid.uuid4()),
            )
            check_target(name, DEPLOY_ALIAS, [alias], others)
            tx.put_alias(alias)
        config = tx.get_provisioned(name, DEPLOY_ALIAS)
        if config is None or config.requested != requested:
            tx.put_provisioned(ProvisionedConfig(name, DEPLOY_ALIAS, requested, now_iso()))
        return alias

    def _publish_layers(self, tx: DeploymentsTx, checked: Plan) -> dict[str, str]:
        """`layer:<key>` -> the layer version ARN; a new version only for changed layers."""
        arns: dict[str, str] = {}
        for layer in checked.spec.layers:
            newest = tx.latest_layer_version(layer.name)
            same = newest is not None and (
                newest.code_sha256,
                newest.description,
                newest.compatible_runtimes,
            ) == (layer.code_sha256, layer.description, tuple(layer.compatible_runtimes))
            if newest is None or not same:
                newest = tx.publish_layer_version(
                    LayerVersion(
                        name=layer.name,
                        version=0,
                        code_sha256=layer.code_sha256,
                        code_size=checked.layer_sizes[layer.key],
                        description=layer.description,
                        compatible_runtimes=tuple(layer.compatible_runtimes),
                        created_date=now_iso(),
                    )
                )
            arns[LAYER_REF + layer.key] = self._account.layer_arn(newest.name, newest.version)
        return arns

    def _activate(
        self,
        deployment: Deployment,
        spec: DeploymentSpec,
        applied: dict[str, _Applied],
        removed: tuple[str, ...],
    ) -> None:
        for name, done in applied.items():
            self._registry.put(done.latest)
            if done.version is not None:
                self._registry.put(done.version)
            if done.alias is not None:
                self._registry.put_alias(done.alias)
            elif done.alias_removed:
                self._registry.remove_alias(name, DEPLOY_ALIAS)
            self._ledger.set_reservation(name, done.latest.config.reserved_concurrency)
            if done.changed:
                self._pool.retire_function(name)
        for name in removed:
            self._forget_function(name)
        self._remember(deployment, spec)
        self._routes.set_routes(self._all_routes())
        if self._provisioned is not None:
            self._provisioned.changed()

    def _remember(self, deployment: Deployment, spec: DeploymentSpec) -> None:
        key = (spec.service, spec.stage)
        for name in [n for n, owner in self._owners.items() if owner == key]:
            del self._owners[name]
        routes: list[Route] = []
        qualifiers = _qualifiers(deployment, spec)
        for f in spec.functions:
            self._owners[f.name] = key
            qualifier = qualifiers.get(f.name)
            routes += [dataclasses.replace(r, qualifier=qualifier) for r in f.routes]
        self._live[key] = tuple(routes)

    def _forget_function(self, name: str) -> None:
        self._registry.remove(name)
        self._ledger.set_reservation(name, None)
        self._pool.retire_function(name)
        self._owners.pop(name, None)

    def _all_routes(self) -> list[Route]:
        return [route for routes in self._live.values() for route in routes]


def _upsert(tx: DeploymentsTx, wanted: FunctionConfig) -> tuple[FunctionConfig, bool]:
    """Write `$LATEST` when its code or configuration differs (a new revision), or only its
    reserved concurrency (not versioned, so no new revision). True when it changed."""
    current = tx.get_function(wanted.name)
    fields = ("code_sha256", "code_size", *CONFIG_FIELDS)
    if current is None or any(getattr(current, f) != getattr(wanted, f) for f in fields):
        config = dataclasses.replace(wanted, revision_id=str(uuid.uuid4()), last_modified=now_iso())
        tx.put_function(config)
        return config, True
    if current.reserved_concurrency != wanted.reserved_concurrency:
        current = dataclasses.replace(current, reserved_concurrency=wanted.reserved_concurrency)
        tx.put_function(current)
    return current, False


def _version_for(
    tx: DeploymentsTx, latest: FunctionConfig, preferred: list[str | None]
) -> tuple[FunctionConfig, bool]:
    """The version to make live: one the deployment (or the one it replaces) recorded, if it
    still exists with this code and configuration; else PublishVersion's rule."""
    for version in preferred:
        if version is None or version == LATEST:
            continue
        existing = tx.get_function(latest.name, version)
        if existing is not None and unchanged(existing, latest):
            return existing, False
    return publish(tx, latest)


def _qualifiers(deployment: Deployment, spec: DeploymentSpec) -> dict[str, str]:
    """What each function's routes and events invoke: the `provisioned` alias of a function
    with provisioned concurrency (as Serverless does), else the version the deployment made
    live (`$LATEST`, given as no qualifier, without versioning)."""
    versions = deployment.versions
    qualifiers: dict[str, str] = {}
    for f in spec.functions:
        version = versions.get(f.name, LATEST)
        if f.provisioned_concurrency and version != LATEST:
            qualifiers[f.name] = DEPLOY_ALIAS
        elif spec.version_functions and version != LATEST:
            qualifiers[f.name] = version
    return qualifiers


def _provisioned_functions(deployment: Deployment | None) -> set[str]:
    """Functions to which `deployment` gave provisioned concurrency (a `provisioned` alias)."""
    if deployment is None:
        return set()
    try:
        spec = from_json(deployment.spec)
    except (KeyError, TypeError, ValueError):
        return set()
    return {f.name for f in spec.functions if f.provisioned_concurrency}


def _no_stack(service: str, stage: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Stack not found: service {service} stage {stage}")
