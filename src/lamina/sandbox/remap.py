"""The paths a function sees: the real directories Lamina prepared become Lambda's.

The launcher writes real paths into the runtime's argv and environment (the task root in
`LAMBDA_TASK_ROOT` and `LD_LIBRARY_PATH`, the merged layers in `PATH` and the Python
bootstrap's argv, the private temp directory in `TMPDIR`). The Linux driver mounts those
directories at `/var/task`, `/opt` and `/tmp`, and rewrites every occurrence of the real path
(at a path boundary, in any variable or argument) to the mounted one.
"""

from __future__ import annotations

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
        alternatives = "|".join(re.escape(real) for real in self._table)
        # Preceded by the start, ":", "=" or a blank; followed by "/", ":", a blank or the end.
        self._pattern = (
            re.compile(rf"(?<![^:=\s])({alternatives})(?=[/:\s]|$)") if self._table else None
        )

    def __call__(self, value: str) -> str:
        if self._pattern is None:
            return value
        return self._pattern.sub(lambda m: self._table[m.group(1)], value)


def table(spec: SandboxSpec) -> dict[str, str]:
    pairs = {str(spec.task_root): TASK, str(spec.tmp_dir): TMP}
    if spec.opt_root is not None:
        pairs[str(spec.opt_root)] = OPT
    return pairs


def network_of(spec: SandboxSpec) -> str:
    wanted = spec.env.get(NETWORK_VARIABLE, "").strip().lower()
    return "none" if "none" in (spec.network, wanted) else "shared"


def remap(spec: SandboxSpec) -> Mapped:
    rewrite = Remapper(table(spec))
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
