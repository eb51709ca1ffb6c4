"""The Linux driver with real processes: start, exit statuses, kills, exec failures, limits.

Code that spawns processes is tested by spawning them. These need root and the kernel
features the sandbox uses (CI runs as root); elsewhere they are skipped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lamina.core.ports import SandboxSpec
from lamina.sandbox import detect, linux, seccomp
from lamina.sandbox.cgroups import Layout

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not detect.support().ok,
    reason="the Linux sandbox needs root, namespaces and cgroups (CI has them)",
)


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[linux.LinuxSandboxDriver]:
    layout = detect.support().layout
    assert isinstance(layout, Layout)
    sandbox = linux.build(tmp_path / "home", layout)
    yield sandbox
    sandbox.close()


def spec(tmp_path: Path, argv: tuple[str, ...], log_fd: int, **kw: object) -> SandboxSpec:
    task = tmp_path / "task"
    task.mkdir(exist_ok=True)
    values: dict[str, object] = {
        "argv": argv,
        "env": {"PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(task)},
        "cwd": task,
        "task_root": task,
        "opt_root": None,
        "tmp_dir": tmp_path / "tmp",
        "memory_mb": 128,
        "log_fd": log_fd,
        **kw,
    }
    return SandboxSpec(**values)  # type: ignore[arg-type]


async def run(driver: linux.LinuxSandboxDriver, tmp_path: Path, script: str) -> tuple[int, str]:
    read_fd, write_fd = os.pipe()
    process = await driver.start(spec(tmp_path, ("/bin/sh", "-c", script), write_fd))
    os.close(write_fd)
    code = await asyncio.wait_for(process.wait_exit(), 20)
    with os.fdopen(read_fd) as output:
        return code, output.read()


async def test_the_runtime_sees_lambdas_paths_and_its_exit_status_is_reported(
    driver: linux.LinuxSandboxDriver, tmp_path: Path
) -> None:
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "hello.txt").write_text("hi")
    code, output = await run(driver, tmp_path, 'echo "$LAMBDA_TASK_ROOT $(pwd) $(id -u)"; exit 3')
    assert code == 3
    assert output == "/var/task /var/task 993\n"


async def test_a_signal_is_reported_as_a_negative_status(
    driver: linux.LinuxSandboxDriver, tmp_path: Path
) -> None:
    # pid 1 ignores signals it has no handler for, even its own: SIGKILL comes from outside.
    read_fd, write_fd = os.pipe()
    process = await driver.start(spec(tmp_path, ("/bin/sleep", "60"), write_fd))
    os.close(write_fd)
    os.close(read_fd)
    process.kill()
    assert await asyncio.wait_for(process.wait_exit(), 20) == -signal.SIGKILL
    process.kill()  # idempotent


async def test_a_runtime_that_cannot_be_executed_is_an_oserror_with_its_sandbox_path(
    driver: linux.LinuxSandboxDriver, tmp_path: Path
) -> None:
    task = tmp_path / "task"
    task.mkdir()
    (task / "bootstrap").write_text("no #! line\n")
    (task / "bootstrap").chmod(0o755)
    read_fd, write_fd = os.pipe()
    with pytest.raises(OSError) as info:
        await driver.start(spec(tmp_path, (str(task / "bootstrap"),), write_fd))
    os.close(read_fd)
    os.close(write_fd)
    assert info.value.filename == "/var/task/bootstrap"
    assert info.value.strerror is not None and "format" in info.value.strerror.lower()


async def test_many_starts_at_once_each_get_a_sandbox(
    driver: linux.LinuxSandboxDriver, tmp_path: Path
) -> None:
    results = await asyncio.gather(*(run(driver, tmp_path, "echo $$") for _ in range(8)))
    assert [code for code, _ in results] == [0] * 8
    assert {output for _, output in results} == {"1\n"}  # each its own pid namespace


async def test_memory_is_measured_in_the_cgroup(
    driver: linux.LinuxSandboxDriver, tmp_path: Path
) -> None:
    read_fd, write_fd = os.pipe()
    # Touch ~40 MB of /tmp (tmpfs is memory, charged to the environment), then wait.
    script = "head -c 40000000 /dev/zero > /tmp/f; echo done; sleep 60"
    process = await driver.start(spec(tmp_path, ("/bin/sh", "-c", script), write_fd))
    os.close(write_fd)
    await asyncio.get_running_loop().run_in_executor(None, os.read, read_fd, 5)
    assert 38 <= process.memory_used_mb() <= 128
    process.kill()
    await process.wait_exit()
    assert process.memory_used_mb() >= 38  # kept after the end, for the REPORT line
    os.close(read_fd)


def test_the_seccomp_filter_refuses_mount_and_new_user_namespaces() -> None:
    script = f"""
import os, sys
sys.path.insert(0, {str(Path(linux.__file__).parents[2])!r})
from lamina.sandbox import seccomp, syscalls
syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
syscalls.load_seccomp(seccomp.build())
for call in (lambda: syscalls.unshare(syscalls.CLONE_NEWUSER),
             lambda: syscalls.mount("none", "/mnt", "tmpfs", 0)):
    try:
        call()
        print("allowed")
    except OSError as exc:
        print(exc.errno)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["1", "1"], done.stderr
    assert len(seccomp.build()) % 8 == 0


def test_close_all_but_keeps_exactly_the_descriptors_asked_for() -> None:
    import json

    script = (
        "import json, os, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from lamina.sandbox import syscalls as sc\n"
        "fds = [os.open('/dev/null', os.O_RDONLY) for _ in range(20)]\n"
        "kept = [fds[3], fds[7], fds[19]]\n"
        "sc.close_all_but(0, 1, 2, *kept)\n"
        "def is_open(fd):\n"
        "    try:\n"
        "        os.fstat(fd)\n"
        "        return True\n"
        "    except OSError:\n"
        "        return False\n"
        "print(json.dumps([[fd for fd in range(64) if is_open(fd)], kept]))\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run([sys.executable, "-c", script, src], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    still_open, kept = json.loads(out.stdout)
    assert still_open == [0, 1, 2, *kept]
