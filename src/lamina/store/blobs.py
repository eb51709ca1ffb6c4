"""`CodeStore`: content-addressed code bundles (function code and layers) on disk.

    root/zips/<sha>.zip       the bundle as uploaded
    root/code/<sha>/          unpacked once, read-only
    root/opt/<key>/           the merged /opt view of a list of layers, read-only

Everything is built under a dot-named temporary sibling and renamed into place, so a crash
never leaves a half-written entry and concurrent writers of the same content both succeed.
A bundle exists once its code directory does; the zip is written before it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lamina.store.unzip import check_links_inside, unpack

_SHA256 = re.compile(r"[0-9a-f]{64}")


class CodeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._zips = root / "zips"
        self._code = root / "code"
        self._opt = root / "opt"
        for directory in (self._zips, self._code, self._opt):
            directory.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"<CodeStore {self.root}>"

    def put(self, zip_bytes: bytes) -> tuple[str, int]:
        """Store a bundle; returns its hex SHA-256 and size. Raises InvalidZipFileException."""
        sha = hashlib.sha256(zip_bytes).hexdigest()
        if self.has(sha):
            return sha, len(zip_bytes)
        tmp = Path(tempfile.mkdtemp(prefix=f".{sha}.", dir=self._code))
        try:
            unpack(zip_bytes, tmp)
            self._write_zip(sha, zip_bytes)
        except BaseException:
            _remove_tree(tmp)
            raise
        _publish(tmp, self._code / sha)
        return sha, len(zip_bytes)

    def has(self, sha: str) -> bool:
        return (self._code / _checked(sha)).is_dir() and (self._zips / f"{sha}.zip").is_file()

    def code_dir(self, sha: str) -> Path:
        path = self._code / _checked(sha)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: code bundle {sha} is not in the code store")
        return path

    def zip_path(self, sha: str) -> Path:
        path = self._zips / f"{_checked(sha)}.zip"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: code bundle {sha} is not in the code store")
        return path

    def opt_view(self, layer_shas: Sequence[str]) -> Path | None:
        """The /opt a function with these layers sees: their trees merged, later ones winning."""
        if not layer_shas:
            return None
        key = hashlib.sha256(",".join(layer_shas).encode()).hexdigest()
        view = self._opt / key
        if view.is_dir():
            return view
        sources = [self.code_dir(sha) for sha in layer_shas]
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self._opt))
        try:
            for source in sources:
                _merge(source, tmp)
            # Layers are checked one by one; a link can still escape through another
            # layer's link once they are merged.
            check_links_inside(tmp)
            _seal_dirs(tmp)
        except BaseException:
            _remove_tree(tmp)
            raise
        _publish(tmp, view)
        return view

    def _write_zip(self, sha: str, zip_bytes: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{sha}.", suffix=".zip", dir=self._zips)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(zip_bytes)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, self._zips / f"{sha}.zip")
        except BaseException:
            os.unlink(tmp)
            raise


def _checked(sha: str) -> str:
    # The digest becomes a path component; anything but 64 hex digits could escape root.
    if not _SHA256.fullmatch(sha):
        raise ValueError(f"{sha!r}: not a hex SHA-256 digest (64 lowercase hex digits)")
    return sha


def _merge(source: Path, dest: Path) -> None:
    with os.scandir(source) as entries:
        for entry in entries:
            target = dest / entry.name
            if entry.is_dir(follow_symlinks=False):
                if target.is_symlink() or not target.is_dir():
                    _remove(target)
                    target.mkdir()
                _merge(Path(entry.path), target)
                continue
            _remove(target)
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
                continue
            try:
                # Files are read-only and content-addressed, so sharing the inode is safe.
                os.link(entry.path, target)
            except OSError:
                shutil.copy2(entry.path, target)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        _remove_tree(path)


def _publish(tmp: Path, final: Path) -> None:
    try:
        # Same parent directory: Linux then needs no write permission on the (read-only)
        # directory being moved.
        os.rename(tmp, final)
    except OSError:
        _remove_tree(tmp)
        if not final.is_dir():
            raise
        # Someone else published the same content first; theirs is as good as ours.


def _seal_dirs(root: Path) -> None:
    # Only directories: the files are hard links to the layers' inodes, already read-only,
    # and a chmod here would change the layers too.
    for dirpath, _, _ in os.walk(root):
        os.chmod(dirpath, 0o555)


def _remove_tree(path: Path) -> None:
    for dirpath, _, _ in os.walk(path):
        os.chmod(dirpath, 0o700)
    shutil.rmtree(path)
