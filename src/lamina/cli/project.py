"""The service directory the CLI runs in: its serverless.yml, resolved and validated.

This is where the variables resolver meets the outside world: the process environment and
`.env` files, files next to serverless.yml, the command line's options and `--param`s, and
the SSM parameter store behind the control API.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from lamina.cli.client import ControlApiError, ControlApiUnreachable, ControlClient
from lamina.cli.shared import CliError
from lamina.wire.serverless import (
    DEFAULT_REGION,
    DEFAULT_STAGE,
    UNRESOLVED_HINT,
    Document,
    ServerlessConfigError,
    Service,
    build_service,
    function_names,
    load_document,
)
from lamina.wire.variables import (
    Sources,
    SsmParameter,
    VariableSourceError,
    parse_dotenv,
    resolve,
)

CONFIG_NAMES = ("serverless.yml", "serverless.yaml", "serverless.json")

# The options every command about the service in ./serverless.yml takes.
StageOption = Annotated[
    str | None, typer.Option("--stage", "-s", help="Stage (default: provider.stage, else dev)")
]
RegionOption = Annotated[
    str | None,
    typer.Option("--region", "-r", help="Region (default: provider.region, else us-east-1)"),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Service file (default: ./serverless.yml)")
]
PARAM = re.compile(r"(?P<key>[^=]+)=(?P<value>.+)", re.DOTALL)
LINE = re.compile(r"[^:]*:(?P<line>[0-9]+): ")
OPTION = re.compile(r"--?(?P<name>[A-Za-z][\w-]*)(?:=(?P<value>.*))?", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Project:
    config: Path  # the serverless.yml
    root: Path  # the service directory
    service: Service


@dataclass(frozen=True, slots=True)
class Options:
    """What the command line says about the service: `--stage`, `--region`, `--param`s and
    any other `--name value` (all of them readable as `${opt:name}`)."""

    stage: str | None = None
    region: str | None = None
    params: tuple[str, ...] = ()  # `k=v`, as given
    extra: tuple[tuple[str, str | bool], ...] = ()

    def as_variables(self) -> dict[str, object]:
        options: dict[str, object] = dict(self.extra)
        if self.stage:
            options["stage"] = self.stage
        if self.region:
            options["region"] = self.region
        if self.params:
            options["param"] = list(self.params)
        return options

    def parsed_params(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for item in self.params:
            match = PARAM.fullmatch(item)
            if match is None:
                raise CliError(
                    f'Encountered invalid "--param" CLI option value: "{item}". '
                    "Supported format: \"--param='<key>=<val>'\""
                )
            values[match["key"]] = match["value"].rstrip()
        return values


def extra_options(args: Sequence[str]) -> tuple[tuple[str, str | bool], ...]:
    """`--name value`, `--name=value` and bare `--flag`s left over by the command's own
    options, in order; anything else is refused."""
    found: list[tuple[str, str | bool]] = []
    index = 0
    while index < len(args):
        match = OPTION.fullmatch(args[index])
        if match is None:
            raise CliError(f"unexpected argument {args[index]!r}")
        value: str | bool = True
        if match["value"] is not None:
            value = match["value"]
        elif index + 1 < len(args) and not args[index + 1].startswith("-"):
            index += 1
            value = args[index]
        found.append((match["name"], value))
        index += 1
    return tuple(found)


def find_config(directory: Path) -> Path | None:
    for name in CONFIG_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _config_file(config: Path | None) -> Path:
    if config is not None:
        return config
    found = find_config(Path.cwd())
    if found is None:
        raise CliError(
            f"no serverless.yml in {Path.cwd()} (run this in a service directory, or pass --config)"
        )
    return found


def read_document(config: Path | None) -> tuple[Path, Document]:
    """The config file (given, or found in the current directory) and its parsed text."""
    config = _config_file(config)
    try:
        text = config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else exc
        raise CliError(f"cannot read {config}: {reason or exc}") from None
    return config, load_document(text, config.name)


def sources(
    root: Path,
    options: Options,
    client: ControlClient | None,
    environ: Mapping[str, str] | None = None,
    *,
    offline: bool = False,
) -> Sources:
    """The variable sources of one CLI run (`${ssm:}` asks the control API, once per name;
    `offline`, it finds nothing, so that a variable's fallback applies)."""
    env = dict(os.environ if environ is None else environ)

    def read_file(relative: str) -> str | None:
        try:
            return (root / relative).read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else exc
            raise VariableSourceError(f'Cannot parse "{relative}": {reason}') from None

    def dotenv(stage: str) -> Mapping[str, str]:
        for name in (f".env.{stage}", ".env"):  # the stage's file instead of, not over, .env
            text = read_file(name)
            if text is not None:
                return parse_dotenv(text, env)
        return {}

    def ssm(name: str, with_decryption: bool) -> SsmParameter | None:
        if offline:
            return None
        if client is None:
            raise VariableSourceError("no Lamina endpoint to read SSM parameters from")
        try:
            found = client.get_parameter(name, with_decryption=with_decryption)
        except ControlApiUnreachable as exc:
            raise VariableSourceError(str(exc)) from None
        except ControlApiError as exc:
            raise VariableSourceError(f"{exc.code}: {exc.message}") from None
        if found is None:
            return None
        return SsmParameter(
            name=found.get("Name", name), type=found.get("Type", "String"), value=found["Value"]
        )

    return Sources(
        options=options.as_variables(),
        params=options.parsed_params(),
        env=env,
        dotenv=dotenv,
        read_file=read_file,
        ssm=ssm,
        instance_id=secrets.token_hex(4),
        account_id=env.get("LAMINA_ACCOUNT_ID") or "000000000000",
    )


def load_project(
    config: Path | None,
    options: Options,
    client: ControlClient | None = None,
    *,
    offline: bool = False,
) -> Project:
    """Read, resolve and validate the service; raises `ServerlessConfigError` with every
    problem at once, before anything is packaged or sent."""
    config, document = read_document(config)
    root = config.parent
    unresolved: list[str] = []
    try:
        document = resolve(document, sources(root, options, client, offline=offline))
    except ServerlessConfigError as exc:
        unresolved = exc.problems  # still validate the rest, to report everything at once
    try:
        service = build_service(document, stage=options.stage, region=options.region)
    except ServerlessConfigError as exc:
        # A value whose variable failed is reported once, as that failure.
        invalid = [p for p in exc.problems if not p.endswith(UNRESOLVED_HINT)]
        raise ServerlessConfigError(_in_line_order(unresolved + invalid), exc.warnings) from None
    if unresolved:
        raise ServerlessConfigError(unresolved)
    return Project(config=config, root=root, service=service)


def _in_line_order(problems: list[str]) -> list[str]:
    def line(problem: str) -> int:
        match = LINE.match(problem)
        return int(match["line"]) if match else 0

    return sorted(problems, key=line)


@dataclass(frozen=True, slots=True)
class Identity:
    service: str
    stage: str
    region: str

    @property
    def stack(self) -> str:
        return f"{self.service}-{self.stage}"


def load_identity(
    config: Path | None, options: Options, client: ControlClient | None = None
) -> Identity:
    """Just the service, stage and region (for `info`, `remove`, `rollback`): only the
    variables these need are resolved, so a missing secret elsewhere does not get in the way."""
    config, document = read_document(config)
    wanted = [("service",), ("provider", "stage"), ("provider", "region")]
    resolve(document, sources(config.parent, options, client), only=wanted)
    root = document.root
    provider = root.get("provider")
    if not isinstance(provider, Mapping):
        provider = {}
    name = root.get("service")
    if not isinstance(name, str) or not name:
        raise ServerlessConfigError([f"{document.file_name}: service: required"])
    stage = options.stage or _text(provider.get("stage")) or DEFAULT_STAGE
    region = options.region or _text(provider.get("region")) or DEFAULT_REGION
    return Identity(service=name, stage=stage, region=region)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def resolve_function_name(function: str, stage: str | None, directory: Path | None = None) -> str:
    """`-f` names a function key of ./serverless.yml when there is one, else a deployed name."""
    config = find_config(directory or Path.cwd())
    if config is None:
        return function
    try:
        names = function_names(config.read_text(encoding="utf-8"), config.name, stage=stage)
    except (OSError, UnicodeDecodeError, ServerlessConfigError):
        return function
    return names.get(function, function)
