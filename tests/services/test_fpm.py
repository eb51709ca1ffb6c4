"""PHP-FPM execution environments on fakes: a fake sandbox whose "php-fpm" is a FastCGI
application played in-process on the environment's socket, and the real Pool, Launcher
and InvokeService. Time is warped, never slept."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.services.fakes import FakeSandboxDriver, LoopTimeWarp, MemoryLogStore, settle

from lamina.config import Settings
from lamina.core.clock import FakeClock
from lamina.core.invocation import Outcome
from lamina.core.models import Account, FunctionConfig
from lamina.core.ports import SandboxSpec
from lamina.core.scheduling import Ledger
from lamina.runtimes.php.fpm import SOCKET_NAME
from lamina.services.fpm import FpmEnvironment
from lamina.services.invoke import InvokeResponse, InvokeService
from lamina.services.launch import Launcher
from lamina.services.pool import Pool
from lamina.services.registry import DeployedFunction, Registry
from lamina.telemetry.logs import LogSink
from lamina.wire.fastcgi import (
    KEEP_CONN,
    RecordReader,
    RecordType,
    decode_pairs,
    end_request,
    stream,
)

FPM_LAYER = "arn:aws:lambda:us-east-1:534081306603:layer:php-82-fpm:60"
V2_EVENT = {
    "version": "2.0",
    "rawPath": "/hello",
    "rawQueryString": "a=1",
    "cookies": ["c=1"],
    "headers": {"host": "example.org"},
    "requestContext": {"http": {"method": "GET"}},
    "isBase64Encoded": False,
}
HELLO = b"Content-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nhello"


@dataclass
class Reply:
    stdout: bytes = HELLO
    stderr: bytes = b""
    hang: bool = False  # never answer
    close: bool = False  # close the connection instead of answering
    log: str = ""  # what php-fpm prints on its stderr after answering


Handler = Callable[[dict[str, str], bytes], Reply]


class _FpmConnection(asyncio.Protocol):
    def __init__(self, app: FakeFpm) -> None:
        self.app = app
        self.reader = RecordReader()
        self.params = b""
        self.stdin = b""
        self.keep = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.app.connections += 1

    def data_received(self, data: bytes) -> None:
        for rec in self.reader.feed(data):
            if rec.type == RecordType.BEGIN_REQUEST:
                self.keep = bool(rec.content[2] & KEEP_CONN)
                self.params, self.stdin = b"", b""
            elif rec.type == RecordType.PARAMS:
                self.params += rec.content
            elif rec.type == RecordType.STDIN and rec.content:
                self.stdin += rec.content
            elif rec.type == RecordType.STDIN:
                self.answer(rec.request_id)
            elif rec.type == RecordType.ABORT_REQUEST:
                self.app.aborted.append(rec.request_id)

    def answer(self, request_id: int) -> None:
        assert self.transport is not None
        params = {k.decode(): v.decode() for k, v in decode_pairs(self.params)}
        self.app.requests.append((params, self.stdin))
        reply = self.app.handler(params, self.stdin)
        if reply.hang:
            return
        if reply.close:
            self.transport.close()
            return
        parts = [
            *stream(RecordType.STDERR, request_id, reply.stderr),
            *stream(RecordType.STDOUT, request_id, reply.stdout),
            end_request(request_id, 0),
        ]
        self.transport.write(b"".join(bytes(p) for p in parts))
        if reply.log:
            process = self.app.process
            assert process is not None
            asyncio.get_running_loop().call_soon(process.print, reply.log)
        if not self.keep:
            self.transport.close()


@dataclass
class FakeFpm:
    handler: Handler = lambda params, body: Reply()
    connections: int = 0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    aborted: list[int] = field(default_factory=list)  # request ids of ABORT_REQUESTs
    process: Any = None
    server: asyncio.Server | None = None

    async def listen(self, path: Path) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_unix_server(lambda: _FpmConnection(self), str(path))


class FpmDriver(FakeSandboxDriver):
    """Starts a fake php-fpm, listening on the environment's socket, for each process."""

    def __init__(self) -> None:
        super().__init__(None)
        self.default_script = None
        self.apps: list[FakeFpm] = []
        self.handler: Handler = lambda params, body: Reply()
        self.listen = True  # False: the socket never appears (init never ends)

    async def start(self, spec: SandboxSpec) -> Any:
        process = await super().start(spec)
        assert spec.socket_dir is not None and "AWS_LAMBDA_RUNTIME_API" not in spec.env
        app = FakeFpm(self.handler, process=process)
        self.apps.append(app)
        if self.listen:
            await app.listen(spec.socket_dir / SOCKET_NAME)
        return process

    async def close(self) -> None:
        for app in self.apps:
            if app.server is not None:
                app.server.close()
        await super().close()


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        account = Account()
        self.logs = MemoryLogStore()
        self.sink = LogSink(self.logs)  # type: ignore[arg-type]
        self.driver = FpmDriver()
        self.registry = Registry(account)
        self.pool = Pool(
            ledger=Ledger(100, 4096),
            clock=FakeClock(),
            launcher=Launcher(Settings(home=tmp_path), account, "http://127.0.0.1:1"),
            driver=self.driver,
            runtime_api=None,  # type: ignore[arg-type]  # FPM environments never open one
            sink=self.sink,
            keep_alive=60,
        )
        self.invoker = InvokeService(
            registry=self.registry,
            pool=self.pool,
            sink=self.sink,
            clock=FakeClock(),
            account=account,
            init_timeout=1.0,
        )
        self.warp = LoopTimeWarp()
        self._ids = itertools.count(1)

    def deploy(
        self, name: str = "web", *, timeout: int = 6, handler: str = "index.php", **env: str
    ) -> DeployedFunction:
        code = self.tmp_path / "code" / name
        code.mkdir(parents=True, exist_ok=True)
        (code / "index.php").write_text("<?php echo 'hi';")
        config = FunctionConfig(
            name=name,
            runtime="provided.al2",
            handler=handler,
            code_sha256="0" * 64,
            code_size=0,
            timeout=timeout,
            layers=(FPM_LAYER,),
            environment=env,
            revision_id="r1",
        )
        deployed = DeployedFunction(config, code, None)
        self.registry.put(deployed)
        return deployed

    async def logs_of(self, name: str = "web") -> list[str]:
        await self.sink.flush()
        return [e.message for e in self.logs.events if e.function_name == name]

    async def close(self) -> None:
        await self.pool.close()
        await self.driver.close()
        await settle()
        self.warp.close()


@pytest.fixture
async def world(tmp_path: Path) -> Any:
    w = World(tmp_path)
    yield w
    await w.close()


def env_of(world: World) -> FpmEnvironment:
    (env,) = world.pool.environments()
    assert isinstance(env, FpmEnvironment)
    return env


async def test_the_gateway_path_skips_json_and_keeps_the_connection(world: World) -> None:
    deployed = world.deploy()
    assert world.invoker.serves_http("web", None)
    answers: list[InvokeResponse] = []
    for _ in range(3):
        answers.append(await world.invoker.invoke_http("web", None, dict(V2_EVENT)))
    http = answers[0].http
    assert http is not None
    cgi, shape = http
    assert (cgi.status, cgi.body, shape) == (200, b"hello", "v2")
    assert ("Set-Cookie", "b=2") in cgi.headers
    (app,) = world.driver.apps
    assert app.connections == 1  # FCGI_KEEP_CONN: one connection for every request
    params, _ = app.requests[0]
    assert params["SCRIPT_FILENAME"] == f"{deployed.code_dir}/index.php"
    assert params["REQUEST_URI"] == "/hello?a=1"
    assert params["HTTP_COOKIE"] == "c=1"
    context = orjson.loads(params["LAMBDA_INVOCATION_CONTEXT"])
    assert context["awsRequestId"] == answers[0].request_id
    lines = await world.logs_of()
    assert lines[0].startswith("INIT_START")
    assert [line.split(" ")[0] for line in lines[1:4]] == ["START", "END", "REPORT"]
    assert "Init Duration" in lines[3] and "Init Duration" not in lines[-1]
    assert env_of(world).statistics()["requests"] == 3


async def test_the_invoke_api_gets_brefs_result(world: World) -> None:
    world.deploy()
    answer = await world.invoker.invoke("web", None, orjson.dumps(V2_EVENT))
    assert answer.result.outcome is Outcome.SUCCESS and answer.http is None
    assert orjson.loads(answer.result.payload) == {
        "cookies": ["a=1", "b=2"],
        "isBase64Encoded": False,
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain"},
        "body": "hello",
    }


async def test_a_binary_body_is_base64_and_bref_binary_responses_is_honoured(
    world: World,
) -> None:
    world.driver.handler = lambda p, b: Reply(b"Content-Type: image/png\r\n\r\n\x89PNG\xff")
    world.deploy()
    answer = await world.invoker.invoke("web", None, orjson.dumps(V2_EVENT))
    got = orjson.loads(answer.result.payload)
    assert (got["isBase64Encoded"], got["body"]) == (True, "iVBOR/8=")
    world.deploy("text", BREF_BINARY_RESPONSES="1")
    world.driver.handler = lambda p, b: Reply()
    answer = await world.invoker.invoke("text", None, orjson.dumps(V2_EVENT))
    assert orjson.loads(answer.result.payload)["isBase64Encoded"] is True


async def test_events_that_are_not_http_fail_as_in_bref(world: World) -> None:
    world.deploy()
    answer = await world.invoker.invoke("web", None, b'{"Records": []}')
    assert answer.result.outcome is Outcome.ERROR
    assert orjson.loads(answer.result.payload)["errorType"] == "Bref\\Event\\InvalidLambdaEvent"
    warm = await world.invoker.invoke("web", None, b'{"warmer": true}')
    assert warm.result.payload == b'["Lambda is warm"]'
    assert world.driver.apps[0].requests == []  # neither reached php-fpm
    assert env_of(world).alive  # and the environment is reused


async def test_a_request_past_the_deadline_restarts_php_fpm(world: World) -> None:
    world.driver.handler = lambda p, b: Reply(hang=True)
    world.deploy(timeout=3)
    task = asyncio.create_task(world.invoker.invoke_http("web", None, dict(V2_EVENT)))
    await settle(lambda: bool(world.driver.apps and world.driver.apps[0].requests))
    env = env_of(world)
    world.warp.advance(1.9)
    await settle()
    assert not task.done()
    world.warp.advance(0.2)  # 1 s before the 3 s deadline, as Bref
    answer = await asyncio.wait_for(task, 1)
    assert answer.result.outcome is Outcome.TIMEOUT
    assert orjson.loads(answer.result.payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {answer.request_id} Error: Task timed out after 3.00 seconds",
    }
    assert not env.alive and world.driver.processes[0].killed
    assert world.driver.apps[0].aborted == [1]  # told php-fpm before killing it
    lines = await world.logs_of()
    assert any("The PHP script timed out" in line for line in lines)
    assert "Status: timeout" in lines[-1]
    # The next request gets a new php-fpm.
    world.driver.handler = lambda p, b: Reply()
    again = await world.invoker.invoke_http("web", None, dict(V2_EVENT))
    assert again.http is not None and len(world.driver.processes) == 2


async def test_php_fpm_closing_mid_request_is_an_exit_error(world: World) -> None:
    world.driver.handler = lambda p, b: Reply(close=True)
    world.deploy()
    task = asyncio.create_task(world.invoker.invoke_http("web", None, dict(V2_EVENT)))
    await settle(lambda: bool(world.driver.apps and world.driver.apps[0].requests))
    world.driver.processes[0].exit(255)
    answer = await asyncio.wait_for(task, 1)
    assert answer.result.outcome is Outcome.CRASH
    assert orjson.loads(answer.result.payload) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": (
            f"RequestId: {answer.request_id} Error: Runtime exited with error: exit status 255"
        ),
    }
    assert world.pool.environments() == []


async def test_a_missing_handler_is_brefs_init_error(world: World) -> None:
    world.deploy(handler="public/missing.php")
    answer = await world.invoker.invoke_http("web", None, dict(V2_EVENT))
    assert answer.result.outcome is Outcome.ERROR
    error = orjson.loads(answer.result.payload)
    assert error["errorType"] == "Runtime.NoSuchHandler"
    assert error["errorMessage"].endswith("public/missing.php` doesn't exist")
    assert world.driver.processes == []  # php-fpm was not started


async def test_php_messages_land_inside_their_invocation(world: World) -> None:
    message = "PHP message: PHP Warning:  careful in /var/task/index.php on line 2"
    world.driver.handler = lambda p, b: Reply(stderr=message.encode(), log=f"NOTICE: {message}\n")
    world.deploy()
    await world.invoker.invoke_http("web", None, dict(V2_EVENT))
    lines = await world.logs_of()
    start = next(i for i, line in enumerate(lines) if line.startswith("START"))
    assert lines[start + 1 : start + 3] == [f"NOTICE: {message}", lines[start + 2]]
    assert lines[start + 2].startswith("END")


async def test_init_waits_for_the_socket(world: World) -> None:
    world.driver.listen = False
    world.deploy()
    task = asyncio.create_task(world.invoker.invoke_http("web", None, dict(V2_EVENT)))
    await settle(lambda: bool(world.driver.apps))
    env = env_of(world)
    assert env.state == "STARTING"
    await world.driver.apps[0].listen(env.socket_dir / SOCKET_NAME)
    answer = await asyncio.wait_for(task, 5)
    assert answer.http is not None and env.init_duration_ms is not None
