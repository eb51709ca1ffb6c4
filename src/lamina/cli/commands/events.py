"""`lamina events`: asynchronous events still queued, retrying or dead; `lamina events
redrive ID` sends a dead event back to its function with a fresh attempt count."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table
from rich.text import Text

from lamina.cli.project import resolve_function_name
from lamina.cli.shared import reports_errors, state_of

events = typer.Typer(
    name="events",
    help="Asynchronous events: queued, retrying and dead ones; redrive a dead one.",
    invoke_without_command=True,
)

_STYLES = {"dead": "red", "retrying": "yellow", "failed": "red", "succeeded": "green"}


class Status(StrEnum):
    queued = "queued"
    retrying = "retrying"
    running = "running"
    delivering = "delivering"
    succeeded = "succeeded"
    failed = "failed"
    dead = "dead"
    all = "all"


def _short(iso: str | None) -> str:
    """`2024-05-01T10:00:00.123456Z` as `2024-05-01 10:00:00`, to keep rows narrow."""
    return iso[:19].replace("T", " ") if iso else ""


def _what(event: dict[str, Any]) -> str:
    error = event.get("error") or {}
    parts = []
    if event.get("condition"):
        parts.append(str(event["condition"]))
    if error.get("errorType") or error.get("errorMessage"):
        parts.append(f"{error.get('errorType') or 'Error'}: {error.get('errorMessage') or ''}")
    for kind, target, *reason in event.get("undelivered") or []:
        parts.append(f"{kind} {target} not reached: {reason[0] if reason else ''}")
    return "; ".join(parts)


@events.callback()
@reports_errors
def list_events(
    ctx: typer.Context,
    status: Annotated[
        Status | None,
        typer.Option("--status", help="Only events in this state (default: all but finished)"),
    ] = None,
    function: Annotated[
        str | None,
        typer.Option(
            "--function", "-f", help="Function key in ./serverless.yml, or a deployed name"
        ),
    ] = None,
    stage: Annotated[
        str | None, typer.Option("--stage", "-s", help="Stage, to name a function by its key")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as JSON")] = False,
) -> None:
    """List asynchronous events (not the finished ones unless --status asks for them)."""
    if ctx.invoked_subcommand is not None:
        return
    state = state_of(ctx)
    query: dict[str, str] = {}
    if status is not None:
        query["status"] = status.value
    if function:
        query["function"] = resolve_function_name(function, stage)
    data = state.client().call_json("GET", "/lamina/v1/events", query=query) or {}
    rows: list[dict[str, Any]] = data.get("events") or []
    if as_json:
        state.out.print_json(json.dumps(rows))
        return
    if not rows:
        state.err.print("No events.", markup=False)
        return
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("id", no_wrap=True)
    table.add_column("function", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("queued (UTC)", no_wrap=True)
    table.add_column("next try (UTC)", no_wrap=True)
    table.add_column("why", overflow="fold")
    for event in rows:
        shown = str(event.get("status", ""))
        table.add_row(
            Text(str(event.get("id", ""))),
            Text(f"{event.get('function', '')}:{event.get('qualifier', '')}"),
            Text(shown, style=_STYLES.get(shown, "")),
            str(event.get("attempts", 0)),
            _short(event.get("enqueued")),
            _short(event.get("nextAttempt")),
            Text(_what(event)),
        )
    state.out.print(table)


@events.command("redrive")
@reports_errors
def redrive(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(metavar="ID", help="A dead event's id")],
) -> None:
    """Send a dead event to its function again, with a fresh attempt count."""
    state = state_of(ctx)
    path = f"/lamina/v1/events/{quote(event_id, safe='')}/redrive"
    data = state.client().call_json("POST", path, {}) or {}
    event = data.get("event") or {}
    state.out.print(
        Text(f"✔ Event {event.get('id', event_id)} is queued again for {event.get('function')}"),
        soft_wrap=True,
    )
