"""Package a service directory into a deterministic zip, as `sls package` does.

The same tree always gives the same bytes, hence the same `CodeSha256`, so that a deploy
can skip code that did not change: entries are sorted, timestamps fixed, and modes reduced
to 0644/0755 (what the runtime needs: executables such as a `bootstrap` stay executable,
while umask and mtime differences between machines do not change the hash).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import re
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Serverless's default excludes, plus caches that never belong in a function package.
DEFAULT_EXCLUDES = (
    ".git/**",
    ".gitignore",
    "**/.DS_Store",
    "npm-debug.log",
    "yarn-*.log",
    ".serverless/**",
    ".serverless_plugins/**",
    "node_modules/.cache/**",
    "**/__pycache__/**",
    "**/*.pyc",
)

# The earliest time a zip entry can carry.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Artifact:
    path: Path | None  # where it was written, if it was
    data: bytes
    files: int

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        """Base64 of the SHA-256, the form Lambda's `CodeSha256` takes."""
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode()


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """A glob over '/'-separated relative paths: `**` spans directories, `*` and `?` do not."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def is_excluded(relative: str, patterns: Iterable[str]) -> bool:
    """`relative` uses '/' separators; a directory is asked about as `dir/`."""
    return any(_glob(p).fullmatch(relative) for p in patterns)


def _files(root: Path, patterns: tuple[str, ...]) -> Iterator[tuple[str, Path]]:
    visited: set[tuple[int, int]] = set()
    for directory, subdirs, names in os.walk(root, followlinks=True):
        here = Path(directory)
        info = here.stat()
        if (info.st_dev, info.st_ino) in visited:  # a symlink loop
            subdirs.clear()
            continue
        visited.add((info.st_dev, info.st_ino))
        base = here.relative_to(root).as_posix()
        prefix = "" if base == "." else f"{base}/"
        # Pruning keeps `.git` or `node_modules/.cache` from being walked at all.
        subdirs[:] = [d for d in subdirs if not is_excluded(f"{prefix}{d}/", patterns)]
        for name in names:
            relative = f"{prefix}{name}"
            path = here / name
            if not is_excluded(relative, patterns) and path.is_file():
                yield relative, path


def build_zip(root: Path, exclude: Iterable[str] = ()) -> tuple[bytes, int]:
    """Zip the files under `root` except the excluded ones; returns the bytes and file count."""
    patterns = DEFAULT_EXCLUDES + tuple(exclude)
    entries = sorted(_files(root, patterns))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for relative, path in entries:
            executable = path.stat().st_mode & 0o111
            entry = zipfile.ZipInfo(relative, date_time=ZIP_EPOCH)
            entry.create_system = 3  # unix, so that the mode bits below are honoured
            entry.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes(), compresslevel=6)
    return buffer.getvalue(), len(entries)


def package_service(root: Path, service: str, config_file: Path) -> Artifact:
    """Build `.serverless/<service>.zip` from the service directory `root`."""
    exclude: list[str] = []
    # A config file outside the service directory is not packaged anyway.
    with contextlib.suppress(ValueError):
        exclude.append(config_file.resolve().relative_to(root.resolve()).as_posix())
    data, count = build_zip(root, exclude)
    target = root / ".serverless" / f"{service}.zip"
    target.parent.mkdir(exist_ok=True)
    partial = target.with_suffix(".zip.partial")
    partial.write_bytes(data)
    partial.replace(target)  # never leave a half-written artifact behind
    return Artifact(path=target, data=data, files=count)
