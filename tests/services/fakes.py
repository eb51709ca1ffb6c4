"""In-memory fakes for testing the services layer without processes, sockets or sleeps.

- `FakeSandboxDriver` starts `FakeProcess`es: a pid, an exit future the test resolves with
  `exit(code)`, a `kill()` that records itself and exits with -9, a settable memory figure,
  and (like a real process) its own copy of the log pipe's write end, so it can `print`.
- `FakeRuntimeApi` hands out endpoints with a made-up address and remembers which execution
  environment each one serves.
- `FakeRuntime` is what a runtime process does with its Runtime API: when the driver starts
  a process, a `FakeRuntime` "connects" to the address in `AWS_LAMBDA_RUNTIME_API` and plays
  its `Script` (init, then one reply per invocation).
- `LoopTimeWarp` moves the event loop's clock, so real loop timers (the invocation deadline,
  `wait_for`) fire without waiting; the platform's own `FakeClock` drives keep-alive and
  backoff.
- `Harness` wires them into a real `Pool`, `Launcher` and `InvokeService`.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import itertools
import os
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lamina.config import Settings
from lamina.core.clock import FakeClock
from lamina.core.invocation import Invocation
from lamina.core.models import Account, FunctionConfig, LogEvent
from lamina.core.ports import ExecFailed, RuntimeTarget, SandboxSpec
from lamina.core.scheduling import Ledger
from lamina.services.environment import ExecutionEnvironment
from lamina.services.invoke import InvokeResponse, InvokeService
from lamina.services.launch import Launcher
from lamina.services.pool import Pool
from lamina.services.registry import DeployedFunction, Registry
from lamina.telemetry.logs import LogSink

ERROR_BODY = b'{"errorType": "ValueError", "errorMessage": "bad input"}'
INIT_ERROR_BODY = (
    b'{"errorType": "Runtime.ImportModuleError", '
    b"\"errorMessage\": \"Unable to import module 'app': No module named 'app'\"}"
)


# processes


class FakeProcess:
    def __init__(self, pid: int, spec: SandboxSpec) -> None:
        self.pid = pid
        self.spec = spec
        self.returncode: int | None = None
        self.kills = 0
        self.memory_mb = 0
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        # A real process holds its own copy of the pipe's write end; the platform closes its.
        self._log_fd: int | None = os.dup(spec.log_fd)

    def __repr__(self) -> str:
        return f"<FakeProcess pid={self.pid} returncode={self.returncode} kills={self.kills}>"

    @property
    def killed(self) -> bool:
        return self.kills > 0

    async def wait_exit(self) -> int:
        return await asyncio.shield(self._exited)

    def exit(self, code: int) -> None:
        """The process ends on its own with `code` (negative: killed by that signal)."""
        if self.returncode is not None:
            return
        self.returncode = code
        self._close_log()
        self._exited.set_result(code)

    def kill(self) -> None:
        self.kills += 1
        self.exit(-9)

    def memory_used_mb(self) -> int:
        return self.memory_mb

    def print(self, text: str) -> None:
        """Write to stdout/stderr (the environment's log pipe), as the function would."""
        assert self._log_fd is not None, f"{self} has exited"
        os.write(self._log_fd, text.encode())

    def _close_log(self) -> None:
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None


# the runtime side of the Runtime API


@dataclass(frozen=True)
class Respond:
    body: bytes = b'{"ok": true}'
    content_type: str = "application/json"


@dataclass(frozen=True)
class Fail:
    body: bytes = ERROR_BODY
    content_type: str = "application/json"


@dataclass(frozen=True)
class Exit:
    code: int = 1


@dataclass(frozen=True)
class Hang:
    """Never answer (and never ask for more work)."""


Reply = Respond | Fail | Exit | Hang
Handler = Callable[["FakeRuntime", Invocation], "Reply | Awaitable[Reply]"]


def echo(runtime: FakeRuntime, invocation: Invocation) -> Reply:
    return Respond(invocation.payload)


@dataclass
class Script:
    """What one runtime process does.

    init: "ready" asks for work with `next`; "init_error" posts an init error; "hang" never
    calls `next`; "exit" exits with `exit_code` before calling `next`.
    """

    init: Literal["ready", "init_error", "hang", "exit"] = "ready"
    handler: Handler = echo
    init_output: str = ""  # printed before init ends
    init_error: bytes = INIT_ERROR_BODY
    exit_code: int = 1


class FakeRuntime:
    def __init__(self, target: RuntimeTarget, process: FakeProcess, script: Script) -> None:
        self.target = target
        self.process = process
        self.script = script
        self.invocations: list[Invocation] = []
        self.task = asyncio.create_task(self._run(), name=f"fake-runtime-{process.pid}")

    def __repr__(self) -> str:
        return f"<FakeRuntime pid={self.process.pid} invocations={len(self.invocations)}>"

    async def _run(self) -> None:
        script = self.script
        if script.init_output:
            self.process.print(script.init_output)
        if script.init == "hang":
            return
        if script.init == "init_error":
            self.target.post_init_error(script.init_error, "application/json")
            return
        if script.init == "exit":
            self.process.exit(script.exit_code)
            return
        while True:
            try:
                invocation = await self.target.wait_next()
            except asyncio.CancelledError:
                return  # the environment is gone: its `next` was dropped
            self.invocations.append(invocation)
            reply = script.handler(self, invocation)
            if inspect.isawaitable(reply):
                reply = await reply
            match reply:
                case Respond(body, content_type):
                    self.target.post_response(invocation.request_id, body, content_type)
                case Fail(body, content_type):
                    self.target.post_error(invocation.request_id, body, content_type)
                case Exit(code):
                    self.process.exit(code)
                    return
                case Hang():
                    return


class FakeEndpoint:
    def __init__(self, address: str, target: RuntimeTarget) -> None:
        self.address = address
        self.target = target
        self.closes = 0

    def __repr__(self) -> str:
        return f"<FakeEndpoint {self.address} closed={self.closed}>"

    @property
    def closed(self) -> bool:
        return self.closes > 0

    def close(self) -> None:
        self.closes += 1


class FakeRuntimeApi:
    def __init__(self) -> None:
        self.endpoints: list[FakeEndpoint] = []
        self._ports = itertools.count(9001)

    async def open(self, target: RuntimeTarget) -> FakeEndpoint:
        endpoint = FakeEndpoint(f"127.0.0.1:{next(self._ports)}", target)
        self.endpoints.append(endpoint)
        return endpoint

    @property
    def targets(self) -> list[RuntimeTarget]:
        return [e.target for e in self.endpoints]

    def endpoint_at(self, address: str) -> FakeEndpoint:
        for endpoint in self.endpoints:
            if endpoint.address == address:
                return endpoint
        raise KeyError(f"no endpoint at {address}")

    def endpoint_of(self, target: RuntimeTarget) -> FakeEndpoint:
        for endpoint in self.endpoints:
            if endpoint.target is target:
                return endpoint
        raise KeyError(f"no endpoint for {target}")


class FakeSandboxDriver:
    """Starts `FakeProcess`es; with a `FakeRuntimeApi`, each one also runs a `FakeRuntime`
    playing the next of `scripts` (else `default_script`; None: no runtime at all)."""

    name = "fake"

    def __init__(self, runtime_api: FakeRuntimeApi | None = None) -> None:
        self.runtime_api = runtime_api
        self.specs: list[SandboxSpec] = []
        self.processes: list[FakeProcess] = []
        self.runtimes: list[FakeRuntime] = []
        self.scripts: deque[Script | None] = deque()
        self.default_script: Script | None = Script()
        self.fail_starts = 0  # the next N starts raise OSError
        self.crash_starts = 0  # the next N starts raise a platform fault (not an OSError)
        self.starved_starts = 0  # the next N starts run out of descriptors (the platform's)
        self._pids = itertools.count(4001)

    def __repr__(self) -> str:
        return f"<FakeSandboxDriver started={len(self.processes)}>"

    async def start(self, spec: SandboxSpec) -> FakeProcess:
        self.specs.append(spec)
        if self.fail_starts > 0:
            self.fail_starts -= 1
            raise ExecFailed(errno.ENOENT, "No such file or directory", spec.argv[0])
        if self.starved_starts > 0:
            self.starved_starts -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        if self.crash_starts > 0:
            self.crash_starts -= 1
            raise RuntimeError("the sandbox driver failed")
        process = FakeProcess(next(self._pids), spec)
        self.processes.append(process)
        script = self.scripts.popleft() if self.scripts else self.default_script
        if script is not None and self.runtime_api is not None:
            endpoint = self.runtime_api.endpoint_at(spec.env["AWS_LAMBDA_RUNTIME_API"])
            self.runtimes.append(FakeRuntime(endpoint.target, process, script))
        return process

    def remaps_paths(self) -> bool:
        return False

    def process(self, pid: int) -> FakeProcess:
        return next(p for p in self.processes if p.pid == pid)

    def runtime(self, pid: int) -> FakeRuntime:
        return next(r for r in self.runtimes if r.process.pid == pid)

    def pid_that_served(self, request_id: str) -> int:
        for runtime in self.runtimes:
            if any(i.request_id == request_id for i in runtime.invocations):
                return runtime.process.pid
        raise KeyError(f"no runtime received {request_id}")

    async def close(self) -> None:
        for runtime in self.runtimes:
            runtime.task.cancel()
        await asyncio.gather(*(r.task for r in self.runtimes), return_exceptions=True)
        for process in self.processes:
            process.kill()


# logs


class MemoryLogStore:
    """The part of `Store` that `LogSink` uses, kept in a list."""

    def __init__(self) -> None:
        self.events: list[LogEvent] = []

    def append_logs(self, events: Sequence[LogEvent]) -> None:
        self.events.extend(events)


# time


class LoopTimeWarp:
    """Moves the running event loop's clock forward, so that loop timers (`call_later`,
    `wait_for`) come due at once instead of after real time has passed."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, asyncio.BaseEventLoop), f"cannot warp {loop!r}"
        self._loop = loop
        self._real_time = loop.time
        self.offset = 0.0
        loop.time = self._time  # type: ignore[method-assign]

    def _time(self) -> float:
        return self._real_time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def close(self) -> None:
        del self._loop.time


# the services, wired


async def settle(predicate: Callable[[], bool] | None = None, ticks: int = 200) -> None:
    """Let the loop run (no time passes) until `predicate` holds, or `ticks` iterations."""
    for _ in range(ticks):
        if predicate is not None and predicate():
            return
        await asyncio.sleep(0)
    if predicate is not None:
        assert predicate(), f"still false after {ticks} loop iterations"


class Harness:
    """A real Pool, Launcher and InvokeService on fakes. Use as `async with Harness(...)`."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        memory_budget_mb: int = 1024,
        account_limit: int = 100,
        keep_alive: float = 60.0,
        init_timeout: float = 1.0,
        random: Callable[[], float] | None = None,
    ) -> None:
        self.tmp_path = tmp_path
        self.account = Account()
        self.clock = FakeClock()
        self.ledger = Ledger(account_limit, memory_budget_mb)
        self.logs = MemoryLogStore()
        self.sink = LogSink(self.logs)  # type: ignore[arg-type]
        self.runtime_api = FakeRuntimeApi()
        self.driver = FakeSandboxDriver(self.runtime_api)
        self.launcher = Launcher(Settings(home=tmp_path), self.account, "http://127.0.0.1:1")
        # `random`: the draws that pick a weighted alias's version.
        self.registry = Registry(self.account) if random is None else Registry(self.account, random)
        self.pool = Pool(
            ledger=self.ledger,
            clock=self.clock,
            launcher=self.launcher,
            driver=self.driver,
            runtime_api=self.runtime_api,
            sink=self.sink,
            keep_alive=keep_alive,
        )
        self.invoker = InvokeService(
            registry=self.registry,
            pool=self.pool,
            sink=self.sink,
            clock=self.clock,
            account=self.account,
            init_timeout=init_timeout,
        )
        self.warp = LoopTimeWarp()
        self._tasks: list[asyncio.Task[InvokeResponse]] = []

    async def __aenter__(self) -> Harness:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pool.close()
        await self.driver.close()
        await settle()  # let the environments' exit watchers finish
        self.warp.close()

    # functions

    def deploy(
        self,
        name: str = "fn",
        *,
        memory: int = 128,
        timeout: int = 3,
        reserved: int | None = None,
        revision: str = "r1",
        runtime: str = "python3.11",
    ) -> DeployedFunction:
        code_dir = self.tmp_path / "code" / name
        code_dir.mkdir(parents=True, exist_ok=True)
        (code_dir / "app.py").write_text("def handler(event, context):\n    return event\n")
        config = FunctionConfig(
            name=name,
            runtime=runtime,
            handler="app.handler",
            code_sha256="0" * 64,
            code_size=0,
            memory_size=memory,
            timeout=timeout,
            reserved_concurrency=reserved,
            revision_id=revision,
        )
        deployed = DeployedFunction(config, code_dir, None)
        self.registry.put(deployed)
        self.ledger.set_reservation(name, reserved)
        return deployed

    # invoking

    async def invoke(
        self, name: str = "fn", payload: bytes = b"{}", request_id: str | None = None
    ) -> InvokeResponse:
        return await self.invoker.invoke(name, None, payload, request_id=request_id)

    def start_invoke(
        self, name: str = "fn", payload: bytes = b"{}", request_id: str | None = None
    ) -> asyncio.Task[InvokeResponse]:
        """An invocation running in the background (cancelled at close if unfinished)."""
        task = asyncio.create_task(self.invoke(name, payload, request_id))
        self._tasks.append(task)
        return task

    def received(self) -> list[str]:
        """Request ids every runtime has received, in order per runtime."""
        return [i.request_id for r in self.driver.runtimes for i in r.invocations]

    def pid_that_served(self, request_id: str) -> int:
        return self.driver.pid_that_served(request_id)

    # observing

    def environment(self, pid: int) -> ExecutionEnvironment:
        for target in self.runtime_api.targets:
            assert isinstance(target, ExecutionEnvironment)
            if target.statistics()["pid"] == pid:
                return target
        raise KeyError(f"no environment with pid {pid}")

    def live_pids(self, function_name: str | None = None) -> set[int]:
        return {e.statistics()["pid"] for e in self.pool.environments(function_name)}  # type: ignore[misc]

    async def log_lines(self, function_name: str | None = None) -> list[str]:
        await self.sink.flush()
        return [
            e.message
            for e in self.logs.events
            if function_name is None or e.function_name == function_name
        ]

    async def log_events(self) -> list[LogEvent]:
        await self.sink.flush()
        return list(self.logs.events)


@dataclass
class Gate:
    """A handler that holds each invocation until the test opens the gate."""

    reply: Reply = field(default_factory=Respond)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0

    async def __call__(self, runtime: FakeRuntime, invocation: Invocation) -> Reply:
        self.waiting += 1
        try:
            await self.opened.wait()
        finally:
            self.waiting -= 1
        return self.reply

    def open(self) -> None:
        self.opened.set()
