"""PHP-FPM environments with a real php-fpm: what PHP sees ($_SERVER, $_GET, $_POST,
$_COOKIE, $_FILES) for each kind of event is what Bref's own tests expect, and the failures
(timeout, fatal error, php-fpm dying) end as Lambda ends them."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.services.fakes import MemoryLogStore, settle

from lamina.config import Settings
from lamina.core.clock import SystemClock
from lamina.core.invocation import Outcome
from lamina.core.models import Account, FunctionConfig
from lamina.core.scheduling import Ledger
from lamina.sandbox.plain import PlainSandboxDriver
from lamina.services.fpm import FpmEnvironment
from lamina.services.fpm_launch import php_fpm_binary
from lamina.services.invoke import InvokeResponse, InvokeService
from lamina.services.launch import Launcher
from lamina.services.pool import Pool
from lamina.services.registry import DeployedFunction, Registry
from lamina.telemetry.logs import LogSink

pytestmark = pytest.mark.skipif(php_fpm_binary("8.2") is None, reason="needs php-fpm")

FPM_LAYER = "arn:aws:lambda:us-east-1:534081306603:layer:php-82-fpm:60"
SERVER_KEYS = [
    "REQUEST_URI",
    "PHP_SELF",
    "PATH_INFO",
    "REQUEST_METHOD",
    "QUERY_STRING",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "SERVER_NAME",
    "SERVER_PORT",
    "REMOTE_ADDR",
    "HTTP_HOST",
    "HTTP_COOKIE",
    "HTTPS",
    "LAMBDA_REQUEST_CONTEXT",
    "AWS_LAMBDA_FUNCTION_NAME",
]
DUMP = """<?php
$files = [];
foreach ($_FILES as $name => $file) {
    $files[$name] = [$file['name'], $file['type'], $file['size'],
        base64_encode(file_get_contents($file['tmp_name']))];
}
if (isset($_GET['sleep'])) { sleep((int) $_GET['sleep']); }
if (isset($_GET['fatal'])) { undefined_function(); }
if (isset($_GET['log'])) { error_log('logged ' . $_GET['log']); }
$server = [];
foreach (SERVER_KEYS as $key) { if (isset($_SERVER[$key])) { $server[$key] = $_SERVER[$key]; } }
header('Content-Type: application/json');
echo json_encode(['get' => $_GET, 'post' => $_POST, 'cookie' => $_COOKIE, 'files' => $files,
    'server' => $server, 'input' => file_get_contents('php://input')]);
""".replace("SERVER_KEYS", orjson.dumps(SERVER_KEYS).decode().replace('"', "'"))


class Node:
    def __init__(self, tmp_path: Path) -> None:
        account = Account()
        self.tmp_path = tmp_path
        self.logs = MemoryLogStore()
        self.sink = LogSink(self.logs)  # type: ignore[arg-type]
        self.registry = Registry(account)
        self.pool = Pool(
            ledger=Ledger(100, 4096),
            clock=SystemClock(),
            launcher=Launcher(Settings(home=tmp_path / "home"), account, "http://127.0.0.1:1"),
            driver=PlainSandboxDriver(),
            runtime_api=None,  # type: ignore[arg-type]  # FPM environments never open one
            sink=self.sink,
            keep_alive=60,
        )
        self.invoker = InvokeService(
            registry=self.registry,
            pool=self.pool,
            sink=self.sink,
            clock=SystemClock(),
            account=account,
            init_timeout=10,
        )
        code = tmp_path / "code"
        code.mkdir()
        (code / "index.php").write_text(DUMP)
        self.deployed = DeployedFunction(
            FunctionConfig(
                name="web",
                runtime="provided.al2",
                handler="index.php",
                code_sha256="0" * 64,
                code_size=0,
                timeout=2,
                layers=(FPM_LAYER,),
                revision_id="r1",
            ),
            code,
            None,
        )
        self.registry.put(self.deployed)

    async def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        answer = await self.invoker.invoke("web", None, orjson.dumps(event))
        assert answer.result.outcome is Outcome.SUCCESS, answer.result.payload
        result: dict[str, Any] = orjson.loads(answer.result.payload)
        return result

    async def seen(self, event: dict[str, Any]) -> dict[str, Any]:
        """What PHP saw of `event`."""
        result = await self.invoke(event)
        assert result["statusCode"] == 200, result
        seen: dict[str, Any] = orjson.loads(result["body"])
        return seen

    async def logs_of(self) -> list[str]:
        await self.sink.flush()
        return [e.message for e in self.logs.events]


@pytest.fixture
async def node(tmp_path: Path) -> Any:
    n = Node(tmp_path)
    yield n
    await n.pool.close()
    await settle()


async def test_v1_events(node: Node) -> None:
    seen = await node.seen(
        {
            "httpMethod": "GET",
            "path": "/hello",
            "multiValueQueryStringParameters": {
                "foo[]": ["bar", "baz"],
                "shapes[a][]": ["square", "triangle"],
                "myvar": ["abc"],
            },
            "multiValueHeaders": {
                "Host": ["www.example.com"],
                "Cookie": ["tz=Europe%2FParis; four=two"],
                "X-Forwarded-Proto": ["https"],
            },
            "requestContext": {"protocol": "HTTP/1.1", "stage": "dev", "path": "/dev/hello"},
        }
    )
    assert seen["get"] == {
        "foo": ["bar", "baz"],
        "shapes": {"a": ["square", "triangle"]},
        "myvar": "abc",
    }
    assert seen["cookie"] == {"tz": "Europe/Paris", "four": "two"}
    server = seen["server"]
    assert server["PATH_INFO"] == server["PHP_SELF"] == "/hello"  # the stage stays out
    assert server["SERVER_NAME"] == server["HTTP_HOST"] == "www.example.com"
    assert server["REMOTE_ADDR"] == "127.0.0.1" and "HTTPS" not in server
    assert server["LAMBDA_REQUEST_CONTEXT"] == (
        '{"protocol":"HTTP\\/1.1","stage":"dev","path":"\\/dev\\/hello"}'
    )
    assert server["AWS_LAMBDA_FUNCTION_NAME"] == "web"  # clear_env = no


async def test_form_posts_json_and_uploads(node: Node) -> None:
    form = await node.seen({"httpMethod": "POST", "path": "/", "body": "foo=bar&bim=baz"})
    assert form["post"] == {"foo": "bar", "bim": "baz"}
    assert form["server"]["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    raw = await node.seen(
        {"httpMethod": "POST", "headers": {"Content-Type": "application/json"}, "body": '"hi"'}
    )
    assert (raw["post"], raw["input"], raw["server"]["CONTENT_LENGTH"]) == ([], '"hi"', "4")
    body = (
        b'--B\r\nContent-Disposition: form-data; name="doc"; filename="a.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n\x00\x01\xff\r\n"
        b'--B\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello\r\n--B--\r\n'
    )
    upload = await node.seen(
        {
            "version": "2.0",
            "rawPath": "/upload",
            "rawQueryString": "",
            "headers": {"content-type": "multipart/form-data; boundary=B"},
            "requestContext": {"http": {"method": "POST"}},
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }
    )
    assert upload["post"] == {"title": "hello"}
    assert upload["files"] == {"doc": ["a.bin", "application/octet-stream", 3, "AAH/"]}
    assert upload["server"]["CONTENT_LENGTH"] == str(len(body))


async def test_v2_and_alb_query_strings(node: Node) -> None:
    v2 = await node.seen(
        {
            "version": "2.0",
            "rawPath": "/p",
            "rawQueryString": "a[]=1&a[]=2&q=x%20y&plus=1+1",
            "cookies": ["s=1", "t=2"],
            "headers": {"host": "h.example"},
            "requestContext": {"http": {"method": "GET"}},
        }
    )
    assert v2["get"] == {"a": ["1", "2"], "q": "x y", "plus": "1 1"}
    assert v2["cookie"] == {"s": "1", "t": "2"}
    assert v2["server"]["REQUEST_URI"] == "/p?a%5B0%5D=1&a%5B1%5D=2&q=x+y&plus=1+1"
    alb = await node.seen(
        {
            "requestContext": {"elb": {"targetGroupArn": "arn:tg"}},
            "httpMethod": "GET",
            "path": "/lambda",
            "queryStringParameters": {"query": "a%20b", "n": "1"},
            "headers": {"host": "lb"},
            "body": "",
            "isBase64Encoded": False,
        }
    )
    assert alb["get"] == {"query": "a b", "n": "1"}


async def test_status_headers_and_a_fatal_error(node: Node) -> None:
    fatal = await node.invoke(
        {"httpMethod": "GET", "path": "/", "queryStringParameters": {"fatal": "1"}}
    )
    assert (fatal["statusCode"], fatal["body"]) == (500, "")
    lines = await node.logs_of()
    assert any("PHP Fatal error:  Uncaught Error: Call to undefined function" in x for x in lines)
    ok = await node.invoke({"httpMethod": "GET", "path": "/", "multiValueHeaders": {}})
    assert ok["multiValueHeaders"]["Content-Type"] == ["application/json"]
    (env,) = node.pool.environments()
    assert isinstance(env, FpmEnvironment) and env.client.connections == 1


async def test_error_log_lines_are_inside_the_invocation(node: Node) -> None:
    for n in range(5):
        answer = await node.invoker.invoke(
            "web",
            None,
            orjson.dumps({"httpMethod": "GET", "queryStringParameters": {"log": str(n)}}),
        )
        lines = await node.logs_of()
        start = lines.index(f"START RequestId: {answer.request_id} Version: $LATEST")
        end = lines.index(f"END RequestId: {answer.request_id}")
        assert f"NOTICE: PHP message: logged {n}" in lines[start:end], lines[start:]


async def test_a_timeout_restarts_php_fpm(node: Node) -> None:
    first = await node.invoke({"httpMethod": "GET", "path": "/"})
    assert first["statusCode"] == 200
    (env,) = node.pool.environments()
    pid = env.statistics()["pid"]
    answer: InvokeResponse = await node.invoker.invoke(
        "web", None, orjson.dumps({"httpMethod": "GET", "queryStringParameters": {"sleep": "5"}})
    )
    assert answer.result.outcome is Outcome.TIMEOUT
    assert b"Sandbox.Timedout" in answer.result.payload
    assert not env.alive
    again = await node.invoke({"httpMethod": "GET", "path": "/"})
    assert again["statusCode"] == 200
    (new,) = node.pool.environments()
    assert new.statistics()["pid"] != pid


async def test_php_fpm_killed_is_an_exit_error(node: Node) -> None:
    await node.invoke({"httpMethod": "GET", "path": "/"})
    (env,) = node.pool.environments()
    pid = env.statistics()["pid"]
    assert isinstance(pid, int)
    running = asyncio.ensure_future(
        node.invoker.invoke(
            "web",
            None,
            orjson.dumps({"httpMethod": "GET", "queryStringParameters": {"sleep": "1"}}),
        )
    )
    await settle(lambda: env.state == "BUSY")
    os.kill(pid, signal.SIGKILL)
    answer = await running
    assert answer.result.outcome is Outcome.CRASH
    assert orjson.loads(answer.result.payload) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": (
            f"RequestId: {answer.request_id} Error: Runtime exited with error: signal: killed"
        ),
    }
