"""An execution environment: one runtime process, its Runtime API endpoint and its log stream.

It serves one invocation at a time (Lambda semantics). Its lifecycle:

    STARTING --(first `next`)--> IDLE <--> BUSY
        any state --(exit, timeout, init error, stop)--> DEAD

Log lines are read from one pipe shared by the process's stdout and stderr, and belong to
the invocation that is running when they are read. Before an invocation's END line is
written, the pipe is drained synchronously, so everything the runtime printed before it
posted its result lands inside START...END.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from lamina.core.errors import InvalidStateTransition
from lamina.core.invocation import (
    Invocation,
    InvocationResult,
    Outcome,
    response_too_large,
    runtime_exited,
    timed_out,
)
from lamina.core.models import FunctionConfig
from lamina.core.ports import (
    RuntimeApiServer,
    RuntimeEndpoint,
    SandboxDriver,
    SandboxProcess,
    SandboxSpec,
)
from lamina.core.runtime_state import RuntimeState, RuntimeStateMachine
from lamina.telemetry.logs import LogSink

InitStatus = Literal["ready", "init_error", "exited", "timeout"]


class EnvState(StrEnum):
    STARTING = "STARTING"
    IDLE = "IDLE"
    BUSY = "BUSY"
    DEAD = "DEAD"


@dataclass(frozen=True, slots=True)
class Launch:
    """Everything needed to start a runtime, except the Runtime API address."""

    argv: tuple[str, ...]
    env: dict[str, str]
    task_root: Path
    opt_root: Path | None
    run_dir: Path  # private to this environment; holds its /tmp
    stream: str
    socket_dir: Path | None = None  # shared with the process (e.g. php-fpm's socket)


class ExecutionEnvironment:
    def __init__(
        self, function: FunctionConfig, launch: Launch, sink: LogSink, key: tuple[str, ...]
    ) -> None:
        self.function = function
        self.launch = launch
        self.key = key
        self.stream = launch.stream
        self.state = EnvState.STARTING
        self.last_used = 0.0
        self.init_duration_ms: float | None = None
        self.init_error: tuple[bytes, str] | None = None
        self.invocations = 0
        self.stale = False  # its function changed: retire it when its invocation ends
        self._sink = sink
        self._runtime = RuntimeStateMachine()
        self._process: SandboxProcess | None = None
        self._endpoint: RuntimeEndpoint | None = None
        self._log_fd = -1
        self._partial = b""
        self._started_at = 0.0
        # Kept: asyncio.get_running_loop() costs a getpid() on each call (Python 3.11).
        self._loop = loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[InitStatus] = loop.create_future()
        self._waiter: asyncio.Future[Invocation] | None = None
        self._queued: Invocation | None = None
        self._current: Invocation | None = None
        self._result: asyncio.Future[InvocationResult] | None = None
        self._lines: list[str] = []
        self._capturing = False
        self._invocation_started = 0.0

    def __repr__(self) -> str:
        pid = self._process.pid if self._process else None
        return (
            f"<ExecutionEnvironment {self.function.name} {self.function.version} "
            f"{self.state} pid={pid}>"
        )

    def statistics(self) -> dict[str, object]:
        return {
            "function": self.function.name,
            "version": self.function.version,
            "state": str(self.state),
            "pid": self._process.pid if self._process else None,
            "invocations": self.invocations,
            "init_duration_ms": self.init_duration_ms,
            "stream": self.stream,
        }

    @property
    def alive(self) -> bool:
        return self.state is not EnvState.DEAD

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process else None

    # starting and stopping

    async def start(self, driver: SandboxDriver, runtime_api: RuntimeApiServer) -> None:
        self._started_at = time.perf_counter()
        tmp = self.launch.run_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        self._endpoint = await runtime_api.open(self)
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        self._log_fd = read_fd
        asyncio.get_running_loop().add_reader(read_fd, self._read_logs)
        env = {**self.launch.env, "AWS_LAMBDA_RUNTIME_API": self._endpoint.address}
        spec = SandboxSpec(
            argv=self.launch.argv,
            env=env,
            cwd=self.launch.task_root,
            task_root=self.launch.task_root,
            opt_root=self.launch.opt_root,
            tmp_dir=tmp,
            memory_mb=self.function.memory_size,
            log_fd=write_fd,
            socket_dir=self.launch.socket_dir,
            timeout_s=float(self.function.timeout),
        )
        try:
            self._process = await driver.start(spec)
        except BaseException:
            os.close(write_fd)
            self.stop()
            raise
        os.close(write_fd)
        asyncio.get_running_loop().create_task(self._watch_exit(self._process))

    async def _watch_exit(self, process: SandboxProcess) -> None:
        returncode = await process.wait_exit()
        self._drain_logs()
        self.state = EnvState.DEAD
        if not self._ready.done():
            self._ready.set_result("exited")
        if self._result is not None and not self._result.done():
            request_id = self._current.request_id if self._current else ""
            self._result.set_result(runtime_exited(request_id, returncode))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()
        self.stop()

    def stop(self) -> None:
        """Kill the runtime and everything it started; release the endpoint. Idempotent."""
        self.state = EnvState.DEAD
        if self._process is not None:
            self._process.kill()
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None
        if self._log_fd >= 0:
            self._drain_logs()
            asyncio.get_running_loop().remove_reader(self._log_fd)
            os.close(self._log_fd)
            self._log_fd = -1
        if not self._ready.done():
            self._ready.set_result("exited")
        shutil.rmtree(self.launch.run_dir, ignore_errors=True)

    def init_elapsed_ms(self) -> float:
        return (time.perf_counter() - self._started_at) * 1000

    async def wait_initialized(self, timeout: float) -> InitStatus:
        """Wait for the init phase to end: first `next`, init error, exit, or `timeout` s."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError:
            return "timeout"

    # invoking

    async def invoke(self, invocation: Invocation, timeout_s: float) -> InvocationResult:
        self.state = EnvState.BUSY
        self.invocations += 1
        self._current = invocation
        result: asyncio.Future[InvocationResult] = self._loop.create_future()
        self._result = result
        if self._waiter is not None and not self._waiter.done():
            self._deliver(self._waiter, invocation)
        else:
            self._queued = invocation
        timer = self._loop.call_later(timeout_s, self._on_timeout, timeout_s)
        try:
            return await result
        finally:
            timer.cancel()
            # Whatever the runtime printed before it posted its result is in the pipe by now.
            self._drain_logs()
            self._current = None
            self._queued = None
            self._result = None
            if self.state is EnvState.BUSY:
                self.state = EnvState.IDLE

    def _deliver(self, waiter: asyncio.Future[Invocation], invocation: Invocation) -> None:
        self._runtime.deliver(invocation.request_id)
        waiter.set_result(invocation)

    def _on_timeout(self, timeout_s: float) -> None:
        if self._result is None or self._result.done() or self._current is None:
            return
        self._drain_logs()
        self._result.set_result(timed_out(self._current.request_id, timeout_s))
        self.stop()

    def _complete(self, result: InvocationResult) -> None:
        if self._result is not None and not self._result.done():
            self._result.set_result(result)  # `invoke` drains the log pipe as it resumes

    # the Runtime API side (RuntimeTarget)

    async def wait_next(self) -> Invocation:
        return await self.next_invocation()

    def next_invocation(self) -> asyncio.Future[Invocation]:
        """`next` as a future: resolved at once when an invocation is queued, else when one
        is delivered; cancelling it withdraws the request. (The runtime channel waits on it
        with a callback rather than a task per invocation.) Raises on an invalid state."""
        if self._waiter is not None and not self._waiter.done():
            raise InvalidStateTransition("a `next` request is already waiting")
        first = self._runtime.state is RuntimeState.STARTING
        self._runtime.next()
        if first:
            self.init_duration_ms = (time.perf_counter() - self._started_at) * 1000
            if self.state is EnvState.STARTING:
                self.state = EnvState.IDLE
            if not self._ready.done():
                self._ready.set_result("ready")
        waiter: asyncio.Future[Invocation] = self._loop.create_future()
        queued, self._queued = self._queued, None
        if queued is not None:
            self._runtime.deliver(queued.request_id)
            waiter.set_result(queued)
        else:
            self._waiter = waiter
        return waiter

    def post_response(self, request_id: str, body: bytes, content_type: str) -> None:
        self._runtime.respond(request_id)
        self._complete(InvocationResult(Outcome.SUCCESS, body, content_type))

    def post_error(self, request_id: str, body: bytes, content_type: str) -> None:
        self._runtime.error(request_id)
        self._complete(InvocationResult(Outcome.ERROR, body, _json_type(content_type)))

    def post_init_error(self, body: bytes, content_type: str) -> None:
        self._runtime.init_error()
        self.init_error = (body, _json_type(content_type))
        if not self._ready.done():
            self._ready.set_result("init_error")

    def post_too_large(self) -> None:
        current = self._current
        if current is not None and self._runtime.state is RuntimeState.INVOKING:
            self._runtime.respond(current.request_id)
            self._complete(response_too_large())

    # logs

    def platform_log(self, message: str) -> None:
        """A line written by the platform (START, END, REPORT...) into this stream."""
        self._emit(message)

    @property
    def capturing(self) -> bool:
        return self._capturing

    def begin_invocation_log(self, start_line: str) -> None:
        """Start collecting this invocation's lines (for `X-Amz-Log-Result`) and its clock."""
        self._capturing = True
        self._lines = []
        self._invocation_started = time.perf_counter()
        self._emit(start_line)

    def invocation_duration_ms(self) -> float:
        return (time.perf_counter() - self._invocation_started) * 1000

    def end_invocation_log(self) -> list[str]:
        lines, self._lines = self._lines, []
        self._capturing = False
        return lines

    def _emit(self, message: str) -> None:
        self._sink.emit(self.function.name, self.stream, int(time.time() * 1000), message)
        if self._capturing:
            self._lines.append(message)

    def _read_logs(self) -> None:
        try:
            data = os.read(self._log_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self._log_fd)
            if self._partial:
                self._emit(self._partial.decode(errors="replace"))
                self._partial = b""
            return
        self._split(data)

    def _split(self, data: bytes) -> None:
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            self._emit(line.decode(errors="replace"))

    def _drain_logs(self) -> None:
        if self._log_fd < 0:
            return
        while True:
            try:
                data = os.read(self._log_fd, 65536)
            except (BlockingIOError, OSError):
                return
            if not data:
                if self._partial:
                    self._emit(self._partial.decode(errors="replace"))
                    self._partial = b""
                return
            self._split(data)

    def memory_used_mb(self) -> int:
        return self._process.memory_used_mb() if self._process else 0


def _json_type(content_type: str) -> str:
    # The Invoke API always answers application/json for function errors.
    return "application/json" if "json" in content_type else content_type
