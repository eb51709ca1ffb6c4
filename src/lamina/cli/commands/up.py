"""`lamina up`: run the platform in this process until SIGINT/SIGTERM."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lamina.cli.shared import CliError, reports_errors
from lamina.config import Settings


@reports_errors
def up(
    home: Annotated[
        Path | None, typer.Option(help="Data directory (env LAMINA_HOME; default ~/.lamina)")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (env LAMINA_HOST; default 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="HTTP gateway port (env LAMINA_PORT; default 8080)")
    ] = None,
    control_port: Annotated[
        int | None,
        typer.Option(help="Control API port (env LAMINA_CONTROL_PORT; default 8081)"),
    ] = None,
    keep_alive: Annotated[
        float | None,
        typer.Option(
            help="Seconds an idle execution environment stays warm "
            "(env LAMINA_KEEP_ALIVE; default 600)"
        ),
    ] = None,
    keep_alive_policy: Annotated[
        str | None,
        typer.Option(
            help="How long idle execution environments stay warm: fixed (--keep-alive for "
            "every one) or hybrid (learned per function, with pre-warming) "
            "(env LAMINA_KEEP_ALIVE_POLICY; default fixed)"
        ),
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Region in ARNs (env LAMINA_REGION; default us-east-1)")
    ] = None,
    account_id: Annotated[
        str | None,
        typer.Option(help="Account id in ARNs (env LAMINA_ACCOUNT_ID; default 000000000000)"),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(help="Account concurrency limit (env LAMINA_CONCURRENCY; default 1000)"),
    ] = None,
    memory_budget: Annotated[
        int | None,
        typer.Option(
            help="MB all live execution environments may use "
            "(env LAMINA_MEMORY_BUDGET; default 80% of RAM)"
        ),
    ] = None,
    init_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds a runtime may take to ask for its first event "
            "(env LAMINA_INIT_TIMEOUT; default 10)"
        ),
    ] = None,
    async_retry_delay: Annotated[
        float | None,
        typer.Option(
            help="Seconds before a failed async event's first retry, doubled for the second "
            "(env LAMINA_ASYNC_RETRY_DELAY; default 60)"
        ),
    ] = None,
    sandbox: Annotated[
        str | None,
        typer.Option(
            help="Sandbox driver: auto (linux where the machine allows it), linux or plain "
            "(env LAMINA_SANDBOX; default auto)"
        ),
    ] = None,
) -> None:
    """Start Lamina: the HTTP gateway, the control API and the functions' runtimes."""
    try:
        settings = Settings.from_env(
            home=home,
            host=host,
            port=port,
            control_port=control_port,
            keep_alive=keep_alive,
            keep_alive_policy=keep_alive_policy,
            region=region,
            account_id=account_id,
            concurrency=concurrency,
            memory_budget=memory_budget,
            init_timeout=init_timeout,
            async_retry_delay=async_retry_delay,
            sandbox=sandbox,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    # Imported here, not at the top, so that the other commands start without the server.
    from lamina.app import AlreadyRunning, run
    from lamina.sandbox import SandboxUnavailable

    try:
        run(settings)
    except (AlreadyRunning, SandboxUnavailable, ValueError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        # Typically the port is taken: say which, without a traceback.
        raise CliError(f"cannot start Lamina on {settings.host}: {exc.strerror or exc}") from None
