"""What a sandbox's file system holds, decided once per `lamina up`.

Read-only: the system (/usr and its /bin, /lib... links), the few /etc files programs need
(name resolution, TLS roots, the dynamic linker's cache, time zones, Debian's alternatives,
PHP's configuration), Lamina's own runtime files and the Python installation Lamina runs
on (a `python3.x` function runs on it when the system has no such interpreter), each at its
real path. Nothing else of the host: no /home, /root, /var, /run, /srv, /sys, and never the
data directory, which is masked if it lies inside anything shown.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lamina.runtimes
from lamina.sandbox import seccomp
from lamina.sandbox.remap import is_inside

UID = GID = 993  # Lambda's sandbox user, sbx_user1051
USER = "sbx_user1051"
TMP_MB = 512  # Lambda's default ephemeral storage
SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "resolv.conf", "hosts", "host.conf",
    "nsswitch.conf", "gai.conf", "services", "protocols", "ssl", "ca-certificates",
    "ca-certificates.conf", "pki", "crypto-policies", "localtime", "timezone", "alternatives",
    "mime.types", "os-release", "php",
)  # fmt: skip


def system_mounts(root: str = "/") -> tuple[list[list[str]], list[list[str]]]:
    """(binds, symlinks) for the host's system directories and /etc files."""
    binds: list[list[str]] = [["/usr", "/usr"]]
    links: list[list[str]] = []
    for name in SYSTEM_DIRS:
        path = os.path.join(root, name)
        if os.path.islink(path):
            links.append([os.readlink(path), f"/{name}"])
        elif os.path.isdir(path):
            binds.append([path, f"/{name}"])
    for name in ETC:
        path = os.path.join(root, "etc", name)
        if os.path.exists(path):  # a dangling link (resolv.conf on some hosts) is skipped
            binds.append([path, f"/etc/{name}"])
    return binds, links


def runtime_dirs() -> list[str]:
    """Lamina's runtime files and the Python installation it runs on."""
    folders = [str(Path(lamina.runtimes.__file__).resolve().parent)]
    for prefix in (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix):
        folders.append(os.path.realpath(prefix))
    return folders


def _outermost(folders: Iterable[str], covered: Iterable[str]) -> list[str]:
    """The folders not inside another one or inside something already covered."""
    unique = sorted(set(folders), key=len)
    kept: list[str] = []
    for folder in unique:
        if not is_inside(folder, [*covered, *kept]):
            kept.append(folder)
    return kept


def jail_config(
    home: Path, staging_root: Path, cgroups: dict[str, Any] | None = None
) -> dict[str, Any]:
    binds, links = system_mounts()
    shown = [source for source, _ in binds]
    for folder in _outermost(runtime_dirs(), shown):
        binds.append([folder, folder])
    sources = [source for source, _ in binds]
    home = home.resolve()
    masks = [str(home)] if is_inside(home, sources) else []
    config: dict[str, Any] = {
        "root": str(staging_root),
        "uid": UID,
        "gid": GID,
        "user": USER,
        "binds": binds,
        "symlinks": links,
        "masks": masks,
        "tmp_bytes": TMP_MB * 1024 * 1024,
        "hostname": "localhost",
        # The filter in two stages: early when a sandbox is prepared, late before exec.
        "seccomp": [base64.b64encode(stage).decode() for stage in seccomp.stages()],
    }
    if cgroups is not None:
        config["cgroups"] = cgroups
    return config
