"""Checking a deployment before anything is written, and reporting every problem at once.

`plan` runs inside the deployment's transaction (it reads layer versions and who owns which
function) but writes nothing to the store. It also builds each function's /opt view, so
that once the transaction commits, making the deployment live cannot fail.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lamina.core import validation
from lamina.core.errors import InvalidParameterValueException
from lamina.core.models import LayerVersion
from lamina.core.provisioned import DEPLOY_ALIAS, MIN_UNRESERVED
from lamina.core.runtimes import builtin_layer_name
from lamina.wire.deployment import DeploymentSpec, FunctionSpec

STACK_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
LAYER_REF = "layer:"  # a function's reference to a layer of its own service: layer:<key>


class CodeBundles(Protocol):
    """The content-addressed bundle store (`lamina.store.blobs.CodeStore`)."""

    def put(self, zip_bytes: bytes) -> tuple[str, int]: ...
    def has(self, sha: str) -> bool: ...
    def code_dir(self, sha: str) -> Path: ...
    def zip_path(self, sha: str) -> Path: ...
    def opt_view(self, layer_shas: Sequence[str]) -> Path | None: ...


class LayerLookup(Protocol):
    def get_layer_version(self, name: str, version: int) -> LayerVersion | None: ...


@dataclass(frozen=True, slots=True)
class PlannedFunction:
    spec: FunctionSpec
    code_size: int
    code_dir: Path
    opt_root: Path | None


@dataclass(frozen=True, slots=True)
class Plan:
    spec: DeploymentSpec
    functions: tuple[PlannedFunction, ...]
    layer_sizes: dict[str, int]  # layer key -> size of its zip
    removed: tuple[str, ...]  # functions of the live deployment the spec no longer has


@dataclass(frozen=True, slots=True)
class Context:
    """What the checks need to know beyond the spec."""

    live_functions: tuple[str, ...]  # of the stack's live deployment
    owners: Mapping[str, tuple[str, str]]  # function name -> (service, stage) of live stacks
    reserved: Mapping[str, int]  # reserved concurrency of every function now
    account_limit: int
    # Found by checks that need services (schedules, queues: `services.triggers`).
    trigger_problems: tuple[str, ...] = ()
    # provisioned concurrency configured now: (function name, qualifier) -> executions
    provisioned: Mapping[tuple[str, str], int] = dataclasses.field(default_factory=dict)


def parse_layer_arn(arn: str) -> tuple[str, int] | None:
    """`arn:aws:lambda:<region>:<account>:layer:<name>:<version>` -> (name, version)."""
    parts = arn.split(":")
    if len(parts) != 8 or parts[:3] != ["arn", "aws", "lambda"] or parts[5] != "layer":
        return None
    return (parts[6], int(parts[7])) if parts[7].isdigit() else None


def plan(spec: DeploymentSpec, context: Context, code: CodeBundles, layers: LayerLookup) -> Plan:
    """Check everything; raise one InvalidParameterValueException naming every problem."""
    problems: list[str] = []
    for field, value in (("service", spec.service), ("stage", spec.stage)):
        if not isinstance(value, str) or not STACK_PART.fullmatch(value):
            problems.append(
                f"{field} = {value!r}: must be 1-128 letters, digits, '-' and '_', "
                "starting with a letter or digit"
            )
    layer_sizes = _check_layers(spec, code, problems)
    _check_unique(spec, problems)
    planned = [_check_function(f, spec, context, code, layers, problems) for f in spec.functions]
    _check_reserved(spec, context, problems)
    _check_provisioned(spec, context, problems)
    problems += context.trigger_problems
    if problems:
        raise InvalidParameterValueException(
            f"deployment of {spec.service}-{spec.stage} refused: " + "; ".join(problems)
        )
    names = {f.name for f in spec.functions}
    return Plan(
        spec=spec,
        functions=tuple(p for p in planned if p is not None),
        layer_sizes=layer_sizes,
        removed=tuple(n for n in context.live_functions if n not in names),
    )


def _check(
    problems: list[str], where: str, check: Callable[[object], object], value: object
) -> None:
    try:
        check(value)
    except InvalidParameterValueException as exc:
        problems.append(f"{where}: {exc.message}")
    except (TypeError, AttributeError):
        problems.append(f"{where}: {value!r} has the wrong type")


def _bundle_size(code: CodeBundles, sha: object, where: str, problems: list[str]) -> int | None:
    try:
        if isinstance(sha, str) and code.has(sha):
            return code.zip_path(sha).stat().st_size
    except ValueError:
        pass  # not a digest at all: reported below like any missing bundle
    problems.append(
        f"{where}.code_sha256 = {sha!r}: no such code bundle "
        "(upload it first: PUT /lamina/v1/bundles/<sha256>)"
    )
    return None


def _check_layers(spec: DeploymentSpec, code: CodeBundles, problems: list[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for layer in spec.layers:
        where = f"layers.{layer.key}"
        if layer.key in sizes:
            problems.append(f"{where}: the key is used twice")
        _check(problems, where, validation.layer_name, layer.name)  # type: ignore[arg-type]
        size = _bundle_size(code, layer.code_sha256, where, problems)
        if size is not None:
            sizes[layer.key] = size
    return sizes


def _check_unique(spec: DeploymentSpec, problems: list[str]) -> None:
    keys: set[str] = set()
    names: set[str] = set()
    for f in spec.functions:
        if f.key in keys:
            problems.append(f"functions.{f.key}: the key is used twice")
        if f.name in names:
            problems.append(f"functions.{f.key}: function name {f.name!r} is used twice")
        keys.add(f.key)
        names.add(f.name)


def _check_function(
    f: FunctionSpec,
    spec: DeploymentSpec,
    context: Context,
    code: CodeBundles,
    layers: LayerLookup,
    problems: list[str],
) -> PlannedFunction | None:
    where = f"functions.{f.key}"
    before = len(problems)
    checks: list[tuple[Callable[..., object], object]] = [
        (validation.function_name, f.name),
        (validation.runtime, f.runtime),
        (validation.handler, f.handler),
        (validation.memory_size, f.memory_size),
        (validation.timeout, f.timeout),
        (validation.environment, f.environment),
        (validation.layers, f.layers),
        (_description, f.description),
    ]
    for check, value in checks:
        _check(problems, where, check, value)
    owner = context.owners.get(f.name)
    if owner is not None and owner != (spec.service, spec.stage):
        problems.append(
            f"{where}: function {f.name!r} belongs to service {owner[0]} stage {owner[1]}"
        )
    for route in f.routes:
        if (route.service, route.stage, route.function_name) != (spec.service, spec.stage, f.name):
            problems.append(
                f"{where}: route {route.method} {route.path} is for "
                f"{route.service}/{route.stage}/{route.function_name}, "
                f"not {spec.service}/{spec.stage}/{f.name}"
            )
    size = _bundle_size(code, f.code_sha256, where, problems)
    shas = _layer_shas(f, spec, layers, where, problems)
    if len(problems) > before or size is None or shas is None:
        return None
    return PlannedFunction(f, size, code.code_dir(f.code_sha256), code.opt_view(shas))


def _layer_shas(
    f: FunctionSpec, spec: DeploymentSpec, layers: LayerLookup, where: str, problems: list[str]
) -> list[str] | None:
    own = {layer.key: layer for layer in spec.layers}
    shas: list[str] = []
    for ref in f.layers if isinstance(f.layers, tuple | list) else ():
        if not isinstance(ref, str):
            return None  # reported by validation.layers
        if ref.startswith(LAYER_REF):
            layer = own.get(ref.removeprefix(LAYER_REF))
            if layer is None:
                problems.append(f"{where}.layers: {ref!r} is not a layer of this service")
                return None
            shas.append(layer.code_sha256)
            continue
        if builtin_layer_name(ref) is not None:
            continue  # a built-in runtime (Bref's layers): nothing to merge into /opt
        parsed = parse_layer_arn(ref)
        found = layers.get_layer_version(*parsed) if parsed else None
        if found is None:
            problems.append(f"{where}.layers: layer version {ref!r} does not exist")
            return None
        shas.append(found.code_sha256)
    return shas


def _check_reserved(spec: DeploymentSpec, context: Context, problems: list[str]) -> None:
    """Reservations of this stack must fit beside everyone else's, keeping 100 unreserved."""
    mine = {f.name for f in spec.functions} | set(context.live_functions)
    others = {name: v for name, v in context.reserved.items() if name not in mine}
    # Provisioned concurrency of other functions without a reservation is theirs too.
    carved = sum(
        n for (name, _), n in context.provisioned.items() if name not in mine and name not in others
    )
    available = context.account_limit - sum(others.values()) - carved
    for f in spec.functions:
        if f.reserved_concurrency is None:
            continue
        before = len(problems)
        _check(
            problems,
            f"functions.{f.key}",
            functools.partial(_reserved, limit=available),
            f.reserved_concurrency,
        )
        if len(problems) == before:
            available -= f.reserved_concurrency


def _check_provisioned(spec: DeploymentSpec, context: Context, problems: list[str]) -> None:
    """`provisionedConcurrency: N` (the `provisioned` alias's configuration, as the Serverless
    Framework makes it) must fit in the function's reservation, or leave the account's
    unreserved pool at least 100, counting every other configuration there is."""
    names = {f.name for f in spec.functions}
    mine = names | set(context.live_functions)
    reserved = {n: v for n, v in context.reserved.items() if n not in mine}
    for f in spec.functions:
        if isinstance(f.reserved_concurrency, int):
            reserved[f.name] = f.reserved_concurrency
    totals: dict[str, int] = {}
    for (name, qualifier), n in context.provisioned.items():
        # This deployment replaces the alias's configuration; removed functions lose theirs.
        if name in mine and (qualifier == DEPLOY_ALIAS or name not in names):
            continue
        totals[name] = totals.get(name, 0) + n
    asking: list[FunctionSpec] = []
    for f in spec.functions:
        value = f.provisioned_concurrency
        if value is None or value == 0:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.append(
                f"functions.{f.key}.provisionedConcurrency = {value!r}: must be a whole "
                "number (0 for none)"
            )
            continue
        asking.append(f)
        totals[f.name] = totals.get(f.name, 0) + value
    for f in asking:
        limit = reserved.get(f.name)
        if limit is not None and totals[f.name] > limit:
            others = totals[f.name] - (f.provisioned_concurrency or 0)
            problems.append(
                f"functions.{f.key}.provisionedConcurrency = {f.provisioned_concurrency}: "
                f"must not exceed reservedConcurrency ({limit})"
                + (f" less what its other versions and aliases have ({others})" if others else "")
            )
    unreserved = [f for f in asking if f.name not in reserved]
    if unreserved:
        carved = sum(n for name, n in totals.items() if name not in reserved)
        left = context.account_limit - sum(reserved.values()) - carved
        if left < MIN_UNRESERVED:
            keys = ", ".join(f"functions.{f.key}.provisionedConcurrency" for f in unreserved)
            problems.append(
                f"{keys}: would leave {left} of the account's {context.account_limit} "
                f"unreserved concurrency, below its minimum of {MIN_UNRESERVED} "
                "(set reservedConcurrency, or ask for less)"
            )


def _reserved(value: object, limit: int) -> int:
    return validation.reserved_concurrency(value, limit)


def _description(value: object) -> str:
    if not isinstance(value, str) or len(value) > 256:
        raise InvalidParameterValueException(
            f"Description = {value!r}: must be a string of at most 256 characters"
        )
    return value
