"""The paths a function sees: the real directories Lamina prepared become Lambda's.

The launcher writes real paths into the runtime's argv and environment (the task root in
`LAMBDA_TASK_ROOT` and `LD_LIBRARY_PATH`, the merged layers in `PATH` and the Python
bootstrap's argv, the private temp directory in `TMPDIR`). The Linux driver mounts those
directories at `/var/task`, `/opt` and `/tmp`, and rewrites every occurrence of the real path
(at a path boundary, in any variable or argument) to the mounted one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lamina.core.ports import SandboxSpec

TASK = "/var/task"
OPT = "/opt"
TMP = "/tmp"
# A function variable that cuts its network off (the value "none"); never passed through.
NETWORK_VARIABLE = "LAMINA_NETWORK"


@dataclass(frozen=True, slots=True)
class Mapped:
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: str
    network: str  # "shared" or "none"


class Remapper:
    """Rewrites real paths into the sandbox's, longest first."""

    def __init__(self, table: Mapping[str, str]) -> None:
        pairs = {real.rstrip("/"): inside for real, inside in table.items() if real.strip("/")}
        self._table = dict(sorted(pairs.items(), key=lambda kv: -len(kv[0])))
        self._pattern = _pattern(tuple(self._table)) if self._table else None

    def __call__(self, value: str) -> str:
        if self._pattern is None:
            return value
        return self._pattern.sub(lambda m: self._table[m.group(1)], value)


@functools.lru_cache(maxsize=256)
def _pattern(reals: tuple[str, ...]) -> re.Pattern[str]:
    # Compiling costs ~0.4 ms, a tenth of a cold start: once per function's directories.
    alternatives = "|".join(re.escape(real) for real in reals)
    # Preceded by the start, ":", "=" or a blank; followed by "/", ":", a blank or the end.
    return re.compile(rf"(?<![^:=\s])({alternatives})(?=[/:\s]|$)")


def table(spec: SandboxSpec) -> dict[str, str]:
    pairs = {str(spec.task_root): TASK, str(spec.tmp_dir): TMP}
    if spec.opt_root is not None:
        pairs[str(spec.opt_root)] = OPT
    return pairs


def _replace_path(value: str, real: str, inside: str) -> str:
    """`real` replaced by `inside` where it is a whole path (as Remapper does), no regex."""
    start = value.find(real)
    while start >= 0:
        end = start + len(real)
        before_ok = start == 0 or value[start - 1] in ":= \t\n"
        after_ok = end == len(value) or value[end] in "/: \t\n"
        if before_ok and after_ok:
            value = value[:start] + inside + value[end:]
            end = start + len(inside)
        start = value.find(real, end)
    return value


def network_of(spec: SandboxSpec) -> str:
    wanted = spec.env.get(NETWORK_VARIABLE, "").strip().lower()
    return "none" if "none" in (spec.network, wanted) else "shared"


def remap(spec: SandboxSpec) -> Mapped:
    # The temporary directory is new for every environment: it is replaced on its own so
    # that the pattern for the rest is compiled once per function.
    pairs = table(spec)
    tmp = str(spec.tmp_dir).rstrip("/")
    del pairs[str(spec.tmp_dir)]
    stable = Remapper(pairs)

    def rewrite(value: str) -> str:
        return _replace_path(stable(value), tmp, TMP) if tmp and tmp in value else stable(value)

    env = {k: rewrite(v) for k, v in spec.env.items() if k != NETWORK_VARIABLE}
    return Mapped(
        argv=tuple(rewrite(a) for a in spec.argv),
        env=env,
        cwd=rewrite(str(spec.cwd)),
        network=network_of(spec),
    )


def is_inside(path: str | Path, folders: Sequence[str | Path]) -> bool:
    resolved = Path(path)
    return any(resolved == Path(f) or Path(f) in resolved.parents for f in folders)
