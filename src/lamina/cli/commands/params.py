"""`lamina params`: the parameter store (SSM Parameter Store) from the command line.

The commands speak the SSM API on the control port, as `aws ssm --endpoint-url` would, so
the CLI sees exactly what boto3 and functions see. `get` prints the value alone on stdout
(for `$(lamina params get ...)`) and what it is on stderr.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from lamina.cli.shared import CliState, reports_errors, state_of

JSON_1_1 = "application/x-amz-json-1.1"
PAGE_SIZE = 50  # DescribeParameters' largest page

params = typer.Typer(
    name="params",
    help="Parameters (SSM Parameter Store): put, get, ls, rm.",
    no_args_is_help=True,
)


class ParameterKind(StrEnum):
    String = "String"
    StringList = "StringList"
    SecureString = "SecureString"


def call(state: CliState, operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """One SSM API call; errors arrive as `ControlApiError`s with SSM's code."""
    answer = state.client().call(
        "POST",
        "/",
        body=json.dumps(request).encode(),
        headers={"Content-Type": JSON_1_1, "X-Amz-Target": f"AmazonSSM.{operation}"},
    )
    data = answer.json()
    return data if isinstance(data, dict) else {}


def _exists(state: CliState, name: str) -> bool:
    filters = [{"Key": "Name", "Option": "Equals", "Values": [name]}]
    found = call(state, "DescribeParameters", {"ParameterFilters": filters})
    return bool(found.get("Parameters"))


def _read_value(value: str) -> str:
    # `-` reads the value from stdin, which keeps secrets out of the shell's history.
    if value != "-":
        return value
    text = sys.stdin.read()
    return text[:-1] if text.endswith("\n") else text


def short_time(epoch: object) -> str:
    if not isinstance(epoch, int | float):
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


_TYPE_STYLE = {"SecureString": "yellow", "StringList": "cyan"}


@params.command("put")
@reports_errors
def put(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Parameter name, e.g. /app/prod/db-url")],
    value: Annotated[str, typer.Argument(help="The value; - to read it from stdin")],
    kind: Annotated[
        ParameterKind | None,
        typer.Option(
            "--type",
            "-t",
            help="String, StringList or SecureString (encrypted at rest). "
            "Default: String, or the current type when overwriting",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the value of an existing parameter")
    ] = False,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
) -> None:
    """Create a parameter, or with --overwrite add a new version of it."""
    state = state_of(ctx)
    request: dict[str, Any] = {"Name": name, "Value": _read_value(value), "Overwrite": overwrite}
    if kind is not None:
        request["Type"] = kind.value
    elif not overwrite or not _exists(state, name):
        # Never sent when overwriting: a SecureString must not turn into a String unasked.
        request["Type"] = ParameterKind.String.value
    if description is not None:
        request["Description"] = description
    answer = call(state, "PutParameter", request)
    state.out.print(
        Text.assemble(("put ", "green"), (name, "bold"), f" version {answer.get('Version')}"),
        soft_wrap=True,
    )


@params.command("get")
@reports_errors
def get(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name, name:version, name:label or ARN")],
    decrypt: Annotated[
        bool,
        typer.Option("--decrypt/--no-decrypt", help="Decrypt a SecureString's value"),
    ] = True,
) -> None:
    """Print a parameter's value."""
    state = state_of(ctx)
    answer = call(state, "GetParameter", {"Name": name, "WithDecryption": decrypt})
    parameter = answer.get("Parameter") or {}
    kind = str(parameter.get("Type", ""))
    about = f"{kind}, version {parameter.get('Version')}, "
    about += f"modified {short_time(parameter.get('LastModifiedDate'))} UTC"
    if kind == "SecureString" and not decrypt:
        about += " (encrypted; --decrypt to read it)"
    state.err.print(Text(about, style="dim"), soft_wrap=True)
    state.out.print(Text(str(parameter.get("Value", ""))), soft_wrap=True)


@params.command("ls")
@reports_errors
def ls(
    ctx: typer.Context,
    path: Annotated[
        str | None, typer.Argument(help="Only the parameters below this path, e.g. /app")
    ] = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Also list deeper levels of PATH")
    ] = False,
) -> None:
    """List parameters (names and settings, never values)."""
    state = state_of(ctx)
    request: dict[str, Any] = {"MaxResults": PAGE_SIZE}
    if path is not None:
        option = "Recursive" if recursive else "OneLevel"
        request["ParameterFilters"] = [{"Key": "Path", "Option": option, "Values": [path]}]
    found: list[dict[str, Any]] = []
    while True:
        page = call(state, "DescribeParameters", request)
        found.extend(page.get("Parameters") or [])
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    if not found:
        where = f" below {path}" if path else ""
        state.err.print(f"No parameters{where}. Add one with `lamina params put`.", markup=False)
        return
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("name", overflow="fold")
    table.add_column("type", no_wrap=True)
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("modified (UTC)", no_wrap=True)
    table.add_column("description", overflow="fold")
    for p in found:
        kind = str(p.get("Type", ""))
        table.add_row(
            Text(str(p.get("Name", ""))),
            Text(kind, style=_TYPE_STYLE.get(kind, "")),
            str(p.get("Version", "")),
            short_time(p.get("LastModifiedDate")),
            Text(str(p.get("Description", ""))),
        )
    state.out.print(table)


@params.command("rm")
@reports_errors
def rm(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Parameter name")]) -> None:
    """Delete a parameter and all its versions."""
    state = state_of(ctx)
    call(state, "DeleteParameter", {"Name": name})
    state.out.print(Text.assemble(("deleted ", "green"), (name, "bold")), soft_wrap=True)
