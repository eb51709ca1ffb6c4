"""`lamina deploy`: the whole service/stage in one step, as `sls deploy` does.

1. Resolve serverless.yml's variables and validate it: every problem is reported at once,
   and nothing is packaged or sent while there is one. A failed deploy changes nothing.
2. Package: one zip for the service, or one per function (`individually`), prebuilt
   `artifact`s, and the file's own layers.
3. Upload only the bundles the server lacks (`HEAD`, then `PUT /lamina/v1/bundles/{sha}`).
4. Post one `DeploymentSpec`; the server applies all of it or nothing.

`lamina deploy function -f KEY` updates one function's code and configuration through the
Lambda API (`sls deploy function`); `lamina deploy list` shows the stack's deployments.
Any other `--name value` is an option for `${opt:name}`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from lamina.cli.client import ControlClient, FunctionConfiguration
from lamina.cli.commands.info import print_stack, when
from lamina.cli.package import (
    Artifact,
    Packages,
    PackagingError,
    package_function,
    package_service,
)
from lamina.cli.project import (
    ConfigOption,
    Identity,
    Options,
    Project,
    RegionOption,
    StageOption,
    extra_options,
    load_identity,
    load_project,
)
from lamina.cli.shared import CliError, CliState, human_size, reports_errors, state_of
from lamina.wire import deployment as wire
from lamina.wire.serverless import FunctionSpec, ServerlessConfigError, Service

ACTIONS = ("function", "list")
# Below this an upload is over before a progress bar would have drawn.
PROGRESS_FROM = 1024 * 1024


def deployment_spec(service: Service, packages: Packages) -> wire.DeploymentSpec:
    """The document the server applies: the service with its bundles' SHA-256 (hex)."""
    functions = tuple(
        wire.FunctionSpec(
            key=spec.key,
            name=spec.name,
            runtime=spec.runtime,
            handler=spec.handler,
            code_sha256=packages.functions[spec.key].sha256_hex,
            memory_size=spec.memory_size,
            timeout=spec.timeout,
            environment=dict(spec.environment),
            layers=spec.layers,
            description=spec.description,
            reserved_concurrency=spec.reserved_concurrency,
            provisioned_concurrency=spec.provisioned_concurrency,
            routes=spec.routes,
            schedules=spec.schedules,
            sqs=spec.sqs,
            async_config=spec.async_config,
        )
        for spec in service.functions.values()
    )
    layers = tuple(
        wire.LayerSpec(
            key=layer.key,
            name=layer.name,
            code_sha256=packages.layers[layer.key].sha256_hex,
            description=layer.description,
            compatible_runtimes=layer.compatible_runtimes,
        )
        for layer in service.layers.values()
    )
    return wire.DeploymentSpec(
        service=service.name,
        stage=service.stage,
        region=service.region,
        functions=functions,
        layers=layers,
        version_functions=service.version_functions,
        queues=service.queues,
    )


def upload_bundles(state: CliState, client: ControlClient, bundles: Sequence[Artifact]) -> int:
    """Upload the bundles the server lacks; returns how many were sent."""
    missing = [b for b in bundles if not client.has_bundle(b.sha256_hex)]
    for bundle in missing:
        name = bundle.path.name if bundle.path else bundle.sha256_hex[:12]
        if bundle.size < PROGRESS_FROM or not state.err.is_terminal:
            client.put_bundle(bundle.sha256_hex, bundle.data)
            continue
        with Progress(
            TextColumn("Uploading {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=state.err,
            transient=True,
        ) as progress:
            task = progress.add_task(name, total=bundle.size)

            def advance(sent: int, task: TaskID = task, progress: Progress = progress) -> None:
                progress.advance(task, sent)

            client.put_bundle(bundle.sha256_hex, bundle.data, advance)
    return len(missing)


def _split(args: Sequence[str]) -> tuple[str | None, list[str]]:
    """The action word (`function`, `list`) among the arguments, and the other options."""
    action: str | None = None
    rest: list[str] = []
    index = 0
    while index < len(args):
        token = args[index]
        if token.startswith("-"):
            rest.append(token)
            value = args[index + 1] if index + 1 < len(args) else None
            # `--foo bar` carries a value; `--verbose list` does not: list is the action.
            takes_value = value is not None and not value.startswith("-") and "=" not in token
            if takes_value and value not in ACTIONS:
                rest.append(str(value))
                index += 1
        elif token in ACTIONS and action is None:
            action = token
        else:
            raise CliError(
                f"unexpected argument {token!r} (lamina deploy [function -f KEY | list])"
            )
        index += 1
    return action, rest


def _report(state: CliState, service: Service) -> None:
    for warning in service.warnings:
        state.warn(warning)
    for note in service.notes:
        state.err.print(Text(f"note: {note}", style="dim"), soft_wrap=True)


def _packages(project: Project) -> Packages:
    try:
        return package_service(project.root, project.service, project.config)
    except PackagingError as exc:
        raise CliError(f"{project.config.name}: {exc}") from None
    except OSError as exc:
        raise CliError(f"cannot package {project.root}: {exc.strerror or exc}") from None


def _deploy_service(state: CliState, config: Path | None, options: Options) -> None:
    started = time.monotonic()
    client = state.client()
    project = load_project(config, options, client)
    service = project.service
    _report(state, service)
    if service.blockers:
        raise ServerlessConfigError(list(service.blockers))
    state.out.print(
        Text(f"Deploying {service.name} to stage {service.stage} ({service.region})"),
        soft_wrap=True,
    )
    packages = _packages(project)
    for bundle in packages.bundles():
        shown = bundle.path.relative_to(project.root) if bundle.path else bundle.sha256_hex
        files = f"{bundle.files} file" + ("" if bundle.files == 1 else "s")
        state.out.print(
            Text(f"Packaged {shown} ({files}, {human_size(bundle.size)})", "dim"), soft_wrap=True
        )
    sent = upload_bundles(state, client, packages.bundles())
    if sent:
        state.out.print(Text(f"Uploaded {sent} of {len(packages.bundles())} bundles", "dim"))
    result = client.create_deployment(wire.to_json(deployment_spec(service, packages)))
    for warning in result.get("warnings") or []:
        state.warn(str(warning))
    elapsed = time.monotonic() - started
    state.out.print(
        Text(f"✔ Service deployed to stage {service.stage} ({elapsed:.1f}s)", "green"),
        soft_wrap=True,
    )
    state.out.print()
    answer: dict[str, Any] = dict(result)
    if not answer.get("functions"):  # an answer without them still says what was deployed
        answer["functions"] = [{"key": f.key, "name": f.name} for f in service.functions.values()]
    identity = Identity(service.name, service.stage, service.region)
    print_stack(state, answer, identity, changes=True)


def _remote_settings(remote: FunctionConfiguration) -> dict[str, object]:
    # `or`: AWS omits (or nulls) empty fields, which must compare equal to empty values.
    return {
        "Runtime": remote.get("Runtime") or "",
        "Handler": remote.get("Handler") or "",
        "MemorySize": remote.get("MemorySize") or 0,
        "Timeout": remote.get("Timeout") or 0,
        "Environment": {"Variables": (remote.get("Environment") or {}).get("Variables") or {}},
        "Description": remote.get("Description") or "",
    }


def _wanted_settings(spec: FunctionSpec) -> dict[str, object]:
    # Layers are left out: `layer:<key>` references only a deployment can resolve.
    return {
        "Runtime": spec.runtime,
        "Handler": spec.handler,
        "MemorySize": spec.memory_size,
        "Timeout": spec.timeout,
        "Environment": {"Variables": dict(spec.environment)},
        "Description": spec.description,
    }


def _deploy_function(
    state: CliState, config: Path | None, options: Options, key: str | None
) -> None:
    if not key:
        raise CliError("lamina deploy function needs the function's key: -f KEY")
    started = time.monotonic()
    client = state.client()
    project = load_project(config, options, client)
    service = project.service
    spec = service.functions.get(key)
    if spec is None:
        known = ", ".join(service.functions) or "none"
        raise CliError(f"function {key!r} is not in {project.config.name} (its functions: {known})")
    _report(state, service)
    blockers = [b for b in service.blockers if f": functions.{key}:" in b]
    if blockers:
        raise ServerlessConfigError(blockers)
    try:
        artifact = package_function(project.root, service, project.config, spec)
    except PackagingError as exc:
        raise CliError(f"{project.config.name}: {exc}") from None
    existing = client.find_function(spec.name)
    if existing is None:
        raise CliError(f"function {spec.name} is not deployed yet; run `lamina deploy` first")
    remote = existing["Configuration"]
    if remote.get("CodeSha256") == artifact.sha256:
        state.out.print("Code did not change. Function deployment skipped.", markup=False)
    else:
        client.update_function_code(spec.name, artifact.base64)
        elapsed = time.monotonic() - started
        state.out.print(Text(f"✔ Function code deployed ({elapsed:.1f}s)", "green"))
    current = _remote_settings(remote)
    changes = {k: v for k, v in _wanted_settings(spec).items() if current.get(k) != v}
    if not changes:
        state.out.print("Configuration did not change. Configuration update skipped.", markup=False)
        return
    client.update_function_fields(spec.name, changes)
    state.out.print(
        Text(f"✔ Function configuration updated ({', '.join(sorted(changes))})", "green"),
        soft_wrap=True,
    )


def _deploy_list(state: CliState, config: Path | None, options: Options) -> None:
    client = state.client()
    identity = load_identity(config, options, client)
    deployments = client.list_deployments(identity.service, identity.stage)
    if not deployments:
        state.err.print(
            Text(f"No deployments of {identity.service} (stage {identity.stage})."),
            soft_wrap=True,
        )
        return
    state.out.print(
        Text(f"Deployments of {identity.service} (stage {identity.stage}):"), soft_wrap=True
    )
    for deployment in deployments:
        functions = ", ".join(_short(f) for f in deployment.get("functions") or [])
        line = f"  {deployment.get('id', '?')}  {when(deployment.get('created'))}  {functions}"
        state.out.print(Text(line.rstrip()), soft_wrap=True)


def _short(function: Mapping[str, Any]) -> str:
    name = str(function.get("key") or function.get("name") or "?")
    version = function.get("version")
    return f"{name} (v{version})" if version not in (None, "", "$LATEST") else name


@reports_errors
def deploy(
    ctx: typer.Context,
    stage: StageOption = None,
    region: RegionOption = None,
    config: ConfigOption = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="A parameter for ${param:key}, as key=value; repeatable"),
    ] = None,
    function: Annotated[
        str | None,
        typer.Option("--function", "-f", help="With `deploy function`: the function's key"),
    ] = None,
) -> None:
    """Deploy the service in the current directory.

    `lamina deploy function -f KEY` updates one function's code; `lamina deploy list` shows
    the deployments. Other `--name value` options are readable as ${opt:name}.
    """
    state = state_of(ctx)
    action, rest = _split(ctx.args)
    options = Options(
        stage=stage, region=region, params=tuple(param or ()), extra=extra_options(rest)
    )
    if action == "function":
        _deploy_function(state, config, options, function)
    elif action == "list":
        _deploy_list(state, config, options)
    else:
        if function is not None:
            raise CliError("-f names a function for `lamina deploy function -f KEY`")
        _deploy_service(state, config, options)
