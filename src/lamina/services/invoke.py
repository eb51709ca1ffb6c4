"""The invoke use case: find the function, get an environment, run, log, return.

Every invocation gets START, END and REPORT lines in its environment's log stream, whatever
its outcome. Platform failures of the function (timeout, crash, init error, missing
bootstrap) are results, never exceptions: only caller faults (unknown function, throttling)
raise.

The gateway invokes PHP-FPM functions with `invoke_http`: the event as built and php-fpm's
CGI response as sent, with no JSON in between; admission, the pool and the logs are the
same as for `invoke`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from lamina.core.clock import Clock
from lamina.core.errors import LaminaError
from lamina.core.invocation import (
    MAX_PAYLOAD,
    Invocation,
    InvocationResult,
    Outcome,
    error_payload,
    invalid_entrypoint,
    response_too_large,
    runtime_exited,
    timed_out,
)
from lamina.core.models import Account
from lamina.core.ports import ExecFailed
from lamina.core.runtimes import choose
from lamina.services.environment import ExecutionEnvironment
from lamina.services.fpm import FpmEnvironment, HttpAnswer
from lamina.services.ids import IDS
from lamina.services.launch import EntrypointMissing
from lamina.services.pool import Pool
from lamina.services.registry import DeployedFunction, Registry
from lamina.telemetry.logs import LogSink
from lamina.wire import logs as log_lines
from lamina.wire.runtime_api import trace_id


@dataclass(frozen=True, slots=True)
class InvokeResponse:
    request_id: str
    result: InvocationResult
    executed_version: str
    log_tail: bytes  # the last 4 KB of this invocation's log lines
    http: HttpAnswer | None = None  # `invoke_http` of a PHP-FPM function: php-fpm's answer


_HTTP_ANSWERED = InvocationResult(Outcome.SUCCESS, b"")


class InvokeService:
    def __init__(
        self,
        *,
        registry: Registry,
        pool: Pool,
        sink: LogSink,
        clock: Clock,
        account: Account,
        init_timeout: float,
    ) -> None:
        self._registry = registry
        self._pool = pool
        self._sink = sink
        self._clock = clock
        self._account = account
        self._init_timeout = init_timeout
        self.in_flight = 0
        self._fpm: dict[tuple[str, ...], bool] = {}  # by DeployedFunction.key

    def resolve(self, name: str, qualifier: str | None) -> DeployedFunction:
        return self._registry.resolve(name, qualifier)

    def is_fpm(self, deployed: DeployedFunction) -> bool:
        known = self._fpm.get(deployed.key)
        if known is None:
            config = deployed.config
            known = choose(config.runtime, config.layers, config.environment).kind == "php-fpm"
            if len(self._fpm) > 4096:
                self._fpm.clear()
            self._fpm[deployed.key] = known
        return known

    def serves_http(self, name: str, qualifier: str | None) -> bool:
        """True when `invoke_http` skips JSON for this function (it runs on PHP-FPM)."""
        try:
            return self.is_fpm(self._registry.resolve(name, qualifier))
        except LaminaError:
            return False  # `invoke` will say why

    async def invoke(
        self,
        name: str,
        qualifier: str | None,
        payload: bytes,
        *,
        client_context: str | None = None,
        request_id: str | None = None,
    ) -> InvokeResponse:
        deployed = self._registry.resolve(name, qualifier)
        invocation = self._invocation(name, qualifier, payload, request_id, client_context)
        return await self._invoke(deployed, invocation, None)

    async def invoke_http(
        self, name: str, qualifier: str | None, event: dict[str, Any]
    ) -> InvokeResponse:
        """Invoke with an HTTP event the gateway built. A PHP-FPM function gets it without
        JSON and answers with `InvokeResponse.http`; any other (an alias may draw a version
        on another runtime) gets the event as JSON and answers as `invoke` does."""
        deployed = self._registry.resolve(name, qualifier)
        if not self.is_fpm(deployed):
            payload = orjson.dumps(event)
            invocation = self._invocation(name, qualifier, payload, None, None)
            return await self._invoke(deployed, invocation, None)
        invocation = self._invocation(name, qualifier, b"", None, None)
        return await self._invoke(deployed, invocation, event)

    def _invocation(
        self,
        name: str,
        qualifier: str | None,
        payload: bytes,
        request_id: str | None,
        client_context: str | None,
    ) -> Invocation:
        return Invocation(
            request_id=request_id or IDS.request_id(),
            payload=payload,
            invoked_arn=self._account.function_arn(name, qualifier),
            deadline_ms=0,
            trace_id=trace_id(IDS.hex(40), self._clock.time()),
            client_context=client_context,
        )

    async def _invoke(
        self, deployed: DeployedFunction, invocation: Invocation, event: dict[str, Any] | None
    ) -> InvokeResponse:
        config = deployed.config
        request_id = invocation.request_id
        self._pool.admit(config.name)  # raises TooManyRequestsException
        self.in_flight += 1
        env: ExecutionEnvironment | None = None
        reuse = False
        try:
            env = self._pool.take_idle(deployed)
            cold = env is None
            if env is None:
                try:
                    env = await self._pool.start_new(deployed)
                except EntrypointMissing as missing:
                    return self._without_environment(
                        deployed, invocation, invalid_entrypoint(request_id, missing.looked_at)
                    )
                except ExecFailed as exc:  # e.g. a bootstrap without a #! line
                    return self._without_environment(
                        deployed, invocation, unstartable(request_id, exc)
                    )
                env.platform_log(_init_start_line(config.runtime, self._account.region))
                failed, env = await self._initialize(deployed, env, invocation)
                if failed is not None:
                    return self._finish(env, invocation, failed, cold=True)
            if event is not None and isinstance(env, FpmEnvironment):
                result, http = await self._run_http(env, invocation, event)
            else:
                result, http = await self._run(env, invocation), None
            reuse = result.outcome in (Outcome.SUCCESS, Outcome.ERROR)
            return self._finish(env, invocation, result, cold=cold, http=http)
        finally:
            self.in_flight -= 1
            self._pool.release(config.name, env, reuse)

    async def _initialize(
        self, deployed: DeployedFunction, env: ExecutionEnvironment, invocation: Invocation
    ) -> tuple[InvocationResult | None, ExecutionEnvironment]:
        """Wait for init. A first init that overruns its limit is retried once inside the
        invocation's own timeout, as Lambda's "suppressed init" does."""
        status = await env.wait_initialized(self._init_timeout)
        if status == "timeout":
            env.platform_log(log_lines.init_report_line(self._init_timeout * 1000, "timeout"))
            self._pool.retire(env)
            env = await self._pool.start_new(deployed)
            status = await env.wait_initialized(deployed.config.timeout)
            if status == "timeout":
                return timed_out(invocation.request_id, deployed.config.timeout), env
        if status == "init_error" and env.init_error is not None:
            env.platform_log(log_lines.init_report_line(env.init_elapsed_ms(), "error"))
            body, content_type = env.init_error
            return InvocationResult(Outcome.ERROR, body, content_type), env
        if status != "ready":
            return runtime_exited(invocation.request_id, env.returncode), env
        return None, env

    async def _run(self, env: ExecutionEnvironment, invocation: Invocation) -> InvocationResult:
        config = env.function
        env.begin_invocation_log(log_lines.start_line(invocation.request_id, config.version))
        invocation.deadline_ms = int(self._clock.time() * 1000) + config.timeout * 1000
        return await env.invoke(invocation, config.timeout)

    async def _run_http(
        self, env: FpmEnvironment, invocation: Invocation, event: dict[str, Any]
    ) -> tuple[InvocationResult, HttpAnswer | None]:
        config = env.function
        env.begin_invocation_log(log_lines.start_line(invocation.request_id, config.version))
        invocation.deadline_ms = int(self._clock.time() * 1000) + config.timeout * 1000
        answer = await env.invoke_http(invocation, event, config.timeout)
        if isinstance(answer, InvocationResult):
            return answer, None
        if _result_size(answer[0].body) > MAX_PAYLOAD:
            return response_too_large(), None  # what the JSON result would have hit
        return _HTTP_ANSWERED, answer

    def _finish(
        self,
        env: ExecutionEnvironment,
        invocation: Invocation,
        result: InvocationResult,
        *,
        cold: bool,
        http: HttpAnswer | None = None,
    ) -> InvokeResponse:
        config = env.function
        if not env.capturing:
            env.begin_invocation_log(log_lines.start_line(invocation.request_id, config.version))
        duration_ms = env.invocation_duration_ms()
        status = None
        if result.outcome is Outcome.TIMEOUT:
            status, duration_ms = "timeout", config.timeout * 1000.0
        elif result.outcome is not Outcome.SUCCESS:
            status = "error"
        env.platform_log(log_lines.end_line(invocation.request_id))
        env.platform_log(
            log_lines.report_line(
                invocation.request_id,
                duration_ms,
                config.memory_size,
                env.memory_used_mb(),
                env.init_duration_ms if cold else None,
                status,
            )
        )
        lines = env.end_invocation_log()
        tail = log_lines.tail(lines)
        return InvokeResponse(invocation.request_id, result, config.version, tail, http)

    def _without_environment(
        self, deployed: DeployedFunction, invocation: Invocation, result: InvocationResult
    ) -> InvokeResponse:
        """No process could be started (no bootstrap): log the attempt in a stream of its own."""
        config = deployed.config
        stream = log_lines.stream_name(config.version, self._clock.time())
        now_ms = int(self._clock.time() * 1000)
        lines = [
            log_lines.start_line(invocation.request_id, config.version),
            result.payload.decode(errors="replace"),
            log_lines.end_line(invocation.request_id),
            log_lines.report_line(invocation.request_id, 0.0, config.memory_size, 0, None, "error"),
        ]
        for line in lines:
            self._sink.emit(config.name, stream, now_ms, line)
        return InvokeResponse(invocation.request_id, result, config.version, log_lines.tail(lines))


def _result_size(body: bytes) -> int:
    """At least the size of the JSON result carrying `body` (base64 unless UTF-8)."""
    if len(body) * 4 < MAX_PAYLOAD * 3:
        return len(body)  # fits even as base64: no need to look at it
    try:
        body.decode()
    except UnicodeDecodeError:
        return (len(body) + 2) // 3 * 4
    return len(body)


def unstartable(request_id: str, exc: ExecFailed) -> InvocationResult:
    """The runtime could not be executed at all: Lambda's wording for a failed exec."""
    reason = (exc.strerror or str(exc)).lower()
    message = f"RequestId: {request_id} Error: fork/exec {exc.filename}: {reason}"
    return InvocationResult(Outcome.CRASH, error_payload("Runtime.InvalidEntrypoint", message))


def _init_start_line(runtime: str, region: str) -> str:
    version = runtime.replace("python", "python:") if runtime.startswith("python") else runtime
    return (
        f"INIT_START Runtime Version: {version}.lamina\t"
        f"Runtime Version ARN: arn:aws:lambda:{region}::runtime:lamina-{runtime}"
    )
