"""How a PHP function (`php-function`) or console (`php-console`) environment is started,
and what a deployment is told when this machine's PHP is not the one a function asks for.

Lamina runs Bref's `php-8x` runtimes with the PHP it has: `php8.4` for `php-84` when that is
installed, else the machine's `php`. A deployment whose functions ask for another version
than they will get says so once (`warnings`), and `lamina doctor` shows what is installed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lamina.core.runtimes import RuntimeChoice, RuntimeKind, choose
from lamina.runtimes import php
from lamina.services import fpm_launch
from lamina.wire.deployment import DeploymentSpec

LOOP_KINDS: dict[RuntimeKind, php.Kind] = {"php-function": "function", "php-console": "console"}
# What Bref's v3 plugin sets BREF_RUNTIME to; apps and bridges may read it.
_BREF_RUNTIME = {"function": "Bref\\FunctionRuntime\\Main", "console": "Bref\\ConsoleRuntime\\Main"}
_APT = "sudo apt-get install"


def command(choice: RuntimeChoice) -> tuple[str, ...] | None:
    """The argv of a php-function or php-console environment; None without any PHP."""
    binary = php.find_php(choice.php_version)
    if binary is None:
        return None
    return tuple(php.bootstrap_command(binary.path, LOOP_KINDS[choice.kind]))


def looked_for(choice: RuntimeChoice) -> list[str]:
    """Where a missing PHP was looked for, for the `Runtime.InvalidEntrypoint` message."""
    version = choice.php_version or ""
    return [f"{folder}/php{version}" for folder in php.SEARCH_DIRS]


def variables(choice: RuntimeChoice, task_root: Path, opt_root: Path | None) -> dict[str, str]:
    """Defaults the function's own variables may override, as Bref's layers would: no
    telemetry ping to Bref's server, Bref 3's BREF_RUNTIME, PHP's configuration."""
    return {
        "BREF_PING_DISABLE": "1",
        "BREF_RUNTIME": _BREF_RUNTIME[LOOP_KINDS[choice.kind]],
        "PHPRC": str(php.INI_PATH),
        "PHP_INI_SCAN_DIR": fpm_launch.ini_scan_dir(task_root, opt_root),
    }


def deployment_warnings(spec: DeploymentSpec) -> list[str]:
    return warnings((f.name, choose(f.runtime, f.layers, f.environment)) for f in spec.functions)


def warnings(functions: Iterable[tuple[str, RuntimeChoice]]) -> list[str]:
    """One line per PHP version (and binary) that functions ask for and this machine lacks."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for name, choice in functions:
        if choice.kind in LOOP_KINDS:
            wanted.setdefault(("php", choice.php_version or ""), []).append(name)
        elif choice.kind == "php-fpm":
            wanted.setdefault(("php-fpm", choice.php_version or ""), []).append(name)
    lines = []
    for (binary, version), names in sorted(wanted.items()):
        line = _warning(binary, version, ", ".join(names))
        if line is not None:
            lines.append(line)
    return lines


def _warning(binary: str, version: str, names: str) -> str | None:
    package = f"php{version or '8.2'}-{'fpm' if binary == 'php-fpm' else 'cli'}"
    if binary == "php":
        found = php.find_php(version or None)
        path, found_version = (found.path, found.version) if found else (None, None)
    else:
        path = fpm_launch.php_fpm_binary(version or None)
        found_version = php.version_of(path) if path else None
    if path is None:
        return (
            f"{binary} is not installed on the Lamina server: functions {names} cannot start "
            f"(install it: {_APT} {package})"
        )
    if version and found_version != version:
        return (
            f"functions {names} ask for PHP {version}; the Lamina server runs them on PHP "
            f"{found_version or '?'} ({path}), as it has no {binary}{version} "
            f"(to match: {_APT} {package})"
        )
    return None
