"""`lamina schedules`: every schedule rule with its next firing time."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.table import Table
from rich.text import Text

from lamina.cli.shared import reports_errors, state_of


def _when(iso: str | None, zone: str) -> str:
    """The time in the rule's own time zone, which is how its expression reads."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    try:
        local = moment.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        local = moment
    return local.strftime("%Y-%m-%d %H:%M:%S %Z")


@reports_errors
def schedules(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rules as JSON")] = False,
) -> None:
    """List schedules and when each fires next."""
    state = state_of(ctx)
    data = state.client().call_json("GET", "/lamina/v1/schedules") or {}
    rules: list[dict[str, Any]] = data.get("schedules") or []
    if as_json:
        state.out.print_json(json.dumps(rules))
        return
    if not rules:
        state.err.print("No schedules. Add `schedule` events in serverless.yml.", markup=False)
        return
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("rule", overflow="fold")
    table.add_column("function", overflow="fold")
    table.add_column("expression", no_wrap=True)
    table.add_column("next firing", no_wrap=True)
    table.add_column("last firing", no_wrap=True)
    for rule in rules:
        zone = str(rule.get("timezone") or "UTC")
        upcoming = _when(rule.get("nextFire"), zone)
        if not rule.get("enabled", True):
            upcoming = "disabled"
        elif not upcoming:
            upcoming = "never"
        table.add_row(
            Text(str(rule.get("rule", ""))),
            Text(f"{rule.get('function', '')}:{rule.get('qualifier', '')}"),
            Text(str(rule.get("expression", ""))),
            Text(upcoming, style="dim" if upcoming in ("disabled", "never") else ""),
            _when(rule.get("lastFired"), zone),
        )
    state.out.print(table)
