"""`lamina doctor`: what this machine offers Lamina's functions, and what it lacks.

Runtimes (the Python interpreters, PHP's CLI and PHP-FPM), the sandbox driver in force, the
data directory and whether a Lamina answers at the endpoint. It only looks: it changes
nothing, and always exits 0, with the command to install what is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import typer
from rich.text import Text

from lamina.cli.client import ControlApiError, ControlApiUnreachable, ControlClient
from lamina.cli.shared import CliState, reports_errors, state_of
from lamina.config import Settings
from lamina.core.models import PYTHON_RUNTIMES
from lamina.runtimes import php

Status = Literal["ok", "note", "missing"]
_MARKS = {"ok": ("✔", "green"), "note": ("!", "yellow"), "missing": ("✘", "red")}
DEFAULT_PHP = "8.2"  # Debian 12's; the package names below follow Debian's (and Ubuntu's)
HEALTH_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class Check:
    status: Status
    name: str
    detail: str


def python_checks() -> list[Check]:
    from lamina.runtimes.python import python_for  # what `lamina up` runs each version on

    own = os.path.realpath(sys.executable)
    own_version = ".".join(map(str, sys.version_info[:3]))
    checks = []
    for runtime in sorted(PYTHON_RUNTIMES, key=lambda r: int(r.removeprefix("python3."))):
        found = python_for(runtime)
        if found != own or os.path.basename(found) == runtime:
            checks.append(Check("ok", runtime, found))
        else:
            detail = f"not installed: runs on Lamina's own Python {own_version} ({own})"
            checks.append(Check("note", runtime, detail))
    return checks


def _describe(binary: php.PhpBinary | None, label: str, serves: str) -> Check:
    if binary is None:
        return Check("missing", label, f"not installed: {serves} cannot run")
    return Check("ok", label, f"{binary.path} ({_full_version(binary.path)}): {serves}")


def _full_version(path: str) -> str:
    try:
        output = subprocess.run(
            [path, "-n", "-v"], capture_output=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "does not run"
    first = output.decode(errors="replace").splitlines()[:1]
    return " ".join(first[0].split()[:2]) if first else "unknown version"


def php_checks() -> tuple[list[Check], list[str]]:
    """The checks, and the Debian packages that would fill the gaps."""
    cli = php.find_php()
    fpm = php.find_php_fpm()
    found = cli or fpm
    version = found.version if found else DEFAULT_PHP
    checks = [
        _describe(cli, "PHP CLI", "Bref's php-8x and php-8x-console functions"),
        _describe(fpm, "PHP-FPM", "Bref's php-8x-fpm functions"),
    ]
    versions = sorted(_installed_versions(), key=lambda v: tuple(map(int, v.split("."))))
    if len(versions) > 1:
        checks.append(
            Check("ok", "PHP versions", f"{', '.join(versions)} (php-8x functions get theirs)")
        )
    packages = [f"php{version}-cli"] if cli is None else []
    packages += [f"php{version}-fpm"] if fpm is None else []
    return checks, packages


def _installed_versions() -> set[str]:
    found = set()
    for folder in php.SEARCH_DIRS:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.startswith("php") and name[3:4].isdigit():
                candidate = php.find_php(name[3:])
                if candidate is not None and candidate.version == name[3:]:
                    found.add(candidate.version)
    return found


def sandbox_check(mode: str) -> Check:
    """What `lamina.sandbox.describe` says of the driver `lamina up` would use."""
    import lamina.sandbox as sandbox

    describe: Any = getattr(sandbox, "describe", None)
    if describe is None:
        return Check("note", "sandbox", "plain processes: no isolation")
    lines = [str(line) for line in describe(mode)]
    head = lines[0].removeprefix("sandbox driver: ") if lines else "unknown"
    isolated = "no isolation" not in head.lower()
    detail = "\n".join([head, *(f"    {line.strip()}" for line in lines[1:])])
    return Check("ok" if isolated else "note", "sandbox", detail)


def home_check(home: Path) -> Check:
    if home.is_dir():
        writable = os.access(home, os.W_OK | os.X_OK)
        return Check(
            "ok" if writable else "missing",
            "data",
            f"{home}" + ("" if writable else " (not writable)"),
        )
    return Check("note", "data", f"{home} (created by the first `lamina up`)")


def endpoint_check(endpoint: str) -> Check:
    try:
        healthy = ControlClient(endpoint, timeout=HEALTH_TIMEOUT).health()
    except ControlApiUnreachable:
        return Check("note", "server", f"nothing answers at {endpoint} (start one: lamina up)")
    except ControlApiError as exc:
        return Check("missing", "server", f"{endpoint} answers GET /health with {exc.code}")
    if not healthy:
        return Check("missing", "server", f"{endpoint} is not a healthy Lamina")
    return Check("ok", "server", f"Lamina answers at {endpoint}")


def _print(state: CliState, title: str, checks: list[Check], *, first: bool = False) -> None:
    if not first:
        state.out.print()
    state.out.print(Text(title, style="bold"))
    width = max(len(c.name) for c in checks)
    for check in checks:
        mark, style = _MARKS[check.status]
        line = Text(f"  {mark} ", style=style)
        line.append(check.name.ljust(width + 2), style="bold" if check.status == "ok" else style)
        line.append(check.detail)
        state.out.print(line, soft_wrap=True)


@reports_errors
def doctor(ctx: typer.Context) -> None:
    """Show which runtimes this machine has, the sandbox in force and the server's state."""
    state = state_of(ctx)
    php_found, packages = php_checks()
    _print(state, "Runtimes", python_checks() + php_found, first=True)
    settings = Settings.from_env()
    _print(state, "Platform", [sandbox_check(settings.sandbox), home_check(settings.home)])
    _print(state, "Endpoint", [endpoint_check(state.endpoint)])
    if packages:
        state.out.print()
        state.out.print(Text("To install what is missing:", style="bold"))
        state.out.print(Text(f"  sudo apt-get install {' '.join(packages)}"), soft_wrap=True)
