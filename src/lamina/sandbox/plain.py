"""The plain-process sandbox driver: each environment is a process group, nothing more.

It isolates nothing (the function sees the real file system and runs as Lamina's user) and
limits nothing but time; it exists for machines without namespaces and cgroups, and as the
baseline the Linux driver is measured against. Paths are not remapped: the function is told
its real task root through `LAMBDA_TASK_ROOT` and `/tmp` is a private directory via `TMPDIR`.

Exit is watched through a pidfd, so a thousand environments cost no threads.

A Python runtime on the interpreter of Lamina's own Python version is not exec'd: a
spawner (spawner.py), a warm interpreter with the runtime loaded, forks it, which saves
most of a cold start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
from typing import Any

from lamina.core.ports import ExecFailed, SandboxSpec
from lamina.runtimes.python import zygote_command, zygote_python
from lamina.runtimes.python.zygote import runs_bootstrap
from lamina.sandbox import jail, spawner
from lamina.sandbox.aio import read_all

log = logging.getLogger("lamina.sandbox")
START_TIMEOUT_S = 10.0


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


class SpawnedProcess:
    """A runtime the spawner forked: its pid, a pidfd and at the end its wait status come
    on its own control socket, whose end of stream means it is gone."""

    __slots__ = ("_ctl", "_exited", "_peak_kb", "_pid", "_pidfd", "_started", "_status")

    def __init__(self, ctl: socket.socket) -> None:
        self._ctl = ctl
        self._pid = 0
        self._pidfd = -1
        self._status: int | None = None
        self._peak_kb = 0
        loop = asyncio.get_running_loop()
        self._started: asyncio.Future[None] = loop.create_future()
        self._exited: asyncio.Future[int] = loop.create_future()
        ctl.setblocking(False)
        loop.add_reader(ctl.fileno(), self._on_message)

    def __repr__(self) -> str:
        return f"<SpawnedProcess pid={self._pid} returncode={self.returncode}>"

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    def _on_message(self) -> None:
        while True:
            try:
                message, fds = jail.receive(self._ctl)
            except BlockingIOError:
                return
            except OSError:
                message, fds = None, []
            if message is None:
                self._ended()
                return
            self._handle(message, fds)

    def _handle(self, message: dict[str, Any], fds: list[int]) -> None:
        if "pid" in message:
            self._pid, self._pidfd = int(message["pid"]), fds[0]
            if not self._started.done():
                self._started.set_result(None)
        elif "exit" in message:
            self._status = int(message["exit"])

    def _ended(self) -> None:
        asyncio.get_running_loop().remove_reader(self._ctl.fileno())
        self._ctl.close()
        if self._pid:
            self._peak_kb = max(self._peak_kb, _peak_kb(self._pid))
        # Whatever the runtime started dies with it: Lambda resets the whole environment.
        self.kill()
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        # No status: the spawner itself is gone.
        status = self._status
        code = os.waitstatus_to_exitcode(status) if status is not None else -signal.SIGKILL
        if not self._started.done():
            self._started.set_exception(OSError("the spawner ended before the runtime started"))
            self._started.exception()
        if not self._exited.done():
            self._exited.set_result(code)

    async def wait_started(self) -> None:
        await asyncio.wait_for(asyncio.shield(self._started), START_TIMEOUT_S)

    async def wait_exit(self) -> int:
        return await asyncio.shield(self._exited)

    def kill(self) -> None:
        if self._pid <= 0:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pid, signal.SIGKILL)
        if self._pidfd >= 0 and not self._exited.done():
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def memory_used_mb(self) -> int:
        if self._pid and not self._exited.done():
            self._peak_kb = max(self._peak_kb, _peak_kb(self._pid), _tree_rss_kb(self._pid))
        return (self._peak_kb + 1023) // 1024


class SpawnerClient:
    """Lamina's side of the spawner: started on first use, restarted if it dies."""

    def __init__(self) -> None:
        self.python = zygote_python()
        self._control: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def warm(self) -> None:
        """Start the spawner now, so that the first cold start finds it ready."""
        self._connect()

    def accepts(self, argv: tuple[str, ...]) -> bool:
        return runs_bootstrap(argv, self.python)

    def _connect(self) -> socket.socket:
        if self._control is not None and self._process is not None:
            if self._process.poll() is None:
                return self._control
            log.warning("the Python spawner exited (%s); starting another", self._process.poll())
            self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv, env = zygote_command(spawner.__file__, theirs.fileno())
        self._process = subprocess.Popen(
            argv,
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C at the terminal is Lamina's to handle
        )
        theirs.close()
        self._control = ours
        return ours

    async def start(self, spec: SandboxSpec) -> SpawnedProcess:
        control = self._connect()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        exec_r, exec_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        process = SpawnedProcess(ours)
        message = {"argv": list(spec.argv), "env": spec.env, "cwd": str(spec.cwd)}
        try:
            jail.send(control, message, [spec.log_fd, exec_w, theirs.fileno()])
        finally:
            os.close(exec_w)
            theirs.close()
        try:
            report = await asyncio.wait_for(read_all(exec_r), START_TIMEOUT_S)
            await process.wait_started()
        except BaseException:
            process.kill()
            raise
        finally:
            os.close(exec_r)
        if report:
            process.kill()
            details = json.loads(report)
            if "errno" in details:
                raise ExecFailed(int(details["errno"]), details["strerror"], details["filename"])
            raise OSError(str(details.get("error", "the spawner failed")))
        return process

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        self._process = None


class PlainSandboxDriver:
    name = "plain"

    def __init__(self, zygote: bool = True) -> None:
        """`zygote`: fork Python runtimes from a warm interpreter (a one-off run gains
        nothing from it)."""
        self._spawner = SpawnerClient() if zygote else None

    def warm_soon(self) -> None:
        if self._spawner is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon(self._spawner.warm)

    async def start(self, spec: SandboxSpec) -> PlainProcess | SpawnedProcess:
        if self._spawner is not None and self._spawner.accepts(spec.argv):
            return await self._spawner.start(spec)
        try:
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
        except OSError as exc:
            # Popen names the file when the child failed to exec (or to enter its cwd).
            if exc.filename is not None:
                raise ExecFailed(exc.errno or 0, exc.strerror or str(exc), exc.filename) from None
            raise
        return PlainProcess(popen)

    def remaps_paths(self) -> bool:
        return False

    def close(self) -> None:
        """Let the spawner go (it kills the runtimes it forked and exits)."""
        if self._spawner is not None:
            self._spawner.close()


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
