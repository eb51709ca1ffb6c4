"""`lamina ls`: the functions Lamina holds."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.table import Table
from rich.text import Text

from lamina.cli.shared import human_size, reports_errors, state_of


def short_time(last_modified: str) -> str:
    """AWS's `2024-05-01T10:00:00.000+0000` as `2024-05-01 10:00` UTC, to keep rows narrow."""
    try:
        moment = datetime.strptime(last_modified, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return last_modified
    return moment.strftime("%Y-%m-%d %H:%M")


@reports_errors
def ls(ctx: typer.Context) -> None:
    """List functions."""
    state = state_of(ctx)
    functions = state.client().list_functions()
    if not functions:
        state.err.print("No functions. Deploy some with `lamina deploy`.", markup=False)
        return
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("name", overflow="fold")
    table.add_column("runtime", no_wrap=True)
    table.add_column("handler", overflow="fold")
    table.add_column("memory", justify="right", no_wrap=True)
    table.add_column("timeout", justify="right", no_wrap=True)
    table.add_column("code", justify="right", no_wrap=True)
    table.add_column("modified (UTC)", no_wrap=True)
    for fn in sorted(functions, key=lambda f: f.get("FunctionName", "")):
        # Text, not str: a handler may contain brackets, which rich would read as markup.
        table.add_row(
            Text(fn.get("FunctionName", "")),
            Text(fn.get("Runtime", "")),
            Text(fn.get("Handler", "")),
            f"{fn['MemorySize']} MB" if "MemorySize" in fn else "",
            f"{fn['Timeout']} s" if "Timeout" in fn else "",
            human_size(fn["CodeSize"]) if "CodeSize" in fn else "",
            Text(short_time(fn.get("LastModified", ""))),
        )
    state.out.print(table)
