"""The plain driver forks Python runtimes from its spawner, a warm interpreter."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import sys
from pathlib import Path

import pytest

from lamina.core.ports import ExecFailed, SandboxSpec
from lamina.runtimes.python import bootstrap_command, python_for
from lamina.sandbox.plain import PlainProcess, PlainSandboxDriver, SpawnedProcess

PYTHON = python_for(f"python{sys.version_info[0]}.{sys.version_info[1]}")

# Prints where it runs, then blocks (stands in for a runtime waiting on its `next`).
LINGER = """
import os, sys, time
print("pid", os.getpid(), "pgid", os.getpgid(0), "cwd", os.getcwd(), "argv", sys.argv, flush=True)
time.sleep(60)
def handler(event, context):
    return event
"""


def spec(task: Path, log_fd: int, handler: str = "app.handler") -> SandboxSpec:
    return SandboxSpec(
        argv=tuple(bootstrap_command(PYTHON, "/opt")),
        env={
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(task),
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",  # nothing there: `next` fails
        },
        cwd=task,
        task_root=task,
        opt_root=None,
        tmp_dir=task,
        memory_mb=128,
        log_fd=log_fd,
    )


def read_log(fd: int) -> str:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


async def test_a_python_runtime_is_forked_and_its_exit_is_reported(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return event\n")
    driver = PlainSandboxDriver()
    read_fd, write_fd = os.pipe()
    process = await driver.start(spec(tmp_path, write_fd))
    os.close(write_fd)
    assert isinstance(process, SpawnedProcess)
    assert await asyncio.wait_for(process.wait_exit(), 30) == 1
    assert process.returncode == 1
    assert "Failed to get next invocation" in read_log(read_fd)
    os.close(read_fd)
    driver.close()


async def test_killing_the_environment_kills_its_process_group(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(LINGER)
    driver = PlainSandboxDriver()
    read_fd, write_fd = os.pipe()
    process = await driver.start(spec(tmp_path, write_fd))
    os.close(write_fd)
    line = ""
    for _ in range(300):
        line += read_log(read_fd)
        if "\n" in line:
            break
        await asyncio.sleep(0.02)
    words = line.split()
    assert words[1] == str(process.pid) and words[3] == str(process.pid)  # own session
    assert words[5] == str(tmp_path)
    assert process.memory_used_mb() > 0
    process.kill()
    assert await asyncio.wait_for(process.wait_exit(), 30) == -9
    os.close(read_fd)
    driver.close()


async def test_a_start_that_fails_raises_what_exec_would(tmp_path: Path) -> None:
    driver = PlainSandboxDriver()
    read_fd, write_fd = os.pipe()
    with pytest.raises(ExecFailed) as raised:
        await driver.start(spec(tmp_path / "missing", write_fd))
    assert raised.value.errno == errno.ENOENT
    os.close(write_fd)
    os.close(read_fd)
    driver.close()


async def test_other_commands_are_exec_d(tmp_path: Path) -> None:
    driver = PlainSandboxDriver()
    read_fd, write_fd = os.pipe()
    plain = spec(tmp_path, write_fd)
    other = dataclasses.replace(plain, argv=("/bin/sh", "-c", "echo hi"))
    process = await driver.start(other)
    os.close(write_fd)
    assert isinstance(process, PlainProcess)
    assert await asyncio.wait_for(process.wait_exit(), 30) == 0
    os.close(read_fd)
    driver.close()
