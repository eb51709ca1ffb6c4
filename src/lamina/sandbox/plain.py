"""The plain-process sandbox driver: each environment is a process group, nothing more.

It isolates nothing (the function sees the real file system and runs as Lamina's user) and
limits nothing but time; it exists for machines without namespaces and cgroups, and as the
baseline the Linux driver is measured against. Paths are not remapped: the function is told
its real task root through `LAMBDA_TASK_ROOT` and `/tmp` is a private directory via `TMPDIR`.

Exit is watched through a pidfd, so a thousand environments cost no threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess

from lamina.core.ports import SandboxSpec


class PlainProcess:
    __slots__ = ("_exited", "_peak_kb", "_pidfd", "_popen")

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self._peak_kb = 0
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        self._pidfd = os.pidfd_open(popen.pid)
        loop.add_reader(self._pidfd, self._on_exit)

    def __repr__(self) -> str:
        return f"<PlainProcess pid={self.pid} returncode={self.returncode}>"

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def _on_exit(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        returncode = self._popen.wait()
        # Whatever the runtime started dies with it: Lambda resets the whole environment.
        self._kill_group()
        if not self._exited.done():
            self._exited.set_result(returncode)

    async def wait_exit(self) -> int:
        return await asyncio.shield(self._exited)

    def kill(self) -> None:
        self._kill_group()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)

    def memory_used_mb(self) -> int:
        """Peak RSS of the main process, or the summed RSS of its tree if larger."""
        if self._popen.returncode is None:
            self._peak_kb = max(self._peak_kb, _peak_kb(self._popen.pid), _tree_rss_kb(self.pid))
        return (self._peak_kb + 1023) // 1024


class PlainSandboxDriver:
    name = "plain"

    async def start(self, spec: SandboxSpec) -> PlainProcess:
        popen = subprocess.Popen(
            spec.argv,
            env=spec.env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=spec.log_fd,
            stderr=spec.log_fd,
            start_new_session=True,
            close_fds=True,
        )
        return PlainProcess(popen)

    def remaps_paths(self) -> bool:
        return False


def _read(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b""
    try:
        return os.read(fd, 8192)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _field_kb(status: bytes, name: bytes) -> int:
    start = status.find(name)
    if start < 0:
        return 0
    fields = status[start + len(name) : start + len(name) + 32].split()
    return int(fields[0]) if fields else 0


def _peak_kb(pid: int) -> int:
    return _field_kb(_read(f"/proc/{pid}/status"), b"VmHWM:")


def _children(pid: int) -> list[int]:
    return [int(p) for p in _read(f"/proc/{pid}/task/{pid}/children").split()]


def _tree_rss_kb(pid: int) -> int:
    """Summed RSS of the descendants' tree (0 when the process has no children)."""
    children = _children(pid)
    if not children:
        return 0
    total, stack = _field_kb(_read(f"/proc/{pid}/status"), b"VmRSS:"), children
    while stack:
        current = stack.pop()
        total += _field_kb(_read(f"/proc/{current}/status"), b"VmRSS:")
        stack.extend(_children(current))
    return total
