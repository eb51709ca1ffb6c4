"""What every command shares: the consoles, the endpoint, and how failures are reported.

A failure is one red `error: ...` line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from lamina.cli.client import (
    DEFAULT_ENDPOINT,
    ControlApiError,
    ControlApiUnreachable,
    ControlClient,
)
from lamina.wire.serverless import ServerlessConfigError

P = ParamSpec("P")
R = TypeVar("R")


class CliError(Exception):
    """A problem to tell the user in one line."""


@dataclass(slots=True)
class CliState:
    endpoint: str
    out: Console
    err: Console

    def client(self) -> ControlClient:
        return ControlClient(self.endpoint)

    def warn(self, message: str) -> None:
        self.err.print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)


def default_endpoint(environ: dict[str, str] | None = None) -> str:
    """`LAMINA_ENDPOINT`, else where `lamina up` listens given the same `LAMINA_*` settings."""
    env = dict(os.environ) if environ is None else environ
    if env.get("LAMINA_ENDPOINT"):
        return env["LAMINA_ENDPOINT"]
    host = env.get("LAMINA_HOST") or ""
    port = env.get("LAMINA_CONTROL_PORT") or ""
    if not host and not port:
        return DEFAULT_ENDPOINT
    # A server bound to every address is reached on loopback.
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port or '8081'}"


def make_state(endpoint: str | None) -> CliState:
    # Consoles are built per run, not at import, so they write to the streams of this run.
    return CliState(
        endpoint=endpoint or default_endpoint(),
        out=Console(highlight=False),
        err=Console(stderr=True, highlight=False),
    )


def state_of(ctx: typer.Context) -> CliState:
    state = ctx.find_object(CliState)
    return state if state is not None else make_state(None)


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


# Options shared by the commands that name one function (`invoke`, `logs`).
FunctionOption = Annotated[
    str,
    typer.Option(
        "--function", "-f", help="Function key in ./serverless.yml, or a deployed function name"
    ),
]
StageOption = Annotated[
    str | None, typer.Option("--stage", "-s", help="Stage, to name a function by its key")
]


def fail(message: str) -> typer.Exit:
    Console(stderr=True, highlight=False).print(
        Text(f"error: {message}", style="red"), soft_wrap=True
    )
    return typer.Exit(1)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a user can cause or fix into `error: ...` lines and exit code 1."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (CliError, ControlApiUnreachable) as exc:
            raise fail(str(exc)) from None
        except ControlApiError as exc:
            raise fail(f"{exc.code}: {exc.message}") from None
        except ServerlessConfigError as exc:
            warn = Console(stderr=True, highlight=False)
            for warning in exc.warnings:
                warn.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
            for problem in exc.problems[:-1]:
                fail(problem)
            raise fail(exc.problems[-1] if exc.problems else "invalid configuration") from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return run
