"""How a PHP-FPM execution environment is started: which php-fpm, with which flags, where.

Bref's runtime starts `php-fpm --nodaemonize --force-stderr --fpm-config <conf>` (reference
3.5); Lamina does the same, and is itself what talks to php-fpm (there is no bootstrap
process and no Runtime API in an FPM environment). php-fpm's files live in the
environment's socket directory, the one directory shared read-write with the sandbox:
php-fpm.conf, php.ini and the FastCGI socket.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from lamina.runtimes.php.fpm import SOCKET_NAME

CONFIG_NAME = "php-fpm.conf"
INI_NAME = "php.ini"
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes, NUL included
_FOLDERS = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")


def php_fpm_binary(php_version: str | None) -> str | None:
    """php-fpm of the version the runtime names (`8.2`), else any php-fpm on the machine:
    Lamina serves Bref's `php-8x-fpm` layers with the PHP it has."""
    names = [f"php-fpm{php_version}"] if php_version else []
    names.append("php-fpm")
    for name in names:
        for folder in _FOLDERS:
            candidate = Path(folder) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def looked_for(php_version: str | None) -> list[str]:
    return [f"/usr/sbin/php-fpm{php_version or ''}", "php-fpm on PATH"]


def socket_dir(run_dir: Path, token: str) -> Path:
    """The environment's socket directory: inside its run directory unless that would make
    the socket's path too long for a Unix socket, then a short one under the temp dir."""
    inside = run_dir / "fpm"
    if len(os.fsencode(inside / SOCKET_NAME)) <= _SUN_PATH_MAX:
        return inside
    return Path(tempfile.gettempdir()) / f"lamina-fpm-{token}"


def argv(binary: str, folder: Path) -> tuple[str, ...]:
    # --allow-to-run-as-root: as root (CI, or uid 0 in a user namespace) php-fpm refuses to
    # run workers as root unless told; elsewhere the flag changes nothing.
    return (
        binary,
        "--nodaemonize",
        "--force-stderr",
        "--allow-to-run-as-root",
        "--fpm-config",
        str(folder / CONFIG_NAME),
        "-c",
        str(folder / INI_NAME),
    )


def ini_scan_dir(task_root: Path, opt_root: Path | None) -> str:
    """The machine's conf.d (the leading empty entry), then Bref's layer conf.d, then the
    project's own `php/conf.d`, as Bref's PHP is compiled to scan."""
    folders = [""]
    if opt_root is not None:
        folders.append(str(opt_root / "bref" / "etc" / "php" / "conf.d"))
    folders.append(str(task_root / "php" / "conf.d"))
    return ":".join(folders)
