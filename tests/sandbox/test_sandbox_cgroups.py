"""cgroup layouts (v1 and v2) from /proc's files, limits, and slots on a fake cgroupfs.

The fake is a directory of ordinary files: writes land in them, so a test reads back what
Lamina wrote, whichever cgroup version this machine has.
"""

from __future__ import annotations

import os
from pathlib import Path

from lamina.sandbox import cgroups

V1_MOUNTINFO = """\
25 30 0:22 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
31 25 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 25 0:27 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 25 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 25 0:29 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
35 25 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1_SELF = """\
8:pids:/
4:memory:/process_api/778d
1:cpu:/
0::/
"""


def test_v1_layout_puts_each_controller_under_our_own_cgroup() -> None:
    layout = cgroups.find_layout(V1_MOUNTINFO, V1_SELF, 42, read=lambda _: "")
    assert isinstance(layout, cgroups.Layout)
    assert layout.version == "v1"
    assert layout.dirs == {
        "cpu": "/sys/fs/cgroup/cpu",
        "memory": "/sys/fs/cgroup/memory/process_api/778d",
        "pids": "/sys/fs/cgroup/pids",
    }
    assert layout.parents("lamina-42-1") == (
        "/sys/fs/cgroup/cpu/lamina-42-1",
        "/sys/fs/cgroup/memory/process_api/778d/lamina-42-1",
        "/sys/fs/cgroup/pids/lamina-42-1",
    )


def test_v1_with_cpu_and_cpuacct_mounted_together() -> None:
    mountinfo = V1_MOUNTINFO.replace("rw,cpu\n", "rw,cpu,cpuacct\n")
    layout = cgroups.find_layout(mountinfo, "2:cpu,cpuacct:/x\n4:memory:/\n8:pids:/\n", 1)
    assert isinstance(layout, cgroups.Layout)
    assert layout.dirs["cpu"] == "/sys/fs/cgroup/cpu/x"


def test_a_missing_controller_is_named() -> None:
    mountinfo = "\n".join(line for line in V1_MOUNTINFO.splitlines() if "pids" not in line)
    reason = cgroups.find_layout(mountinfo, V1_SELF, 1, read=lambda _: "")
    assert reason == "cgroup v2 at /sys/fs/cgroup/unified lacks the memory, pids, cpu controller(s)"


V2_MOUNTINFO = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"


def test_v2_alone_in_its_cgroup_moves_itself_to_a_leaf_and_nests() -> None:
    files = {
        "/sys/fs/cgroup/system.slice/lamina.service/cgroup.procs": "42\n",
        "/sys/fs/cgroup/system.slice/lamina.service/cgroup.controllers": "cpu io memory pids",
    }
    layout = cgroups.find_layout(
        V2_MOUNTINFO, "0::/system.slice/lamina.service\n", 42, read=lambda p: files.get(p, "")
    )
    assert isinstance(layout, cgroups.Layout)
    assert layout.version == "v2"
    assert set(layout.dirs.values()) == {"/sys/fs/cgroup/system.slice/lamina.service"}
    assert layout.leaf == "/sys/fs/cgroup/system.slice/lamina.service/lamina-42.main"


def test_v2_sharing_its_cgroup_works_from_the_top_of_the_hierarchy() -> None:
    files = {
        "/sys/fs/cgroup/user.slice/session-1.scope/cgroup.procs": "7\n42\n",
        "/sys/fs/cgroup/cgroup.controllers": "cpu memory pids",
    }
    layout = cgroups.find_layout(
        V2_MOUNTINFO, "0::/user.slice/session-1.scope\n", 42, read=lambda p: files.get(p, "")
    )
    assert isinstance(layout, cgroups.Layout)
    assert set(layout.dirs.values()) == {"/sys/fs/cgroup"}
    assert layout.leaf is None


def test_v2_in_a_cgroup_namespace_strips_the_mount_root() -> None:
    mountinfo = "30 25 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    layout = cgroups.find_layout(mountinfo, "0::/docker/abc\n", 1, read=lambda p: "cpu memory pids")
    assert isinstance(layout, cgroups.Layout)
    assert set(layout.dirs.values()) == {"/sys/fs/cgroup"}


def test_limits_follow_lambdas_cpu_to_memory_ratio() -> None:
    one = cgroups.limits_for(1769)
    assert one.cpu_quota_us == one.cpu_period_us  # one vCPU
    assert one.cpu_shares == 1024 and one.cpu_weight == 100
    small = cgroups.limits_for(128)
    assert small.memory_bytes == 128 * 1024 * 1024
    assert small.cpu_quota_us == 1_000_000 * 128 // 1769
    assert small.pids_max == 1024
    assert cgroups.limits_for(10240).cpu_quota_us == 1_000_000 * 10240 // 1769  # ~5.8 vCPUs


def fake_v1(tmp_path: Path) -> cgroups.Layout:
    dirs = {c: str(tmp_path / c) for c in cgroups.CONTROLLERS}
    for directory in dirs.values():
        os.makedirs(directory)
    return cgroups.Layout("v1", dirs)


def fill(slot: cgroups.Slot, version: str) -> None:
    names = {
        "v1": (
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.max_usage_in_bytes",
            "cpu.cfs_period_us",
            "cpu.cfs_quota_us",
            "cpu.shares",
            "pids.max",
            "cgroup.procs",
        ),
        "v2": ("memory.max", "cpu.max", "cpu.weight", "pids.max", "cgroup.procs"),
    }[version]
    for directory in set(slot.dirs.values()):
        for name in names:
            Path(directory, name).write_text("")


def test_a_v1_slot_is_configured_through_its_files(tmp_path: Path) -> None:
    tree = cgroups.Tree(fake_v1(tmp_path), 42)
    tree.create()
    slot = tree.new_slot()
    assert slot.dirs["memory"] == str(tmp_path / f"memory/{tree.name}/env-1")
    assert tree.name.startswith("lamina-42-")
    fill(slot, "v1")
    slot.configure(cgroups.limits_for(256))
    memory = Path(slot.dirs["memory"])
    assert (memory / "memory.limit_in_bytes").read_text() == str(256 << 20)
    assert (memory / "memory.memsw.limit_in_bytes").read_text() == str(256 << 20)
    assert (memory / "memory.max_usage_in_bytes").read_text() == "0"  # the peak was reset
    cpu = Path(slot.dirs["cpu"])
    assert (cpu / "cpu.cfs_quota_us").read_text() == str(1_000_000 * 256 // 1769)
    assert (cpu / "cpu.cfs_period_us").read_text() == "1000000"
    assert Path(slot.dirs["pids"], "pids.max").read_text() == "1024"
    (memory / "memory.max_usage_in_bytes").write_text("5242880\n")
    assert slot.peak_bytes() == 5 << 20
    assert slot.procs_files == tuple(
        f"{tmp_path}/{c}/{tree.name}/env-1/cgroup.procs" for c in ("cpu", "memory", "pids")
    )
    assert slot.is_empty()


def test_a_v2_slot_writes_memory_max_and_cpu_max(tmp_path: Path) -> None:
    layout = cgroups.Layout("v2", dict.fromkeys(cgroups.CONTROLLERS, str(tmp_path)))
    slot = cgroups.Slot("v2", {c: str(tmp_path / "s") for c in cgroups.CONTROLLERS}, "s")
    slot.create()
    fill(slot, "v2")
    slot.configure(cgroups.limits_for(1769))
    assert Path(tmp_path, "s/memory.max").read_text() == str(1769 << 20)
    assert Path(tmp_path, "s/cpu.max").read_text() == "1000000 1000000"
    assert Path(tmp_path, "s/cpu.weight").read_text() == "100"
    assert layout.parents("lamina-7-1") == (f"{tmp_path}/lamina-7-1",)


def test_stale_trees_of_dead_laminas_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    layout = fake_v1(tmp_path)
    dead = 2**22 + 12345  # above pid_max's usual range: no such process
    for directory in layout.dirs.values():
        os.makedirs(f"{directory}/unrelated")
        for pid in (dead, os.getpid()):
            os.makedirs(f"{directory}/lamina-{pid}-1/env-1")
    assert cgroups.remove_stale(layout) == [f"lamina-{dead}-1"]
    for directory in layout.dirs.values():
        assert not os.path.exists(f"{directory}/lamina-{dead}-1")
        assert os.path.exists(f"{directory}/lamina-{os.getpid()}-1/env-1")
        assert os.path.exists(f"{directory}/unrelated")


def test_a_reused_slot_of_the_same_size_only_resets_what_was_used(tmp_path: Path) -> None:
    tree = cgroups.Tree(fake_v1(tmp_path), 42)
    tree.create()
    slot = tree.new_slot()
    fill(slot, "v1")
    limits = cgroups.limits_for(512)
    slot.configure(limits)
    memory, cpu = Path(slot.dirs["memory"]), Path(slot.dirs["cpu"])
    (memory / "memory.limit_in_bytes").write_text("untouched")
    (memory / "memory.max_usage_in_bytes").write_text("123")
    slot.lower_priority()
    assert (cpu / "cpu.shares").read_text() == "2"
    slot.configure(limits)
    assert (memory / "memory.limit_in_bytes").read_text() == "untouched"
    assert (memory / "memory.max_usage_in_bytes").read_text() == "0"
    assert (cpu / "cpu.shares").read_text() == str(limits.cpu_shares)
    assert slot.reusable
    slot.configure(cgroups.limits_for(1024))  # another size: everything is written again
    assert (memory / "memory.limit_in_bytes").read_text() == str(1024 << 20)


def test_the_memory_peak_is_read_from_a_kept_descriptor(tmp_path: Path) -> None:
    peak = tmp_path / "memory.max_usage_in_bytes"
    peak.write_text("1048576\n")
    slot = cgroups.Slot("v1", dict.fromkeys(cgroups.CONTROLLERS, str(tmp_path)), "s1")
    assert slot.peak_bytes() == 1048576
    peak.write_text("2097152\n")  # the kernel rewrites it in place
    assert slot.peak_bytes() == 2097152
    peak.write_text("garbage")
    assert slot.peak_bytes() == 0
    slot.close()
    assert cgroups.Slot("v2", {"memory": str(tmp_path / "gone")}, "s2").peak_bytes() == 0
