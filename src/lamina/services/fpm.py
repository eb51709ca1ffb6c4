"""A PHP-FPM execution environment: one php-fpm (one worker), spoken to over FastCGI.

This is Bref's FPM runtime (reference 3.5) with Lamina in the place of Bref's PHP loop:
Lamina starts php-fpm in the sandbox, turns each HTTP event into a FastCGI request, and
the CGI response into the API Gateway / ALB result Bref would return. The gateway skips
the JSON on both sides (`invoke_http`). Its lifecycle is `ExecutionEnvironment`'s:

    STARTING --(the FastCGI socket accepts a connection)--> IDLE <--> BUSY
        any state --(php-fpm exits, timeout, stop)--> DEAD

- Init ends when php-fpm's socket accepts a connection; that connection is kept
  (FCGI_KEEP_CONN) for every request. A handler file that does not exist is Bref's init
  error `Runtime.NoSuchHandler`, and php-fpm is not started.
- The FastCGI request may run until 1 s before the function's deadline (at least 1 s), as
  Bref's; then the environment is killed (a new one replaces it, as php-fpm is restarted
  by Bref) and the invocation ends as Lambda's `Sandbox.Timedout`.
- php-fpm exiting, or closing the connection mid-request, is `Runtime.ExitError`.
- Logs: php-fpm's stderr, which carries its workers' output (catch_workers_output), is the
  log pipe. A worker's messages reach it through the php-fpm master, so they may trail the
  FastCGI response; when the response's FastCGI stderr says PHP logged something, the END
  line waits (briefly, bounded) for that message to come through the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time

import orjson

from lamina.core.invocation import (
    MAX_PAYLOAD,
    Invocation,
    InvocationResult,
    Outcome,
    response_too_large,
    runtime_exited,
    timed_out,
)
from lamina.core.models import FunctionConfig
from lamina.core.ports import RuntimeApiServer, SandboxDriver, SandboxSpec
from lamina.runtimes.php.fpm import PHP_INI, SOCKET_NAME, render_config
from lamina.services.environment import EnvState, ExecutionEnvironment, Launch
from lamina.services.fastcgi_client import FastCgiClient, FastCgiClosed
from lamina.services.fpm_launch import CONFIG_NAME, INI_NAME
from lamina.telemetry.logs import LogSink
from lamina.wire.fastcgi import CgiResponse, MalformedCgi, parse_cgi
from lamina.wire.fpm_params import (
    INVALID_EVENT,
    FpmRequest,
    InvalidLambdaEvent,
    ReplyShape,
    invocation_context,
    is_warmer,
    request_from_event,
    result,
)

# Bref's wording (FpmHandler) for the log line and the error of a request that timed out.
TIMEOUT_NOTICE = (
    "{id} The PHP script timed out. Bref will now restart PHP-FPM to start from a clean "
    "slate and flush the PHP logs."
)
LOG_SETTLE_S = 0.05  # how long END waits for a PHP message still on its way to the pipe
# php-fpm listens ~20 ms after it starts: polling each millisecond costs ~20 wake-ups and
# adds at most a millisecond to the cold start.
_CONNECT_STEP_S = 0.001
_WARM = b'["Lambda is warm"]'
TASK_ROOT = "/var/task"  # where a sandbox that remaps paths mounts the code

HttpAnswer = tuple[CgiResponse, ReplyShape]


class FpmEnvironment(ExecutionEnvironment):
    def __init__(
        self, function: FunctionConfig, launch: Launch, sink: LogSink, key: tuple[str, ...]
    ) -> None:
        super().__init__(function, launch, sink, key)
        if launch.socket_dir is None:
            raise ValueError(f"{function.name}: a PHP-FPM environment needs a socket_dir")
        self.socket_dir = launch.socket_dir
        self.client = FastCgiClient(str(self.socket_dir / SOCKET_NAME))
        self.handler = launch.env.get("_HANDLER", function.handler)
        # As php-fpm sees it: set at start, when the sandbox says where the code is mounted.
        self.script_filename = f"{launch.task_root}/{self.handler}"
        flag = launch.env.get("BREF_BINARY_RESPONSES", "")
        self.binary_responses = flag not in ("", "0")
        self._timed_out = False
        self._tasks: tuple[asyncio.Task[None], ...] = ()
        self._awaited_log: str | None = None
        self._log_arrived: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        pid = self._process.pid if self._process else None
        return (
            f"<FpmEnvironment {self.function.name} {self.function.version} {self.state} pid={pid}>"
        )

    def statistics(self) -> dict[str, object]:
        return {**super().statistics(), "runtime": "php-fpm", **self.client.statistics()}

    # starting and stopping

    async def start(self, driver: SandboxDriver, runtime_api: RuntimeApiServer) -> None:
        """Start php-fpm (the Runtime API is not used: Lamina is this environment's runtime)."""
        self._started_at = time.perf_counter()
        tmp = self.launch.run_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        if driver.remaps_paths():
            self.script_filename = f"{TASK_ROOT}/{self.handler}"
        if not (self.launch.task_root / self.handler).is_file():
            message = f"Handler `{self.script_filename}` doesn't exist"
            self._emit(f"Fatal error: {message}")
            self._fail_init("Runtime.NoSuchHandler", message)
            return
        self.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.socket_dir / CONFIG_NAME).write_text(render_config(self.client.socket_path))
        shutil.copyfile(PHP_INI, self.socket_dir / INI_NAME)
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        self._log_fd = read_fd
        loop = asyncio.get_running_loop()
        loop.add_reader(read_fd, self._read_logs)
        spec = SandboxSpec(
            argv=self.launch.argv,
            env=self.launch.env,
            cwd=self.launch.task_root,
            task_root=self.launch.task_root,
            opt_root=self.launch.opt_root,
            tmp_dir=tmp,
            memory_mb=self.function.memory_size,
            log_fd=write_fd,
            socket_dir=self.socket_dir,
            timeout_s=float(self.function.timeout),
        )
        try:
            self._process = await driver.start(spec)
        except BaseException:
            os.close(write_fd)
            self.stop()
            raise
        os.close(write_fd)
        self._tasks = (
            loop.create_task(self._watch_exit(self._process)),
            loop.create_task(self._wait_listening()),
        )

    def _fail_init(self, error_type: str, message: str) -> None:
        body = orjson.dumps({"errorType": error_type, "errorMessage": message})
        self.init_error = (body, "application/json")
        if not self._ready.done():
            self._ready.set_result("init_error")

    async def _wait_listening(self) -> None:
        """Init ends when php-fpm accepts a FastCGI connection (the one then kept)."""
        while self.state is EnvState.STARTING:
            try:
                await self.client.connect()
            except OSError:
                await asyncio.sleep(_CONNECT_STEP_S)
                continue
            if self.state is EnvState.STARTING:
                self.init_duration_ms = (time.perf_counter() - self._started_at) * 1000
                self.state = EnvState.IDLE
                if not self._ready.done():
                    self._ready.set_result("ready")
            return

    def stop(self) -> None:
        self.client.abort()
        super().stop()
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    # invoking

    async def invoke(self, invocation: Invocation, timeout_s: float) -> InvocationResult:
        """An invocation through the Invoke API: an HTTP event in, Bref's result out."""
        answer = await self._invoke_event(invocation, None, timeout_s)
        if isinstance(answer, InvocationResult):
            return answer
        cgi, shape = answer
        payload = orjson.dumps(result(cgi, shape, binary_responses=self.binary_responses))
        if len(payload) > MAX_PAYLOAD:
            return response_too_large()
        return InvocationResult(Outcome.SUCCESS, payload)

    async def invoke_http(
        self, invocation: Invocation, event: dict[str, object], timeout_s: float
    ) -> InvocationResult | HttpAnswer:
        """An invocation from the gateway: the event as built, never encoded as JSON; the
        CGI response as php-fpm sent it, never turned into a JSON result."""
        return await self._invoke_event(invocation, event, timeout_s)

    async def _invoke_event(
        self, invocation: Invocation, event: object | None, timeout_s: float
    ) -> InvocationResult | HttpAnswer:
        self.state = EnvState.BUSY
        self.invocations += 1
        self._current = invocation
        try:
            if event is None:
                try:
                    event = orjson.loads(invocation.payload)
                except orjson.JSONDecodeError:
                    event = None  # PHP's json_decode gives null: not an HTTP event
            if is_warmer(event):
                await asyncio.sleep(0.01)  # Bref's: keeps concurrent warmers apart
                return InvocationResult(Outcome.SUCCESS, _WARM)
            context = invocation_context(
                invocation.request_id,
                invocation.deadline_ms,
                invocation.invoked_arn,
                invocation.trace_id,
            )
            try:
                request = request_from_event(
                    event, script_filename=self.script_filename, invocation_context=context
                )
            except InvalidLambdaEvent as exc:
                return _function_error(INVALID_EVENT, str(exc))
            answer = await self._exchange(invocation, request, timeout_s)
            if isinstance(answer, InvocationResult):
                return answer
            return answer, request.shape
        finally:
            self._drain_logs()
            self._current = None
            if self.state is EnvState.BUSY:
                self.state = EnvState.IDLE

    async def _exchange(
        self, invocation: Invocation, request: FpmRequest, timeout_s: float
    ) -> InvocationResult | CgiResponse:
        # Bref's read timeout: 1 s before the deadline, so that it can recover in time.
        timer = self._loop.call_later(max(1.0, timeout_s - 1.0), self._abort_timed_out)
        try:
            response = await self.client.request(request.params, request.body)
        except (FastCgiClosed, OSError):
            return await self._failed(invocation, timeout_s)
        finally:
            timer.cancel()
        if response.stderr:
            await self._wait_logged(response.stderr)
        if self.returncode is not None:  # Bref checks php-fpm is still running
            return runtime_exited(invocation.request_id, self.returncode)
        try:
            return parse_cgi(response.stdout)
        except MalformedCgi as exc:
            return _function_error("Lamina.MalformedCgiResponse", str(exc))

    def _abort_timed_out(self) -> None:
        self._timed_out = True
        self.client.abort(tell=True)

    async def _failed(self, invocation: Invocation, timeout_s: float) -> InvocationResult:
        request_id = invocation.request_id
        if self._timed_out:
            self._drain_logs()
            self._emit(TIMEOUT_NOTICE.format(id=request_id))
            self.stop()
            return timed_out(request_id, timeout_s)
        process = self._process
        if process is not None and process.returncode is None:
            # The socket closed first: give php-fpm's exit the moment it needs to be seen.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait_exit(), 0.1)
        returncode = self.returncode
        self.stop()
        return runtime_exited(request_id, returncode)

    # logs

    async def _wait_logged(self, stderr: bytes) -> None:
        """Wait until the last message PHP logged has come through the log pipe."""
        self._drain_logs()
        last = stderr.rstrip().rsplit(b"\n", 1)[-1].strip()[-60:].decode(errors="replace")
        if not last or any(last in line for line in self._lines[-20:]):
            return
        self._awaited_log = last
        self._log_arrived = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self._log_arrived, LOG_SETTLE_S)
        except TimeoutError:
            pass
        finally:
            self._awaited_log = None
            self._log_arrived = None

    def _emit(self, message: str) -> None:
        super()._emit(message)
        awaited, arrived = self._awaited_log, self._log_arrived
        if awaited is not None and arrived is not None and awaited in message:
            self._awaited_log = None
            arrived.set_result(None)


def _function_error(error_type: str, message: str) -> InvocationResult:
    body = orjson.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": []})
    return InvocationResult(Outcome.ERROR, body)
