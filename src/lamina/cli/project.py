"""The service directory the CLI runs in: its serverless.yml and its function names."""

from __future__ import annotations

from pathlib import Path

from lamina.cli.shared import CliError
from lamina.wire.serverless import ServerlessConfigError, Service, function_names, parse_service

CONFIG_NAMES = ("serverless.yml", "serverless.yaml", "serverless.json")


def find_config(directory: Path) -> Path | None:
    for name in CONFIG_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def load_service(
    config: Path | None, *, stage: str | None = None, region: str | None = None
) -> tuple[Path, Service]:
    """The config file (given, or found in the current directory) and the service it holds."""
    if config is None:
        config = find_config(Path.cwd())
        if config is None:
            raise CliError(
                f"no serverless.yml in {Path.cwd()} (run this in a service directory, "
                "or pass --config)"
            )
    try:
        text = config.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {config}: {exc.strerror or exc}") from None
    return config, parse_service(text, config.name, stage=stage, region=region)


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
