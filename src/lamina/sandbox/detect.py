"""Can this machine run the Linux sandbox? Checked once per process, by trying it.

Static checks first (Linux on x86_64 or aarch64, root, cgroups with the memory, cpu and
pids controllers), then a real run: the nursery starts one sandbox (namespaces, mounts,
pivot_root, the new mount API, the uid switch, seccomp) around a command that checks its
uid, and a throwaway cgroup is made, limited and removed.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lamina.sandbox import cgroups, nursery, rootfs, syscalls

PROBE_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class Support:
    layout: cgroups.Layout | None
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems and self.layout is not None


@functools.cache
def support() -> Support:
    if sys.platform != "linux":
        return Support(None, (f"{sys.platform} is not Linux",))
    if not syscalls.supported_machine():
        machine = os.uname().machine
        return Support(None, (f"{machine}: the seccomp filter knows only x86_64 and aarch64",))
    if os.geteuid() != 0:
        return Support(None, ("Lamina is not running as root",))
    layout = cgroups.current_layout()
    if isinstance(layout, str):
        return Support(None, (layout,))
    problems = [p for p in (_probe_cgroups(layout), _probe_sandbox()) if p]
    return Support(layout, tuple(problems))


def _probe_cgroups(layout: cgroups.Layout) -> str:
    tree = cgroups.Tree(layout, os.getpid())
    try:
        tree.create()
        slot = tree.new_slot()
        slot.configure(cgroups.limits_for(128))
        slot.peak_bytes()
    except OSError as exc:
        return f"cgroup {layout.version}: {exc}"
    finally:
        tree.remove()
    return ""


def _probe_sandbox() -> str:
    scratch = Path(tempfile.mkdtemp(prefix="lamina-probe-"))
    try:
        (scratch / "root").mkdir()
        config = rootfs.jail_config(scratch / "home", scratch / "root")
        python = os.path.realpath(sys.executable)
        check = f"import os,sys; sys.exit(0 if os.getuid() == {rootfs.UID} else 3)"
        config["probe_argv"] = [python, "-I", "-S", "-c", check]
        result = subprocess.run(
            [sys.executable, "-I", "-S", nursery.__file__, "--probe"],
            input=json.dumps(config).encode(),
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            env={},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the sandbox probe could not run: {exc}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if result.returncode == 0:
        return ""
    reason = result.stderr.decode(errors="replace").strip().splitlines()
    last = reason[-1] if reason else f"exit status {result.returncode}"
    return f"a test sandbox failed: {last}"
