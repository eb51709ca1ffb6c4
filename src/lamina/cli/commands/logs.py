"""`lamina logs`: print a function's log events, and follow them with `--tail`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.text import Text

from lamina.cli.client import ControlClient, LogEventShape
from lamina.cli.project import resolve_function_name
from lamina.cli.shared import CliState, FunctionOption, StageOption, reports_errors, state_of
from lamina.cli.since import parse_since

POLL_INTERVAL = 1.0
PAGE_LIMIT = 10_000  # the most events one logs call returns


def _style(message: str) -> str:
    if message.startswith(("START ", "END ")):
        return "dim"
    if message.startswith("REPORT "):
        return "cyan"
    if message.startswith(("[ERROR]", "Traceback", "Task timed out")) or "\t[ERROR]\t" in message:
        return "red"
    return ""


def format_event(event: LogEventShape) -> Text:
    moment = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
    stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message = event["message"].rstrip("\n")
    line = Text(f"{stamp} ", style="dim")
    line.append(message, style=_style(message))
    return line


def _drain(
    state: CliState, client: ControlClient, function: str, since: int, after: int | None
) -> int | None:
    """Print every event available now; returns the id to continue after."""
    while True:
        page = client.logs(function, since=since if after is None else None, after=after)
        for event in page["events"]:
            state.out.print(format_event(event), soft_wrap=True)
        if page["last"] is not None:
            after = page["last"]
        if len(page["events"]) < PAGE_LIMIT:
            return after


@reports_errors
def logs(
    ctx: typer.Context,
    function: FunctionOption,
    stage: StageOption = None,
    tail: Annotated[
        bool, typer.Option("--tail", "-t", help="Keep printing new events until Ctrl-C")
    ] = False,
    since: Annotated[
        str,
        typer.Option(help="Start at 30s, 10m, 2h, 3d ago, an ISO 8601 time, or epoch ms"),
    ] = "10m",
) -> None:
    """Print a function's log events."""
    state = state_of(ctx)
    name = resolve_function_name(function, stage)
    start = parse_since(since, int(time.time() * 1000))
    client = state.client()
    try:
        after = _drain(state, client, name, start, None)
        while tail:
            time.sleep(POLL_INTERVAL)
            after = _drain(state, client, name, start, after)
    except KeyboardInterrupt:
        return  # Ctrl-C is how one stops tailing: not an error
