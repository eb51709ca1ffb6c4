"""Lamina's PHP runtimes for Bref's `php-8x` (function) and `php-8x-console` kinds: see
bootstrap.php for the contract, lib/ for the loop, compat/ for the Bref classes apps may lack.

This module is the platform's side: where the files are, which PHP binary runs them, and the
argv and PHP variables an environment is started with. (`fpm/` holds the PHP-FPM runtime.)
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RUNTIME_DIR = Path(__file__).parent
BOOTSTRAP_PATH = RUNTIME_DIR / "bootstrap.php"
INI_PATH = RUNTIME_DIR / "php.ini"
# Debian keeps php8.x in /usr/bin and php-fpm8.x in /usr/sbin; source builds use /usr/local.
SEARCH_DIRS = ("/usr/local/bin", "/usr/bin", "/usr/local/sbin", "/usr/sbin")

Kind = Literal["function", "console"]

_VERSIONED = re.compile(r"(?P<name>php|php-fpm)(?P<version>\d+\.\d+)")
_VERSION_OUTPUT = re.compile(rb"PHP (\d+)\.(\d+)")


@dataclass(frozen=True, slots=True)
class PhpBinary:
    path: str
    version: str  # major.minor, "8.2"


def find_php(version: str | None = None, dirs: Sequence[str] = SEARCH_DIRS) -> PhpBinary | None:
    """The PHP CLI for `version`: `php8.2` when installed, else the machine's `php` (or its
    newest `php8.x`); None without any. Cached: installing PHP needs a restart of Lamina."""
    return _find("php", version, tuple(dirs))


def find_php_fpm(version: str | None = None, dirs: Sequence[str] = SEARCH_DIRS) -> PhpBinary | None:
    """The same for PHP-FPM: `php-fpm8.2`, else `php-fpm`, else the newest `php-fpm8.x`."""
    return _find("php-fpm", version, tuple(dirs))


@functools.cache
def _find(name: str, version: str | None, dirs: tuple[str, ...]) -> PhpBinary | None:
    wanted = [f"{name}{version}"] if version else []
    for candidate in [*wanted, name]:
        for folder in dirs:
            found = _binary(os.path.join(folder, candidate))
            if found is not None:
                return found
    # No `php` alternative set up: the newest versioned binary there is.
    versioned = []
    for folder in dirs:
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            match = _VERSIONED.fullmatch(entry)
            if match and match["name"] == name:
                key = tuple(int(part) for part in match["version"].split("."))
                versioned.append((key, os.path.join(folder, entry)))
    for _, path in sorted(versioned, reverse=True):
        found = _binary(path)
        if found is not None:
            return found
    return None


def _binary(path: str) -> PhpBinary | None:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return None
    version = version_of(path)
    return PhpBinary(path, version) if version else None


def version_of(path: str) -> str | None:
    """`8.2` for a PHP or PHP-FPM binary; None if it does not run."""
    # `php` is a chain of links to `php8.2` on Debian: the name says the version.
    match = _VERSIONED.fullmatch(os.path.basename(os.path.realpath(path)))
    return match["version"] if match else _ask_version(path)


@functools.cache
def _ask_version(path: str) -> str | None:
    try:
        output = subprocess.run(
            [path, "-n", "-v"], capture_output=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION_OUTPUT.search(output)
    return f"{int(match[1])}.{int(match[2])}" if match else None


def bootstrap_command(php: str, kind: Kind) -> list[str]:
    """The argv that starts the runtime; run it with cwd = the task root, PHPRC = INI_PATH
    and PHP_INI_SCAN_DIR (see `lamina.services.php_launch`).

    No ini flags on the command line: the console runtime's `php <handler>` commands must
    see the same settings, so they travel in PHPRC.
    """
    return [php, str(BOOTSTRAP_PATH), kind]
