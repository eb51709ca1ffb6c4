"""`lamina deploy`: package the service and create or update each of its functions.

Minimal for now: one zip for the whole service, functions applied one after the other.
Code whose `CodeSha256` matches is not uploaded again, and configuration is only sent
when it differs, so a deploy of an unchanged service changes nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.text import Text

from lamina.cli.client import ControlClient, FunctionConfiguration, FunctionSettings
from lamina.cli.package import Artifact, package_service
from lamina.cli.project import load_service
from lamina.cli.shared import CliError, human_size, reports_errors, state_of
from lamina.wire.serverless import FunctionSpec


def function_settings(spec: FunctionSpec) -> FunctionSettings:
    return {
        "Runtime": spec.runtime,
        "Handler": spec.handler,
        "MemorySize": spec.memory_size,
        "Timeout": spec.timeout,
        "Environment": {"Variables": dict(spec.environment)},
        "Layers": list(spec.layers),
        "Description": spec.description,
    }


def _remote_settings(remote: FunctionConfiguration) -> FunctionSettings:
    # `or`: AWS omits (or nulls) empty fields, which must compare equal to empty values.
    return {
        "Runtime": remote.get("Runtime") or "",
        "Handler": remote.get("Handler") or "",
        "MemorySize": remote.get("MemorySize") or 0,
        "Timeout": remote.get("Timeout") or 0,
        "Environment": {"Variables": (remote.get("Environment") or {}).get("Variables") or {}},
        "Layers": [layer.get("Arn", "") for layer in remote.get("Layers") or []],
        "Description": remote.get("Description") or "",
    }


def deploy_function(client: ControlClient, spec: FunctionSpec, artifact: Artifact) -> str:
    """Create or update one function; returns what was done, for the summary."""
    wanted = function_settings(spec)
    existing = client.find_function(spec.name)
    if existing is None:
        client.create_function(spec.name, artifact.base64, wanted)
        return "created"
    remote = existing["Configuration"]
    done: list[str] = []
    # Code first, then configuration, the order `sls deploy function` uses.
    if remote.get("CodeSha256") == artifact.sha256:
        done.append("code unchanged")
    else:
        client.update_function_code(spec.name, artifact.base64)
        done.append("code updated")
    if _remote_settings(remote) == wanted:
        done.append("configuration unchanged")
    else:
        client.update_function_configuration(spec.name, wanted)
        done.append("configuration updated")
    return ", ".join(done)


@reports_errors
def deploy(
    ctx: typer.Context,
    stage: Annotated[
        str | None,
        typer.Option("--stage", "-s", help="Stage (default: provider.stage, else dev)"),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", "-r", help="Region (default: provider.region, else us-east-1)"),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Service file (default: ./serverless.yml)"),
    ] = None,
) -> None:
    """Deploy the service in the current directory."""
    state = state_of(ctx)
    started = time.monotonic()
    config_file, service = load_service(config, stage=stage, region=region)
    for warning in service.warnings:
        state.warn(warning)
    state.out.print(
        Text(f"Deploying {service.name} to stage {service.stage} ({service.region})"),
        soft_wrap=True,
    )

    root = config_file.parent
    try:
        artifact = package_service(root, service.name, config_file)
    except OSError as exc:
        raise CliError(f"cannot package {root}: {exc.strerror or exc}") from None
    shown = artifact.path.relative_to(root) if artifact.path else "package"
    files = f"{artifact.files} file" + ("" if artifact.files == 1 else "s")
    state.out.print(
        Text(f"Packaged {shown} ({files}, {human_size(artifact.size)})", "dim"),
        soft_wrap=True,
    )

    client = state.client()
    outcomes: dict[str, str] = {}
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=state.err,
        transient=True,
        disable=not state.err.is_terminal,
    ) as progress:
        task = progress.add_task("Deploying", total=len(service.functions))
        for spec in service.functions.values():
            progress.update(task, description=f"Deploying {spec.key}")
            outcomes[spec.key] = deploy_function(client, spec, artifact)
            progress.advance(task)

    for key, outcome in outcomes.items():
        state.out.print(Text(f"  {key}: {outcome}", "dim"), soft_wrap=True)
    elapsed = time.monotonic() - started
    state.out.print(
        Text(f"✔ Service deployed to stage {service.stage} ({elapsed:.1f}s)", "green"),
        soft_wrap=True,
    )
    state.out.print()
    state.out.print(
        Text(f"service: {service.name}\nstage: {service.stage}\nregion: {service.region}"),
        soft_wrap=True,
    )
    if not service.functions:
        state.out.print("functions: none", markup=False)
        return
    state.out.print("functions:", markup=False)
    for spec in service.functions.values():
        state.out.print(
            Text(f"  {spec.key}: {spec.name} ({human_size(artifact.size)})"), soft_wrap=True
        )
