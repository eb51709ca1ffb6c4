"""Package a service into deterministic zips, as `sls package` does.

The same tree always gives the same bytes, hence the same SHA-256, so that a deploy uploads
only bundles the server lacks: entries are sorted, timestamps fixed, and modes reduced to
0644/0755 (what the runtime needs: executables such as a `bootstrap` stay executable, while
umask and mtime differences between machines do not change the hash).

Which files go in follows Serverless's `package.patterns`: every file is in, then each
pattern in order adds (`glob`) or removes (`!glob`) what it matches, so a later pattern
re-includes what an earlier one excluded. Serverless's default excludes come first. A
pattern that names a directory covers everything under it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import stat
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lamina.wire.serverless import FunctionSpec, PackageSpec, Service

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
# With `useDotenv`, Serverless keeps the `.env` files out of the package: they hold secrets.
DOTENV_EXCLUDES = (".env", ".env.*")
OUTPUT_DIR = ".serverless"

# The earliest time a zip entry can carry.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_WILDCARDS = re.compile(r"[*?\[{]")


class PackagingError(Exception):
    """A package that cannot be built: a missing artifact or layer directory."""


@dataclass(frozen=True, slots=True)
class Artifact:
    path: Path | None  # where it was written (or the prebuilt zip it was read from)
    data: bytes
    files: int
    sha256_hex: str = field(init=False)  # the bundle's name on the server

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256_hex", hashlib.sha256(self.data).hexdigest())

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        """Base64 of the SHA-256, the form Lambda's `CodeSha256` takes."""
        return base64.b64encode(bytes.fromhex(self.sha256_hex)).decode()

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode()


@dataclass(frozen=True, slots=True)
class Packages:
    functions: dict[str, Artifact]  # function key -> its bundle (shared ones are one object)
    layers: dict[str, Artifact]  # layer key -> its bundle

    def bundles(self) -> list[Artifact]:
        """Each distinct bundle once, in a stable order."""
        unique = {a.sha256_hex: a for a in [*self.functions.values(), *self.layers.values()]}
        return [unique[sha] for sha in sorted(unique)]


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """A glob over '/'-separated relative paths: `**` spans directories, `*` and `?` do not."""
    pattern = pattern.removeprefix("./")
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
    """Whether any of `patterns` matches; `relative` uses '/' separators, and a directory
    is asked about as `dir/`."""
    return any(_glob(p).fullmatch(relative) for p in patterns)


def _matches(pattern: str, relative: str) -> bool:
    """`pattern` matches the file, or one of the directories it is in."""
    glob = _glob(pattern.rstrip("/"))
    if glob.fullmatch(relative):
        return True
    parts = relative.split("/")
    return any(glob.fullmatch("/".join(parts[:i])) for i in range(1, len(parts)))


def is_included(relative: str, patterns: Sequence[str]) -> bool:
    """Serverless's ordered patterns over one file: the last pattern that matches decides."""
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _matches(pattern[1:] if negated else pattern, relative):
            included = not negated
    return included


def _prunable(directory: str, patterns: Sequence[str]) -> bool:
    """Whether nothing under `directory` (`a/b/`) can be included: an exclude covers it and
    no later pattern could bring a file under it back. Pruning keeps `.git` or
    `node_modules/.cache` from being walked at all."""
    for index in range(len(patterns) - 1, -1, -1):
        pattern = patterns[index]
        if not pattern.startswith("!"):
            if _could_match_under(pattern, directory):
                return False
            continue
        glob = _glob(pattern[1:].rstrip("/"))
        if glob.fullmatch(directory) or glob.fullmatch(directory.rstrip("/")):
            return True
    return False


def _could_match_under(pattern: str, directory: str) -> bool:
    literal = _WILDCARDS.split(pattern.removeprefix("./"), maxsplit=1)[0]
    return literal.startswith(directory) or directory.startswith(literal)


def _files(root: Path, patterns: Sequence[str]) -> Iterator[tuple[str, Path]]:
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
        subdirs[:] = [d for d in subdirs if not _prunable(f"{prefix}{d}/", patterns)]
        for name in names:
            relative = f"{prefix}{name}"
            path = here / name
            if is_included(relative, patterns) and path.is_file():
                yield relative, path


def build_zip(root: Path, patterns: Sequence[str] = ()) -> tuple[bytes, int]:
    """Zip the files under `root` that the default excludes and then `patterns` leave in;
    returns the bytes and the file count."""
    ordered = [f"!{p}" for p in DEFAULT_EXCLUDES] + list(patterns)
    entries = sorted(_files(root, ordered))
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


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(exist_ok=True)
    partial = target.with_suffix(".zip.partial")
    partial.write_bytes(data)
    partial.replace(target)  # never leave a half-written artifact behind


def _prebuilt(root: Path, artifact: str, where: str) -> Artifact:
    path = root / artifact
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PackagingError(f"{where} = {artifact!r}: {exc.strerror or exc}") from None
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise PackagingError(f"{where} = {artifact!r}: not a zip file")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = sum(1 for i in archive.infolist() if not i.is_dir())
    return Artifact(path=path, data=data, files=files)


def _service_patterns(root: Path, service: Service, config_file: Path) -> list[str]:
    """What every function package leaves out before the file's own patterns apply."""
    excludes: list[str] = []
    # A config file outside the service directory is not packaged anyway.
    if config_file.resolve().is_relative_to(root.resolve()):
        excludes.append(config_file.resolve().relative_to(root.resolve()).as_posix())
    if service.use_dotenv:
        excludes.extend(DOTENV_EXCLUDES)
    # Layers are packaged on their own; their directories stay out of function code.
    for layer in service.layers.values():
        if layer.path is not None:
            excludes.append(f"{layer.path.removeprefix('./').rstrip('/')}/**")
    return [f"!{p}" for p in excludes] + list(service.package.patterns)


def package_function(
    root: Path,
    service: Service,
    config_file: Path,
    spec: FunctionSpec,
    shared: dict[str, Artifact] | None = None,
) -> Artifact:
    """One function's bundle: its artifact, the service's, its own zip (`individually`), or
    the service zip (built once, kept in `shared`)."""
    if spec.package.artifact is not None:
        return _prebuilt(root, spec.package.artifact, f"functions.{spec.key}.package.artifact")
    if service.package.artifact is not None:
        return _prebuilt(root, service.package.artifact, "package.artifact")
    patterns = _service_patterns(root, service, config_file)
    if spec.package.individually or service.package.individually:
        data, count = build_zip(root, patterns + list(spec.package.patterns))
        target = root / OUTPUT_DIR / f"{spec.key}.zip"
        _write(target, data)
        return Artifact(path=target, data=data, files=count)
    cache = {} if shared is None else shared
    if "" not in cache:
        data, count = build_zip(root, patterns)
        target = root / OUTPUT_DIR / f"{service.name}.zip"
        _write(target, data)
        cache[""] = Artifact(path=target, data=data, files=count)
    return cache[""]


def package_layer(root: Path, key: str, directory: str | None, package: PackageSpec) -> Artifact:
    if package.artifact is not None:
        return _prebuilt(root, package.artifact, f"layers.{key}.package.artifact")
    source = root / (directory or "")
    if directory is None or not source.is_dir():
        raise PackagingError(f"layers.{key}.path = {directory!r}: no such directory")
    data, count = build_zip(source, list(package.patterns))
    target = root / OUTPUT_DIR / f"layer-{key}.zip"  # apart from functions of the same key
    _write(target, data)
    return Artifact(path=target, data=data, files=count)


def package_service(root: Path, service: Service, config_file: Path) -> Packages:
    """Every bundle a deploy of `service` needs, written under `.serverless/`."""
    shared: dict[str, Artifact] = {}
    functions = {
        key: package_function(root, service, config_file, spec, shared)
        for key, spec in service.functions.items()
    }
    layers = {
        key: package_layer(root, key, layer.path, layer.package)
        for key, layer in service.layers.items()
    }
    return Packages(functions=functions, layers=layers)
