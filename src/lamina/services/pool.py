"""The execution environments of the node: reuse, scale-out, keep-alive and eviction.

Idle environments of a function are kept on a stack: the most recently used is reused first
(its caches are warm). Admission (concurrency, memory) is decided by `core.scheduling`.

How long an idle environment stays loaded is the keep-alive policy's decision
(`core.keepalive`), asked at the end of every invocation: keep this environment for a
window, or unload it and load one again ahead of the expected next invocation (a pre-warm,
started by the reaper when it is due). Either way the reaper retires an idle environment
whose window has run out.

Provisioned environments (`services.provisioned` decides how many of which version) live
here too, on stacks of their own: invocations of their version take them first, and the
reaper and the memory-budget eviction never touch them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

import orjson

from lamina.core.clock import Clock
from lamina.core.errors import LaminaError, TooManyRequestsException
from lamina.core.keepalive import Decision, FixedKeepAlive, KeepAlivePolicy
from lamina.core.ports import RuntimeApiServer, SandboxDriver
from lamina.core.scheduling import RATE_EXCEEDED, Ledger, choose_evictions, expired_each
from lamina.services.environment import EnvState, ExecutionEnvironment
from lamina.services.fpm import FpmEnvironment
from lamina.services.launch import EntrypointMissing, Launcher
from lamina.services.registry import DeployedFunction, Registry
from lamina.telemetry.logs import LogSink
from lamina.wire import logs as log_lines

log = logging.getLogger(__name__)

Key = tuple[str, ...]


class StartFailed(Exception):
    """An environment started ahead of an invocation did not become ready (it is retired)."""


class Pool:
    def __init__(
        self,
        *,
        ledger: Ledger,
        clock: Clock,
        launcher: Launcher,
        driver: SandboxDriver,
        runtime_api: RuntimeApiServer,
        sink: LogSink,
        keep_alive: float,
        policy: KeepAlivePolicy | None = None,
        init_timeout: float = 10.0,
        registry: Registry | None = None,
    ) -> None:
        self.ledger = ledger
        self._clock = clock
        self._launcher = launcher
        self._driver = driver
        self._runtime_api = runtime_api
        self._sink = sink
        self.keep_alive = keep_alive
        self.policy: KeepAlivePolicy = policy or FixedKeepAlive(keep_alive)
        self.init_timeout = init_timeout
        # Tells whether a pre-warm is still wanted (its version may have been deleted).
        self.registry = registry
        self._idle: dict[Key, list[ExecutionEnvironment]] = {}
        # An idle on-demand environment -> (idle since, its keep-alive window).
        self._windows: dict[ExecutionEnvironment, tuple[float, float]] = {}
        self._live: set[ExecutionEnvironment] = set()
        self._provisioned: dict[Key, set[ExecutionEnvironment]] = {}  # any state
        self._provisioned_idle: dict[Key, list[ExecutionEnvironment]] = {}
        self._deployed: dict[Key, DeployedFunction] = {}  # what each key's environments run
        self._prewarm_due: dict[Key, tuple[float, float]] = {}  # key -> (when, window)
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self.cold_starts = 0
        self.prewarms = 0
        self.prewarm_failures = 0

    def __repr__(self) -> str:
        idle = sum(len(stack) for stack in self._idle.values())
        provisioned = sum(len(envs) for envs in self._provisioned.values())
        return (
            f"<Pool live={len(self._live)} idle={idle} provisioned={provisioned} "
            f"policy={self.policy.name}>"
        )

    def statistics(self) -> dict[str, object]:
        return {
            "live": len(self._live),
            "idle": sum(len(stack) for stack in self._idle.values()),
            "provisioned": sum(len(envs) for envs in self._provisioned.values()),
            "in_flight": dict(self.ledger.in_flight),
            "memory_in_use_mb": self.ledger.memory_in_use_mb,
            "memory_budget_mb": self.ledger.memory_budget_mb,
            "cold_starts": self.cold_starts,
            "keep_alive": self.policy.statistics(),
            "prewarms": self.prewarms,
            "prewarm_failures": self.prewarm_failures,
            "prewarms_pending": len(self._prewarm_due),
        }

    def environments(self, function_name: str | None = None) -> list[ExecutionEnvironment]:
        return [e for e in self._live if function_name in (None, e.function.name)]

    # acquire / release

    def admit(self, function_name: str) -> None:
        self.ledger.admit(function_name)

    def take_idle(self, deployed: DeployedFunction) -> ExecutionEnvironment | None:
        """An invocation of `deployed` starts: a provisioned environment of it if one is idle,
        else the most recently used idle on-demand one, else None (a cold start)."""
        key = deployed.key
        self.policy.invocation_started(key, self._clock.monotonic())
        # The invocation came before the pre-warm: its end decides again.
        self._prewarm_due.pop(key, None)
        for stack in (self._provisioned_idle.get(key), self._idle.get(key)):
            while stack:
                env = stack.pop()
                self._windows.pop(env, None)
                if env.alive:
                    env.state = EnvState.BUSY
                    return env
                self._forget(env)
        return None

    async def start_new(
        self, deployed: DeployedFunction, *, provisioned: bool = False, ahead: bool = False
    ) -> ExecutionEnvironment:
        """Start a new environment. Raises 429 if memory is short even after evicting idle
        on-demand environments (least recently used first; provisioned ones never).

        For an invocation the caller was admitted; `ahead` starts (pre-warms, provisioned
        concurrency) are not cold starts of an invocation and are not counted as such.
        """
        memory = deployed.config.memory_size
        shortfall = self.ledger.memory_shortfall(memory)
        if shortfall:
            idle = [
                (env, env.last_used, env.function.memory_size)
                for stack in self._idle.values()
                for env in stack
            ]
            victims = choose_evictions(idle, shortfall)
            if victims is None:
                raise TooManyRequestsException(
                    RATE_EXCEEDED, reason="ConcurrentInvocationLimitExceeded"
                )
            for victim in victims:
                self.retire(victim)
        launch = self._launcher.launch(
            deployed, "provisioned-concurrency" if provisioned else "on-demand"
        )
        # The launcher gave a PHP-FPM function a socket directory: Lamina speaks FastCGI
        # to its php-fpm instead of serving a Runtime API to a bootstrap.
        kind = FpmEnvironment if launch.socket_dir is not None else ExecutionEnvironment
        env = kind(deployed.config, launch, self._sink, deployed.key)
        self._live.add(env)
        self.ledger.memory_in_use_mb += memory
        self._deployed[deployed.key] = deployed
        if provisioned:
            self._provisioned.setdefault(deployed.key, set()).add(env)
        if not (ahead or provisioned):
            self.cold_starts += 1
        try:
            await env.start(self._driver, self._runtime_api)
        except BaseException:
            self.retire(env)
            raise
        return env

    def release(self, function_name: str, env: ExecutionEnvironment | None, reuse: bool) -> None:
        """End an invocation: the environment goes back to idle, or is retired."""
        self.ledger.finish(function_name)
        if env is None:
            return
        now = self._clock.monotonic()
        # A retired function's key (no longer deployed) will not be invoked again.
        current = env.key in self._deployed
        decision = self.policy.invocation_ended(env.key, now) if current else Decision(0.0)
        usable = reuse and env.alive and env in self._live and not env.stale
        if env in self._provisioned.get(env.key, ()):
            if usable:
                env.state = EnvState.IDLE
                env.last_used = now
                self._provisioned_idle.setdefault(env.key, []).append(env)
            else:
                self.retire(env)  # the provisioned service starts its replacement
            return
        window = decision.keep_this()
        due = decision.pre_warm_at(now)
        if due is not None:
            self._prewarm_due[env.key] = (due, decision.keep_alive)
        if not usable or window <= 0:
            self.retire(env)
            return
        self._park(env, now, window)

    def retire(self, env: ExecutionEnvironment) -> None:
        for stacks in (self._idle, self._provisioned_idle):
            stack = stacks.get(env.key)
            if stack is not None and env in stack:
                stack.remove(env)
        self._forget(env)
        env.stop()

    def _forget(self, env: ExecutionEnvironment) -> None:
        if env in self._live:
            self._live.discard(env)
            self.ledger.memory_in_use_mb -= env.function.memory_size
        self._windows.pop(env, None)
        provisioned = self._provisioned.get(env.key)
        if provisioned is not None:
            provisioned.discard(env)
            if not provisioned:
                del self._provisioned[env.key]
        for stacks in (self._idle, self._provisioned_idle):
            stack = stacks.get(env.key)
            if stack is not None and not stack:
                del stacks[env.key]

    def _park(self, env: ExecutionEnvironment, now: float, window: float) -> None:
        env.state = EnvState.IDLE
        env.last_used = now
        self._idle.setdefault(env.key, []).append(env)
        self._windows[env] = (now, window)

    def retire_function(self, function_name: str) -> None:
        """Drop idle environments of a function whose code or configuration changed.

        Busy ones finish their invocation and are retired on release, because their key
        (which includes the revision) no longer matches anything that will be invoked.
        Provisioned environments run a published version, which never changes: the
        provisioned concurrency service keeps or releases them.
        """
        provisioned = {e for envs in self._provisioned.values() for e in envs}
        for env in self._live:
            if env.function.name == function_name and env not in provisioned:
                env.stale = True
        for key in [k for k in self._idle if k[0] == function_name]:
            for env in list(self._idle.get(key, [])):
                self.retire(env)
        for key in [k for k in self._deployed if k[0] == function_name]:
            if key not in self._provisioned:
                del self._deployed[key]
                self._prewarm_due.pop(key, None)
                self.policy.forget(key)

    # provisioned concurrency (driven by services.provisioned)

    def provisioned(self, key: Key) -> list[ExecutionEnvironment]:
        """The initialised, live provisioned environments of `key` (idle or busy)."""
        envs = self._provisioned.get(key, set())
        for env in [e for e in envs if not e.alive]:
            self.retire(env)  # died: gives its memory back; its replacement is started
        return [e for e in self._provisioned.get(key, ()) if e.state is not EnvState.STARTING]

    def provisioned_keys(self) -> list[Key]:
        return list(self._provisioned)

    def provision(self, env: ExecutionEnvironment) -> None:
        """A provisioned environment finished its init: invocations may take it now."""
        if env.alive and env in self._provisioned.get(env.key, ()):
            env.state = EnvState.IDLE
            self._provisioned_idle.setdefault(env.key, []).append(env)
        else:
            self.retire(env)

    def unprovision(self, env: ExecutionEnvironment) -> None:
        """Provisioned concurrency no longer wants `env`: retired now, or (busy) when its
        invocation ends."""
        envs = self._provisioned.get(env.key)
        if envs is not None:
            envs.discard(env)
            if not envs:
                del self._provisioned[env.key]
        if env.state is EnvState.BUSY:
            env.stale = True
        else:
            self.retire(env)

    # starting ahead of an invocation (pre-warms, provisioned concurrency)

    async def start_ahead(
        self, deployed: DeployedFunction, *, provisioned: bool
    ) -> ExecutionEnvironment:
        """Start an environment and run its init now, before any invocation needs it.
        Raises StartFailed (saying why) when it does not become ready."""
        try:
            env = await self.start_new(deployed, provisioned=provisioned, ahead=True)
        except TooManyRequestsException:
            raise StartFailed(
                f"not enough memory: {deployed.config.memory_size} MB do not fit in the "
                f"node's memory budget ({self.ledger.memory_budget_mb} MB) beside the "
                "environments in use"
            ) from None
        except EntrypointMissing as missing:
            raise StartFailed(f"no executable bootstrap in {missing.looked_at}") from None
        except OSError as exc:
            raise StartFailed(f"cannot start the runtime: {exc}") from None
        env.platform_log(_init_start_line(env))
        status = await env.wait_initialized(self.init_timeout)
        if status == "ready" and env.alive:
            return env
        if status == "timeout":
            env.platform_log(log_lines.init_report_line(self.init_timeout * 1000, "timeout"))
            reason = f"init did not finish within {self.init_timeout:g} s"
        elif status == "init_error":
            env.platform_log(log_lines.init_report_line(env.init_elapsed_ms(), "error"))
            reason = f"init failed: {_error_type(env.init_error)}"
        else:
            reason = f"the runtime exited during init (exit code {env.returncode})"
        self.retire(env)
        raise StartFailed(reason)

    # keep-alive

    def start_reaper(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever(), name="reaper")

    async def _reap_forever(self) -> None:
        # A pre-warm is due at a time of its own: look often enough to start it on time.
        longest = 15.0 if self.policy.name == "fixed" else 5.0
        interval = max(0.05, min(self.keep_alive / 4, longest))
        while True:
            await asyncio.sleep(interval)
            self.reap()

    def reap(self) -> int:
        """Retire idle environments whose keep-alive window ran out (and dead ones), and start
        the pre-warms that are due. Returns how many environments were retired."""
        now = self._clock.monotonic()
        idle = [
            (env, *self._windows.get(env, (env.last_used, self.keep_alive)))
            for stack in self._idle.values()
            for env in stack
        ]
        victims = expired_each(idle, now)
        victims += [env for env, _, _ in idle if not env.alive and env not in victims]
        for env in victims:
            self.retire(env)
        for envs in list(self._provisioned_idle.values()):
            for env in [e for e in envs if not e.alive]:
                self.retire(env)
        self._start_due_prewarms(now)
        return len(victims)

    def _start_due_prewarms(self, now: float) -> None:
        for key, (due, window) in list(self._prewarm_due.items()):
            if now < due:
                continue
            del self._prewarm_due[key]
            deployed = self._deployed.get(key)
            if deployed is not None and self._still_deployed(deployed):
                self.spawn(self._prewarm(deployed, window), f"prewarm {deployed.config.name}")

    def _still_deployed(self, deployed: DeployedFunction) -> bool:
        if self.registry is None:
            return True
        config = deployed.config
        try:
            return self.registry.resolve(config.name, config.version).key == deployed.key
        except LaminaError:
            return False

    async def _prewarm(self, deployed: DeployedFunction, window: float) -> None:
        """Load an environment ahead of the next invocation the keep-alive policy expects.
        It holds a concurrency slot while it initialises (as an invocation would); a
        throttled or failed pre-warm is logged and the next invocation starts cold."""
        name = deployed.config.name
        try:
            self.ledger.admit(name)
        except TooManyRequestsException as throttled:
            self.prewarm_failures += 1
            log.info("pre-warm of %s skipped: throttled (%s)", name, throttled.reason)
            return
        try:
            env = await self.start_ahead(deployed, provisioned=False)
        except StartFailed as failed:
            self.prewarm_failures += 1
            log.warning("pre-warm of %s failed: %s", name, failed)
            return
        except Exception:
            self.prewarm_failures += 1
            log.exception("pre-warm of %s failed", name)
            return
        finally:
            self.ledger.finish(name)
        if env.stale or env not in self._live:
            self.retire(env)
            return
        self.prewarms += 1
        self._park(env, self._clock.monotonic(), window)

    def spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A background task of the pool's, cancelled by `close`."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_background(self) -> None:
        """Wait for the pool's background tasks (pre-warms) running now to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for env in list(self._live):
            self.retire(env)
        self._idle.clear()
        self._provisioned_idle.clear()
        self._prewarm_due.clear()


def _init_start_line(env: ExecutionEnvironment) -> str:
    """INIT_START, as `services.invoke` writes it for an init an invocation waits for."""
    runtime = env.function.runtime
    region = env.launch.env.get("AWS_REGION", "")
    version = runtime.replace("python", "python:") if runtime.startswith("python") else runtime
    return (
        f"INIT_START Runtime Version: {version}.lamina\t"
        f"Runtime Version ARN: arn:aws:lambda:{region}::runtime:lamina-{runtime}"
    )


def _error_type(init_error: tuple[bytes, str] | None) -> str:
    if init_error is None:
        return "unknown error"
    try:
        body = orjson.loads(init_error[0])
    except orjson.JSONDecodeError:
        return "unknown error"
    error_type = body.get("errorType") if isinstance(body, dict) else None
    return str(error_type) if error_type else "unknown error"
