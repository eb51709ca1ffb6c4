"""The execution environments of the node: reuse, scale-out, keep-alive and eviction.

Idle environments of a function are kept on a stack: the most recently used is reused first
(its caches are warm). Admission (concurrency, memory) is decided by `core.scheduling`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from lamina.core.clock import Clock
from lamina.core.errors import TooManyRequestsException
from lamina.core.ports import RuntimeApiServer, SandboxDriver
from lamina.core.scheduling import RATE_EXCEEDED, Ledger, choose_evictions, expired
from lamina.services.environment import EnvState, ExecutionEnvironment
from lamina.services.fpm import FpmEnvironment
from lamina.services.launch import Launcher
from lamina.services.registry import DeployedFunction
from lamina.telemetry.logs import LogSink

log = logging.getLogger(__name__)

Key = tuple[str, ...]


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
    ) -> None:
        self.ledger = ledger
        self._clock = clock
        self._launcher = launcher
        self._driver = driver
        self._runtime_api = runtime_api
        self._sink = sink
        self.keep_alive = keep_alive
        self._idle: dict[Key, list[ExecutionEnvironment]] = {}
        self._live: set[ExecutionEnvironment] = set()
        self._reaper: asyncio.Task[None] | None = None
        self.cold_starts = 0

    def __repr__(self) -> str:
        idle = sum(len(stack) for stack in self._idle.values())
        return f"<Pool live={len(self._live)} idle={idle}>"

    def statistics(self) -> dict[str, object]:
        return {
            "live": len(self._live),
            "idle": sum(len(stack) for stack in self._idle.values()),
            "in_flight": dict(self.ledger.in_flight),
            "memory_in_use_mb": self.ledger.memory_in_use_mb,
            "memory_budget_mb": self.ledger.memory_budget_mb,
            "cold_starts": self.cold_starts,
        }

    def environments(self, function_name: str | None = None) -> list[ExecutionEnvironment]:
        return [e for e in self._live if function_name in (None, e.function.name)]

    # acquire / release

    def admit(self, function_name: str) -> None:
        self.ledger.admit(function_name)

    def take_idle(self, deployed: DeployedFunction) -> ExecutionEnvironment | None:
        stack = self._idle.get(deployed.key)
        while stack:
            env = stack.pop()
            if env.alive:
                env.state = EnvState.BUSY
                return env
            self._forget(env)
        return None

    async def start_new(self, deployed: DeployedFunction) -> ExecutionEnvironment:
        """Start a new environment (the caller was admitted). Raises 429 if memory is short."""
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
        launch = self._launcher.launch(deployed)
        # The launcher gave a PHP-FPM function a socket directory: Lamina speaks FastCGI
        # to its php-fpm instead of serving a Runtime API to a bootstrap.
        kind = FpmEnvironment if launch.socket_dir is not None else ExecutionEnvironment
        env = kind(deployed.config, launch, self._sink, deployed.key)
        self._live.add(env)
        self.ledger.memory_in_use_mb += memory
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
        if reuse and env.alive and env in self._live and not env.stale:
            env.state = EnvState.IDLE
            env.last_used = self._clock.monotonic()
            self._idle.setdefault(env.key, []).append(env)
        else:
            self.retire(env)

    def retire(self, env: ExecutionEnvironment) -> None:
        stack = self._idle.get(env.key)
        if stack is not None and env in stack:
            stack.remove(env)
        self._forget(env)
        env.stop()

    def _forget(self, env: ExecutionEnvironment) -> None:
        if env in self._live:
            self._live.discard(env)
            self.ledger.memory_in_use_mb -= env.function.memory_size
        stack = self._idle.get(env.key)
        if stack is not None and not stack:
            del self._idle[env.key]

    def retire_function(self, function_name: str) -> None:
        """Drop idle environments of a function whose code or configuration changed.

        Busy ones finish their invocation and are retired on release, because their key
        (which includes the revision) no longer matches anything that will be invoked.
        """
        for env in self._live:
            if env.function.name == function_name:
                env.stale = True
        for key in [k for k in self._idle if k[0] == function_name]:
            for env in list(self._idle.get(key, [])):
                self.retire(env)

    # keep-alive

    def start_reaper(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever(), name="reaper")

    async def _reap_forever(self) -> None:
        interval = max(0.05, min(self.keep_alive / 4, 15.0))
        while True:
            await asyncio.sleep(interval)
            self.reap()

    def reap(self) -> int:
        now = self._clock.monotonic()
        idle = [(env, env.last_used) for stack in self._idle.values() for env in stack]
        victims = expired(idle, now, self.keep_alive)
        victims += [env for env, _ in idle if not env.alive and env not in victims]
        for env in victims:
            self.retire(env)
        return len(victims)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for env in list(self._live):
            self.retire(env)
        self._idle.clear()
