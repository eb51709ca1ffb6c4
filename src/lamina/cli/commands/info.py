"""`lamina info`: what is deployed for the service/stage of ./serverless.yml (`sls info`):
its endpoints (`GET - http://...`) and functions, from `GET /lamina/v1/stacks/{service}/{stage}`.

`print_stack` renders a stack or a deployment the same way for `deploy` and `rollback`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import typer
from rich.text import Text

from lamina.cli.project import (
    ConfigOption,
    Identity,
    Options,
    RegionOption,
    StageOption,
    load_identity,
)
from lamina.cli.shared import CliState, reports_errors, state_of


def when(created: object) -> str:
    """A deployment's time: epoch seconds as UTC, or the server's text as it is."""
    if isinstance(created, int | float) and not isinstance(created, bool):
        return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(created or "")


def _deployment_id(stack: Mapping[str, Any]) -> object:
    deployment = stack.get("deployment")
    if isinstance(deployment, Mapping):
        return deployment.get("id")
    return deployment if deployment is not None else stack.get("id")


def endpoint_line(endpoint: Mapping[str, Any]) -> str:
    """`GET - http://...`, as `sls deploy` prints an endpoint."""
    method = str(endpoint.get("method") or "ANY")
    where = endpoint.get("url") or endpoint.get("path") or ""
    kind = endpoint.get("kind")
    suffix = " (ALB)" if kind == "alb" else ""
    return f"  {method} - {where}{suffix}"


def function_line(function: Mapping[str, Any], *, changes: bool = False) -> str:
    key = function.get("key") or function.get("name") or "?"
    name = function.get("name") or key
    details: list[str] = []
    if changes and function.get("changed") is False:
        details.append("unchanged")
    version = function.get("version")
    if version not in (None, "", "$LATEST"):
        details.append(f"version {version}")
    shown = f" ({', '.join(details)})" if details else ""
    return f"  {key}: {name}{shown}"


def print_stack(
    state: CliState, data: Mapping[str, Any], identity: Identity, *, changes: bool = False
) -> None:
    """Service, stage, region, endpoints and functions of a stack or deployment answer;
    with `changes`, which functions the deployment left unchanged."""
    stack: Mapping[str, Any] = data.get("stack") or data.get("deployment") or data
    lines = [
        f"service: {stack.get('service') or identity.service}",
        f"stage: {stack.get('stage') or identity.stage}",
        f"region: {stack.get('region') or identity.region}",
        f"stack: {identity.stack}",
    ]
    deployment = _deployment_id(stack)
    if deployment is not None:
        created = when(stack.get("created"))
        lines.append(f"deployment: {deployment}" + (f" ({created})" if created else ""))
    endpoints = [e for e in stack.get("endpoints") or [] if isinstance(e, Mapping)]
    lines.append("endpoints:" if endpoints else "endpoints: none")
    lines.extend(endpoint_line(e) for e in endpoints)
    functions = [f for f in stack.get("functions") or [] if isinstance(f, Mapping)]
    lines.append("functions:" if functions else "functions: none")
    lines.extend(function_line(f, changes=changes) for f in functions)
    layers = [layer for layer in stack.get("layers") or [] if isinstance(layer, Mapping)]
    if layers:
        lines.append("layers:")
        for layer in layers:
            arn = layer.get("arn") or layer.get("name") or ""
            lines.append(f"  {layer.get('key') or layer.get('name')}: {arn}")
    for line in lines:
        state.out.print(Text(line), soft_wrap=True)


@reports_errors
def info(
    ctx: typer.Context,
    stage: StageOption = None,
    region: RegionOption = None,
    config: ConfigOption = None,
) -> None:
    """Show what is deployed for this service and stage."""
    state = state_of(ctx)
    client = state.client()
    identity = load_identity(config, Options(stage=stage, region=region), client)
    data = client.get_stack(identity.service, identity.stage)
    print_stack(state, data, identity)
