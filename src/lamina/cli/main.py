"""The `lamina` command: `up` runs the platform; the others talk to its control API."""

from __future__ import annotations

from typing import Annotated

import typer

from lamina.cli.commands.deploy import deploy
from lamina.cli.commands.doctor import doctor
from lamina.cli.commands.events import events
from lamina.cli.commands.info import info
from lamina.cli.commands.invoke import invoke
from lamina.cli.commands.invoke_local import InvokeCommand
from lamina.cli.commands.logs import logs
from lamina.cli.commands.ls import ls
from lamina.cli.commands.params import params
from lamina.cli.commands.queues import queues
from lamina.cli.commands.remove import remove
from lamina.cli.commands.rollback import rollback
from lamina.cli.commands.schedules import schedules
from lamina.cli.commands.up import up
from lamina.cli.shared import make_state

app = typer.Typer(
    name="lamina",
    help="Lamina: AWS-Lambda-compatible functions on your own machines.",
    no_args_is_help=True,
    add_completion=False,
    # Locals can hold environment variables and payloads: never print them.
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version  # slow; rarely needed

        try:
            typer.echo(f"lamina {version('lamina')}")
        except PackageNotFoundError:
            typer.echo("lamina (not installed)")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="Control API URL (env LAMINA_ENDPOINT; default http://127.0.0.1:8081, "
            "or http://$LAMINA_HOST:$LAMINA_CONTROL_PORT)",
        ),
    ] = None,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    ctx.obj = make_state(endpoint)


app.command("up")(up)
app.command("invoke", cls=InvokeCommand)(invoke)  # and `invoke local`
app.command("doctor")(doctor)
app.command("logs")(logs)
app.command("ls")(ls)
# Unknown `--name value` options reach `deploy` for `${opt:name}`, as `sls deploy` allows.
app.command(
    "deploy",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    options_metavar="[function -f KEY | list] [OPTIONS]",
)(deploy)
app.command("info")(info)
app.command("remove")(remove)
app.command("rollback")(rollback)
app.add_typer(params, name="params")
app.add_typer(queues, name="queues")
app.add_typer(events, name="events")
app.command("schedules")(schedules)


def main() -> None:
    app()
