"""Control groups: memory, CPU and pids limits for each execution environment.

Each `lamina up` owns one directory per hierarchy, `lamina-<pid>`, made under the cgroup it
was started in (so an operator's limits on Lamina still bound its functions), and inside it
one *slot* per execution environment. Slots are reused: a cgroup costs little to keep and a
memory cgroup freed while page cache is still charged to it lingers in the kernel.

cgroup v1 (a hierarchy per controller: memory, cpu, pids) and v2 (one unified tree) are both
supported; `find_layout` says which this machine has. Stdlib only: the nursery imports it to
clean up after a Lamina that died.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass

CONTROLLERS = ("memory", "pids", "cpu")
ROOT = "/sys/fs/cgroup"
PIDS_MAX = 1024  # Lambda's process limit
CPU_PERIOD_US = 1_000_000  # long: a short burst (a cold start) runs at full speed
ONE_VCPU_MB = 1769  # Lambda: CPU in proportion to memory, one vCPU at 1,769 MB
MIN_QUOTA_US = 1000  # the kernel's floor for cpu.cfs_quota_us


@dataclass(frozen=True, slots=True)
class Limits:
    memory_bytes: int
    cpu_quota_us: int
    cpu_period_us: int
    cpu_weight: int  # cgroup v2 cpu.weight (1-10000, 100 = one vCPU)
    cpu_shares: int  # cgroup v1 cpu.shares (1024 = one vCPU)
    pids_max: int


def limits_for(memory_mb: int) -> Limits:
    quota = max(MIN_QUOTA_US, CPU_PERIOD_US * memory_mb // ONE_VCPU_MB)
    return Limits(
        memory_bytes=memory_mb * 1024 * 1024,
        cpu_quota_us=quota,
        cpu_period_us=CPU_PERIOD_US,
        cpu_weight=min(10_000, max(1, 100 * memory_mb // ONE_VCPU_MB)),
        cpu_shares=max(2, 1024 * memory_mb // ONE_VCPU_MB),
        pids_max=PIDS_MAX,
    )


@dataclass(frozen=True, slots=True)
class Layout:
    """Where this process's cgroups are: v1 maps each controller to its directory, v2 has
    one directory for all."""

    version: str  # "v1" or "v2"
    dirs: Mapping[str, str]  # controller -> the directory the tree is made in
    # cgroup v2 forbids processes in a cgroup that hands controllers to its children: when
    # Lamina is alone in its cgroup it moves itself to this leaf first.
    leaf: str | None = None

    def parents(self, name: str) -> tuple[str, ...]:
        return tuple(sorted({f"{d}/{name}" for d in self.dirs.values()}))


def find_layout(
    mountinfo: str, self_cgroup: str, pid: int, read: Callable[[str], str] | None = None
) -> Layout | str:
    """The cgroup layout from /proc/self/mountinfo and /proc/self/cgroup, or why none fits."""
    read = read or _read
    v1: dict[str, str] = {}
    unified: tuple[str, str] | None = None  # (mount point, mount root)
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, point, fstype = fields[3], fields[4], tail[0]
        if fstype == "cgroup2":
            unified = (point, root)
        elif fstype == "cgroup":
            for option in tail[2].split(","):
                if option in CONTROLLERS:
                    v1[option] = _joined(point, root, _own(self_cgroup, option))
    if all(c in v1 for c in CONTROLLERS):
        return Layout("v1", v1)
    if unified is None:
        missing = [c for c in CONTROLLERS if c not in v1]
        return f"no cgroup hierarchy with the {', '.join(missing)} controller(s) is mounted"
    point, root = unified
    own = _joined(point, root, _own(self_cgroup, ""))
    leaf: str | None = None
    base = own
    if own != point:
        others = [p for p in read(f"{own}/cgroup.procs").split() if p != str(pid)]
        if others:
            # Others share our cgroup, so it cannot hand controllers down: work from the
            # top of the hierarchy, as container engines do.
            base = point
        else:
            leaf = f"{own}/lamina-{pid}.main"
    available = read(f"{base}/cgroup.controllers").split()
    missing = [c for c in CONTROLLERS if c not in available]
    if missing:
        return f"cgroup v2 at {base} lacks the {', '.join(missing)} controller(s)"
    return Layout("v2", dict.fromkeys(CONTROLLERS, base), leaf)


def current_layout() -> Layout | str:
    return find_layout(_read("/proc/self/mountinfo"), _read("/proc/self/cgroup"), os.getpid())


def _own(self_cgroup: str, controller: str) -> str:
    for line in self_cgroup.splitlines():
        _, names, path = line.split(":", 2)
        if (controller and controller in names.split(",")) or (not controller and not names):
            return path
    return "/"


def _joined(point: str, root: str, own: str) -> str:
    # In a cgroup namespace the mount's root is our own cgroup: strip it from our path.
    if root != "/" and (own == root or own.startswith(root + "/")):
        own = own[len(root) :]
    return point + own.rstrip("/") if own != "/" else point


class Slot:
    """One execution environment's cgroup (one directory per v1 hierarchy)."""

    __slots__ = ("_applied", "_peak_fd", "dirs", "name", "version")

    def __init__(self, version: str, dirs: Mapping[str, str], name: str) -> None:
        self.version = version
        self.dirs = dict(dirs)
        self.name = name
        self._applied: Limits | None = None  # what the files hold now
        self._peak_fd = -1

    def __repr__(self) -> str:
        return f"<Slot {self.name} {self.version}>"

    @property
    def procs_files(self) -> tuple[str, ...]:
        return tuple(f"{d}/cgroup.procs" for d in sorted(set(self.dirs.values())))

    def create(self) -> None:
        for directory in sorted(set(self.dirs.values())):
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory)

    @property
    def reusable(self) -> bool:
        # v1 resets the memory peak on request; v2's memory.peak only per open file (6.12+),
        # so a v2 slot serves one environment and a new one is made for the next.
        return self.version == "v1"

    def lower_priority(self) -> None:
        """Preparing a sandbox yields the CPU to running functions (`configure` restores)."""
        if self.version == "v1":
            _write(f"{self.dirs['cpu']}/cpu.shares", 2)
        else:
            _write(f"{self.dirs['cpu']}/cpu.weight", 1)

    def configure(self, limits: Limits) -> None:
        """Set the limits and start counting peak memory (and CPU time) from now."""
        applied, self._applied = self._applied, limits
        if applied is None or (applied.memory_bytes, applied.pids_max) != (
            limits.memory_bytes,
            limits.pids_max,
        ):
            self._write_limits(limits)
            return
        # The slot held an environment of the same size: only what the last one used
        # must go (writing the quota gives back a full period's worth of CPU time).
        cpu = self.dirs["cpu"]
        if self.version == "v1":
            _write(f"{self.dirs['memory']}/memory.max_usage_in_bytes", 0)
            _write(f"{cpu}/cpu.cfs_quota_us", limits.cpu_quota_us)
            _write(f"{cpu}/cpu.shares", limits.cpu_shares)
        else:
            _write(f"{cpu}/cpu.max", f"{limits.cpu_quota_us} {limits.cpu_period_us}")
            _write(f"{cpu}/cpu.weight", limits.cpu_weight)

    def _write_limits(self, limits: Limits) -> None:
        memory, cpu, pids = self.dirs["memory"], self.dirs["cpu"], self.dirs["pids"]
        if self.version == "v1":
            memsw = f"{memory}/memory.memsw.limit_in_bytes"
            if os.path.exists(memsw):
                # memory + swap may never be below memory alone: lift it, then lower it.
                _write(memsw, -1)
                _write(f"{memory}/memory.limit_in_bytes", limits.memory_bytes)
                _write(memsw, limits.memory_bytes)
            else:
                _write(f"{memory}/memory.limit_in_bytes", limits.memory_bytes)
            _write(f"{memory}/memory.max_usage_in_bytes", 0)  # resets the peak
            _write(f"{cpu}/cpu.cfs_period_us", limits.cpu_period_us)
            _write(f"{cpu}/cpu.cfs_quota_us", limits.cpu_quota_us)
            _write(f"{cpu}/cpu.shares", limits.cpu_shares)
        else:
            _write(f"{memory}/memory.max", limits.memory_bytes)
            with contextlib.suppress(FileNotFoundError):
                _write(f"{memory}/memory.swap.max", 0)
            _write(f"{cpu}/cpu.max", f"{limits.cpu_quota_us} {limits.cpu_period_us}")
            _write(f"{cpu}/cpu.weight", limits.cpu_weight)
        _write(f"{pids}/pids.max", limits.pids_max)

    def peak_bytes(self) -> int:
        """Peak memory since `configure`. Read for every REPORT line, so from a descriptor
        kept open (one pread: opening the file each time was ~10 % of the gateway's CPU)."""
        if self._peak_fd < 0:
            name = "memory.max_usage_in_bytes" if self.version == "v1" else "memory.peak"
            try:
                self._peak_fd = os.open(f"{self.dirs['memory']}/{name}", os.O_RDONLY)
            except OSError:
                return 0
        try:
            text = os.pread(self._peak_fd, 32, 0).strip()
        except OSError:
            return 0
        return int(text) if text.isdigit() else 0

    def close(self) -> None:
        if self._peak_fd >= 0:
            os.close(self._peak_fd)
            self._peak_fd = -1

    def pids(self) -> list[int]:
        return [int(p) for p in _read(f"{self.dirs['pids']}/cgroup.procs").split()]

    def kill(self) -> None:
        """SIGKILL every process in the slot."""
        if self.version == "v2" and os.path.exists(f"{self.dirs['pids']}/cgroup.kill"):
            with contextlib.suppress(OSError):
                _write(f"{self.dirs['pids']}/cgroup.kill", 1)
                return
        for _ in range(3):  # a process may fork between the read and the kill
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def is_empty(self) -> bool:
        return all(not _read(f).split() for f in self.procs_files)

    def remove(self) -> bool:
        self.close()
        removed = True
        for directory in sorted(set(self.dirs.values())):
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError:
                removed = False
        return removed


_trees = itertools.count(1)


def tree_name(owner_pid: int, number: int) -> str:
    return f"lamina-{owner_pid}-{number}"


def _owner(name: str) -> int | None:
    """The pid in `lamina-<pid>-<n>` (a tree) or `lamina-<pid>.main` (a v2 leaf)."""
    match = re.fullmatch(r"lamina-(\d+)(?:-\d+|\.main)", name)
    return int(match.group(1)) if match else None


class Tree:
    """The cgroups of one driver: `lamina-<pid>-<n>` in each hierarchy, and its slots."""

    def __init__(self, layout: Layout, owner_pid: int) -> None:
        self.layout = layout
        self.owner_pid = owner_pid
        self.name = tree_name(owner_pid, next(_trees))
        self._count = 0

    def __repr__(self) -> str:
        return f"<cgroups.Tree {self.layout.version} {self.name} slots={self._count}>"

    def create(self) -> None:
        if self.layout.leaf is not None:
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.layout.leaf)
            _write(f"{self.layout.leaf}/cgroup.procs", self.owner_pid)
        if self.layout.version == "v2":
            _enable_controllers(self.layout.dirs["memory"])
        for parent in self.layout.parents(self.name):
            with contextlib.suppress(FileExistsError):
                os.mkdir(parent)
            if self.layout.version == "v2":
                _enable_controllers(parent)

    def new_slot(self) -> Slot:
        self._count += 1
        name = f"env-{self._count}"
        dirs = {c: f"{d}/{self.name}/{name}" for c, d in self.layout.dirs.items()}
        slot = Slot(self.layout.version, dirs, name)
        slot.create()
        return slot

    def remove(self) -> bool:
        """Kill whatever is left in the slots and remove every directory."""
        return remove_tree(self.layout, self.name)


def remove_tree(layout: Layout, name: str) -> bool:
    removed = True
    for parent in layout.parents(name):
        for slot_name in _listdirs(parent):
            path = f"{parent}/{slot_name}"
            slot = Slot(layout.version, dict.fromkeys(CONTROLLERS, path), slot_name)
            slot.kill()
            removed = _wait_removed(slot) and removed
        try:
            os.rmdir(parent)
        except FileNotFoundError:
            pass
        except OSError:
            removed = False
    return removed


def remove_stale(layout: Layout) -> list[str]:
    """Remove the trees of Lamina processes that died without cleaning up."""
    stale: set[str] = set()
    leaves: list[str] = []
    for directory in set(layout.dirs.values()):
        for name in _listdirs(directory):
            owner = _owner(name)
            if owner is None or os.path.exists(f"/proc/{owner}"):
                continue
            if name.endswith(".main"):
                leaves.append(f"{directory}/{name}")
            else:
                stale.add(name)
    for name in sorted(stale):
        remove_tree(layout, name)
    for leaf in leaves:
        with contextlib.suppress(OSError):
            os.rmdir(leaf)
    return sorted(stale)


def _wait_removed(slot: Slot) -> bool:
    import time

    for _ in range(200):  # killed processes leave within milliseconds; give up after ~2 s
        if slot.remove():
            return True
        slot.kill()
        time.sleep(0.01)
    return False


def _enable_controllers(directory: str) -> None:
    enabled = _read(f"{directory}/cgroup.subtree_control").split()
    wanted = " ".join(f"+{c}" for c in CONTROLLERS if c not in enabled)
    if wanted:
        _write(f"{directory}/cgroup.subtree_control", wanted)


def _listdirs(directory: str) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(directory) if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def _write(path: str, value: object) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)
