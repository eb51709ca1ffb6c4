"""`lamina invoke`: call a function through the Invoke API and print its result (`sls invoke`)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.json import JSON
from rich.text import Text

from lamina.cli.project import resolve_function_name
from lamina.cli.shared import (
    CliError,
    CliState,
    FunctionOption,
    StageOption,
    reports_errors,
    state_of,
)


class InvocationType(StrEnum):
    RequestResponse = "RequestResponse"
    Event = "Event"
    DryRun = "DryRun"


def _as_json(text: str) -> bytes:
    # As `sls invoke` does: data that is not JSON is sent as a JSON string, since the
    # Invoke API refuses payloads that are not JSON.
    try:
        json.loads(text)
    except ValueError:
        return json.dumps(text).encode()
    return text.encode()


def read_payload(data: str | None, path: Path | None) -> bytes:
    if data is not None and path is not None:
        raise CliError("give the event with either --data or --path, not both")
    if data is not None:
        return _as_json(data)
    if path is None:
        return b"{}"
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the event from {path}: {exc}") from None
    if path.suffix in (".yml", ".yaml"):
        try:
            return json.dumps(yaml.safe_load(text)).encode()
        except (yaml.YAMLError, TypeError) as exc:
            raise CliError(f"{path}: not an event in YAML: {exc}") from None
    return _as_json(text)


def _parsed(payload: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(payload)
    except ValueError:
        return False, None


def _print_payload(state: CliState, payload: bytes, *, failed: bool) -> None:
    if not payload:
        return
    is_json, value = _parsed(payload)
    if not is_json:
        text = payload.decode("utf-8", "replace")
        state.out.print(Text(text, style="red" if failed else ""), soft_wrap=True)
    elif failed:
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
        state.out.print(Text(pretty, style="red"), soft_wrap=True)
    else:
        state.out.print(JSON.from_data(value, ensure_ascii=False), soft_wrap=True)


def _failure(payload: bytes, function_error: str) -> str:
    _, value = _parsed(payload)
    if isinstance(value, dict) and ("errorType" in value or "errorMessage" in value):
        kind = value.get("errorType") or "Error"
        return f"invoked function failed: {kind}: {value.get('errorMessage', '')}"
    return f"invoked function failed ({function_error})"


@reports_errors
def invoke(
    ctx: typer.Context,
    function: FunctionOption,
    stage: StageOption = None,
    qualifier: Annotated[
        str | None, typer.Option("--qualifier", "-q", help="Version or alias to invoke")
    ] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help="The event, as JSON")] = None,
    path: Annotated[
        Path | None,
        typer.Option("--path", "-p", help="File with the event (JSON or YAML); - for stdin"),
    ] = None,
    invocation_type: Annotated[
        InvocationType, typer.Option("--type", "-t", help="How to invoke")
    ] = InvocationType.RequestResponse,
    log: Annotated[
        bool, typer.Option("--log", "-l", help="Print the end of the invocation's log")
    ] = False,
) -> None:
    """Invoke a function and print what it returned."""
    state = state_of(ctx)
    name = resolve_function_name(function, stage)
    payload = read_payload(data, path)
    result = state.client().invoke(
        name,
        payload,
        qualifier=qualifier,
        invocation_type=invocation_type.value,
        log_tail=log and invocation_type is InvocationType.RequestResponse,
    )
    if invocation_type is InvocationType.Event:
        state.out.print(Text(result.request_id or "accepted"), soft_wrap=True)
        return
    if invocation_type is InvocationType.DryRun:
        state.err.print(Text(f"dry run: {name} would be invoked"), soft_wrap=True)
        return
    _print_payload(state, result.payload, failed=result.function_error is not None)
    if log and result.log_tail:
        # To stderr, so that stdout stays the payload alone and can be piped into jq.
        for line in result.log_tail.rstrip("\n").splitlines():
            state.err.print(Text(line, style="dim"), soft_wrap=True)
    if result.function_error is not None:
        raise CliError(_failure(result.payload, result.function_error))
