"""`lamina invoke local`: run one invocation of a function of ./serverless.yml right here,
with no Lamina server and no Docker (`sls invoke local`, and Bref's `bref:local` for PHP).

The function runs on the runtime `lamina up` would give it (Python, PHP, a `bootstrap`),
in an execution environment of this process: its code is the service directory as it is,
its log lines (START, the function's output, END, REPORT) go to stderr as they come, and
its result goes to stdout. Variables resolve without a server: `${ssm:}` finds nothing, so
its fallback applies. Layers other than Bref's runtimes are not applied, as in `sls invoke
local` without `--docker`.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text
from typer.core import TyperCommand

from lamina.cli.commands.invoke import _failure, _print_payload, read_payload
from lamina.cli.project import ConfigOption, Options, StageOption, load_project
from lamina.cli.shared import CliError, reports_errors, state_of
from lamina.core.invocation import Outcome
from lamina.core.models import FunctionConfig
from lamina.core.runtimes import builtin_layer_name
from lamina.core.validation import ENV_KEY
from lamina.wire.serverless import FunctionSpec, ServerlessConfigError

ENV_ITEM = re.compile(r"(?P<key>[^=]+)=(?P<value>.*)", re.DOTALL)
SSM_HINT = (
    "lamina invoke local reads no SSM parameters: give the variable a fallback, as in "
    "${ssm:/app/token, 'local-token'}, or set the value with --env"
)


def _overrides(items: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        match = ENV_ITEM.fullmatch(item)
        if match is None or not ENV_KEY.fullmatch(match["key"]):
            raise CliError(
                f"--env {item!r}: must be NAME=value, NAME of at least 2 letters, digits "
                "and '_', starting with a letter (Lambda's rule)"
            )
        values[match["key"]] = match["value"]
    return values


def _config(spec: FunctionSpec, overrides: dict[str, str]) -> FunctionConfig:
    return FunctionConfig(
        name=spec.name,
        runtime=spec.runtime,
        handler=spec.handler,
        code_sha256="0" * 64,
        code_size=0,
        memory_size=spec.memory_size,
        timeout=spec.timeout,
        # `sls invoke local` sets IS_LOCAL; --env wins over serverless.yml.
        environment={**spec.environment, "IS_LOCAL": "true", **overrides},
        # Only Bref's: they choose the runtime. Other layers would need packaging.
        layers=tuple(arn for arn in spec.layers if builtin_layer_name(arn) is not None),
        revision_id="local",
    )


def _spec(config: Path | None, options: Options, key: str) -> tuple[Path, FunctionSpec]:
    try:
        project = load_project(config, options, offline=True)
    except ServerlessConfigError as exc:
        if any('"ssm" source' in problem for problem in exc.problems):
            raise ServerlessConfigError([*exc.problems, SSM_HINT], exc.warnings) from None
        raise
    service = project.service
    spec = service.functions.get(key) or next(
        (f for f in service.functions.values() if f.name == key), None
    )
    if spec is None:
        known = ", ".join(service.functions) or "none"
        raise CliError(f"function {key!r} is not in {project.config.name} (its functions: {known})")
    return project.root, spec


@reports_errors
def invoke_local(
    ctx: typer.Context,
    function: Annotated[
        str, typer.Option("--function", "-f", help="Function key in ./serverless.yml")
    ],
    data: Annotated[str | None, typer.Option("--data", "-d", help="The event, as JSON")] = None,
    path: Annotated[
        Path | None,
        typer.Option("--path", "-p", help="File with the event (JSON or YAML); - for stdin"),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", help="An environment variable, NAME=value; repeatable"),
    ] = None,
    stage: StageOption = None,
    config: ConfigOption = None,
) -> None:
    """Run one invocation of a function of ./serverless.yml here, without a server."""
    state = state_of(ctx)
    payload = read_payload(data, path)
    root, spec = _spec(config, Options(stage=stage), function)
    function_config = _config(spec, _overrides(env or []))

    def write_log(line: str) -> None:
        # To stderr, so that stdout stays the payload alone and can be piped into jq.
        state.err.print(Text(line, style="dim"), soft_wrap=True)

    from lamina.local import invoke_once  # the platform's modules: only for this command

    home = Path(tempfile.mkdtemp(prefix="lamina-invoke-local-"))
    try:
        response = asyncio.run(
            invoke_once(
                function_config,
                root.resolve(),
                payload,
                home=home,
                endpoint=state.endpoint,
                write_log=write_log,
            )
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    result = response.result
    failed = result.outcome is not Outcome.SUCCESS
    _print_payload(state, result.payload, failed=failed)
    if failed:
        raise CliError(_failure(result.payload, "Unhandled"))


class InvokeCommand(TyperCommand):
    """`lamina invoke`, which also takes `lamina invoke local ...` (run it here)."""

    # Contexts and formatters are click's, which typer may vendor: typed loosely here.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args[:1] == ["local"]:
            ctx.meta["lamina.invoke.local"] = args[1:]
            return []
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        rest = ctx.meta.pop("lamina.invoke.local", None)
        if rest is None:
            return super().invoke(ctx)
        local = typer.main.get_command(_local_app)
        with local.make_context("local", rest, parent=ctx) as local_ctx:
            return local.invoke(local_ctx)

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        super().format_usage(ctx, formatter)
        formatter.write_text(f"   or: {ctx.command_path} local -f KEY [OPTIONS] (run it here)")


_local_app = typer.Typer(add_completion=False)
_local_app.command("local")(invoke_local)
