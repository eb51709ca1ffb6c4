"""Unpacking an uploaded zip into a directory, refusing anything that would escape it.

Rules, in the order they are enforced:
- names are relative and have no `..` component (`\\` counts as a separator, as it does for
  Info-ZIP's unzip, which is what Lambda's own unpacking behaves like);
- regular files and directories are written first, symbolic links last, so no write can
  ever go through a link; a link may not sit below another link, and must resolve inside
  the tree;
- permissions come from the zip's unix mode bits, without setuid/setgid/sticky and without
  write bits: the tree is read-only once unpacked.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path

from lamina.core.errors import InvalidZipFileException

# Everything zipfile and its decompressors raise for malformed input (UnicodeDecodeError, from
# a link target, is a ValueError).
_FORMAT_ERRORS = (
    zipfile.BadZipFile,
    EOFError,
    ValueError,
    NotImplementedError,
    zlib.error,
    lzma.LZMAError,
)
_CONFLICTS = (FileExistsError, IsADirectoryError, NotADirectoryError)
_UNIX = 3  # ZipInfo.create_system of zips whose external_attr holds a unix mode
_DEFAULT_FILE_MODE = 0o644
_DEFAULT_DIR_MODE = 0o755


def unpack(zip_bytes: bytes, dest: Path) -> None:
    """Unpack `zip_bytes` into the existing empty directory `dest`, then make it read-only.

    Raises InvalidZipFileException for anything wrong with the zip; `dest` is then left
    half-written and the caller discards it.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
            _unpack(zf, dest)
    except _FORMAT_ERRORS as e:
        raise invalid(str(e)) from e


def invalid(problem: str) -> InvalidZipFileException:
    return InvalidZipFileException(f"Could not unzip uploaded file: {problem}")


def check_links_inside(root: Path) -> None:
    """Raise InvalidZipFileException if a symbolic link below `root` resolves outside it."""
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                continue
            real = os.path.realpath(path)
            if real != real_root and not real.startswith(real_root + os.sep):
                shown = os.path.relpath(path, root)
                target = os.readlink(path)
                raise invalid(f"symbolic link {shown!r} -> {target!r} points outside the tree")


def make_read_only(root: Path, modes: dict[Path, int] | None = None) -> None:
    """Drop every write bit below `root`; `modes` gives permissions to start from."""
    modes = modes or {}
    for dirpath, _, filenames in os.walk(root):
        here = Path(dirpath)
        os.chmod(here, _read_only(modes.get(here, _DEFAULT_DIR_MODE) | 0o500))
        for name in filenames:
            path = here / name
            if not path.is_symlink():  # chmod would follow it and change the target
                os.chmod(path, _read_only(modes.get(path, _DEFAULT_FILE_MODE) | 0o400))


def _read_only(mode: int) -> int:
    # setuid/setgid from an upload would be a privilege escalation when Lamina runs as root
    return mode & 0o777 & ~0o222


def _unpack(zf: zipfile.ZipFile, dest: Path) -> None:
    modes: dict[Path, int] = {}
    links: list[tuple[zipfile.ZipInfo, list[str]]] = []
    for info in zf.infolist():
        parts = _parts(info.filename)
        if info.flag_bits & 0x1:
            raise invalid(f"entry {info.filename!r} is encrypted")
        mode = (info.external_attr >> 16) if info.create_system == _UNIX else 0
        if stat.S_ISLNK(mode):
            links.append((info, parts))
            continue
        is_dir = info.is_dir() or stat.S_ISDIR(mode)
        if not parts:
            if is_dir:
                continue  # an entry for the root itself, e.g. "./"
            raise invalid(f"entry {info.filename!r} has no file name")
        target = dest.joinpath(*parts)
        try:
            if is_dir:
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        except _CONFLICTS as e:
            raise invalid(f"entry {info.filename!r} conflicts with another entry") from e
        if mode & 0o777:
            modes[target] = mode
    for info, parts in links:
        _symlink(zf, info, parts, dest)
    check_links_inside(dest)
    make_read_only(dest, modes)


def _parts(name: str) -> list[str]:
    if "\x00" in name:
        raise invalid(f"entry {name!r} has a NUL byte in its name")
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise invalid(f"entry {name!r} has an absolute path")
    parts = [p for p in re.split(r"[/\\]", name) if p not in ("", ".")]
    if ".." in parts:
        raise invalid(f"entry {name!r} would be written outside the code directory")
    return parts


def _symlink(zf: zipfile.ZipFile, info: zipfile.ZipInfo, parts: list[str], dest: Path) -> None:
    if not parts:
        raise invalid(f"entry {info.filename!r} has no file name")
    # A link below an earlier link would be created wherever that link points.
    here = dest
    for part in parts[:-1]:
        here = here / part
        if here.is_symlink():
            raise invalid(f"entry {info.filename!r} is inside symbolic link {part!r}")
    target = zf.read(info).decode()
    link = dest.joinpath(*parts)
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)
    except _CONFLICTS as e:
        raise invalid(f"entry {info.filename!r} conflicts with another entry") from e
