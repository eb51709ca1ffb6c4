"""The Python runtime (src/lamina/runtimes/python/), tested as the platform runs it.

Each test starts a fake Runtime API on a real socket, spawns the bootstrap with `-I -S` in a
temporary task root, queues invocations and looks at what the runtime posted and printed.
AWS's own runtime client (awslambdaric) is run against the same fake to prove the payloads match.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import lamina.runtimes.python as python_runtime

RUNTIME = python_runtime.RUNTIME_PATH
WAIT = 4.0  # seconds; every wait is bounded so a broken runtime fails the test, not the run
REQUEST_ID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:app-dev-api"


# ---------------------------------------------------------------------------------------------
# A fake Runtime API


@dataclass
class Invocation:
    body: bytes
    headers: dict[str, str]


@dataclass
class Post:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    stdout_at_post: str  # what the runtime had written to stdout when the post arrived

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeRuntimeAPI:
    stdout_path: Path
    queue: list[Invocation] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    next_calls: list[float] = field(default_factory=list)
    response_status: list[int] = field(default_factory=list)  # statuses for /response, FIFO
    drop_after_next: bool = False  # close the connection after /next, without saying so
    closed: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def invoke(
        self,
        event: object = None,
        *,
        body: bytes | None = None,
        request_id: str = REQUEST_ID,
        content_type: str | None = "application/json",
        deadline_ms: int | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(
                deadline_ms if deadline_ms is not None else int(time.time() * 1000) + 30_000
            ),
            "Lambda-Runtime-Invoked-Function-Arn": ARN,
        }
        if content_type is not None:
            headers["Content-Type"] = content_type
        headers.update(extra or {})
        payload = body if body is not None else json.dumps(event).encode()
        with self.cond:
            self.queue.append(Invocation(payload, headers))
            self.cond.notify_all()

    def wait_post(self, path_suffix: str, count: int = 1) -> Post:
        with self.cond:
            ok = self.cond.wait_for(
                lambda: len([p for p in self.posts if p.path.endswith(path_suffix)]) >= count,
                timeout=WAIT,
            )
            assert ok, f"no {count}x POST …{path_suffix} within {WAIT}s; got {self.posts!r}"
            return [p for p in self.posts if p.path.endswith(path_suffix)][count - 1]

    def wait_first_post(self) -> Post:
        with self.cond:
            assert self.cond.wait_for(lambda: self.posts, timeout=WAIT), "no POST at all"
            return self.posts[0]

    def wait_next_calls(self, count: int) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.next_calls) >= count, timeout=WAIT)
            assert ok, f"runtime made {len(self.next_calls)} /next calls, expected {count}"

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


def _handler_class(api: FakeRuntimeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path != "/2018-06-01/runtime/invocation/next":
                self._reply(404, b'{"errorType":"NotFound"}')
                return
            with api.cond:
                api.next_calls.append(time.perf_counter())
                api.cond.notify_all()
                api.cond.wait_for(lambda: api.queue or api.closed)
                if api.closed:
                    self.close_connection = True
                    return
                invocation = api.queue.pop(0)
            self._reply(200, invocation.body, invocation.headers)
            if api.drop_after_next:
                self.close_connection = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = 202
            with api.cond:
                if self.path.endswith("/response") and api.response_status:
                    status = api.response_status.pop(0)
                api.posts.append(
                    Post(
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                        api.stdout_path.read_bytes().decode(errors="replace"),
                    )
                )
                api.cond.notify_all()
            self._reply(status, b'{"status":"OK"}' if status == 202 else b'{"errorType":"X"}')

        def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {"Content-Type": "application/json"}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A runtime killed at teardown resets its connection: not a test failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Runtime:
    """A running runtime process and the fake Runtime API it talks to."""

    api: FakeRuntimeAPI
    process: subprocess.Popen[bytes]
    task_root: Path
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_bytes().decode(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_bytes().decode(errors="replace")

    def wait_exit(self) -> int:
        return self.process.wait(timeout=WAIT)


@dataclass
class RuntimeFactory:
    tmp_path: Path
    runtimes: list[Runtime] = field(default_factory=list)
    servers: list[ThreadingHTTPServer] = field(default_factory=list)

    def write(self, relative: str, source: str) -> Path:
        path = self.tmp_path / "task" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        return path

    def start(
        self,
        handler: str = "app.handler",
        *,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
        opt_root: Path | None = None,
        name: str = "lamina",
    ) -> Runtime:
        task_root = self.tmp_path / "task"
        task_root.mkdir(exist_ok=True)
        stdout_path = self.tmp_path / f"{name}.stdout"
        stderr_path = self.tmp_path / f"{name}.stderr"
        stdout_path.write_text("")
        api = FakeRuntimeAPI(stdout_path)
        server = _QuietServer(("127.0.0.1", 0), _handler_class(api))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self.servers.append(server)
        api_address = f"127.0.0.1:{server.server_address[1]}"
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "AWS_LAMBDA_RUNTIME_API": api_address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(task_root),
            "AWS_LAMBDA_FUNCTION_NAME": "app-dev-api",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/app-dev-api",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/31/[$LATEST]3893xmpl7fac4485b47bb75b671a283c",
            "AWS_REGION": "us-east-1",
            **(env or {}),
        }
        if command is None:
            command = python_runtime.bootstrap_command(sys.executable, opt_root or "/opt")
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen(command, cwd=task_root, env=full_env, stdout=out, stderr=err)
        runtime = Runtime(api, process, task_root, stdout_path, stderr_path)
        self.runtimes.append(runtime)
        return runtime

    def close(self) -> None:
        for runtime in self.runtimes:
            runtime.api.close()
            if runtime.process.poll() is None:
                runtime.process.kill()
            runtime.process.wait(timeout=WAIT)
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def runtimes(tmp_path: Path) -> Iterator[RuntimeFactory]:
    factory = RuntimeFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()
        # pytest shows teardown output only when the test failed: the runtime's own logs.
        for runtime in factory.runtimes:
            print(f"--- stdout ---\n{runtime.stdout}\n--- stderr ---\n{runtime.stderr}")


# ---------------------------------------------------------------------------------------------
# Invocations


def test_json_event_round_trips(runtimes: RuntimeFactory) -> None:
    runtimes.write("app.py", "def handler(event, context):\n    return event\n")
    rt = runtimes.start()
    event = {"name": "Zoë", "n": [1, 2.5, None, True], "nested": {"a": "b"}}
    rt.api.invoke(event)
    post = rt.api.wait_post("/response")
    assert post.path == f"/2018-06-01/runtime/invocation/{REQUEST_ID}/response"
    assert post.headers["content-type"] == "application/json"
    assert post.json() == event
    assert "lambda-runtime-function-error-type" not in post.headers

    rt.api.invoke({"second": 2}, request_id="req-2")
    assert rt.api.wait_post("/req-2/response").json() == {"second": 2}


def test_bytes_result_is_posted_raw(runtimes: RuntimeFactory) -> None:
    runtimes.write("app.py", "def handler(event, context):\n    return b'\\x00\\xffraw'\n")
    rt = runtimes.start()
    rt.api.invoke({})
    post = rt.api.wait_post("/response")
    assert post.headers["content-type"] == "application/unknown"
    assert post.body == b"\x00\xffraw"


def test_non_json_content_type_passes_bytes(runtimes: RuntimeFactory) -> None:
    runtimes.write(
        "app.py",
        "def handler(event, context):\n    return {'type': type(event).__name__,"
        " 'text': event.decode()}\n",
    )
    rt = runtimes.start()
    rt.api.invoke(body=b"plain text", content_type="text/plain")
    assert rt.api.wait_post("/response").json() == {"type": "bytes", "text": "plain text"}


def test_decimal_result_keeps_its_digits(runtimes: RuntimeFactory) -> None:
    runtimes.write(
        "app.py",
        "from decimal import Decimal\n"
        "def handler(event, context):\n"
        "    return {'price': Decimal('19.90'), 'big': Decimal('12345678901234567890.5')}\n",
    )
    rt = runtimes.start()
    rt.api.invoke({})
    assert rt.api.wait_post("/response").body == (
        b'{"price": 19.90, "big": 12345678901234567890.5}'
    )


def test_context_fields_and_remaining_time(runtimes: RuntimeFactory) -> None:
    runtimes.write(
        "app.py",
        "def handler(event, context):\n"
        "    return {name: getattr(context, name) for name in (\n"
        "        'function_name', 'function_version', 'invoked_function_arn',\n"
        "        'memory_limit_in_mb', 'aws_request_id', 'log_group_name', 'log_stream_name',\n"
        "        'tenant_id', 'client_context')} | {\n"
        "        'identity': [context.identity.cognito_identity_id,\n"
        "                     context.identity.cognito_identity_pool_id],\n"
        "        'remaining': context.get_remaining_time_in_millis(),\n"
        "        'repr': repr(context)}\n",
    )
    rt = runtimes.start()
    rt.api.invoke({}, deadline_ms=int(time.time() * 1000) + 5_000)
    result = rt.api.wait_post("/response").json()
    assert isinstance(result, dict)
    remaining = result.pop("remaining")
    assert 0 < remaining <= 5_000
    assert result.pop("repr") == (
        f"LambdaContext([aws_request_id={REQUEST_ID},log_group_name=/aws/lambda/app-dev-api,"
        "log_stream_name=2024/01/31/[$LATEST]3893xmpl7fac4485b47bb75b671a283c,"
        "function_name=app-dev-api,memory_limit_in_mb=1024,function_version=$LATEST,"
        f"invoked_function_arn={ARN},client_context=None,"
        "identity=CognitoIdentity([cognito_identity_id=None,cognito_identity_pool_id=None]),"
        "tenant_id=None])"
    )
    assert result == {
        "function_name": "app-dev-api",
        "function_version": "$LATEST",
        "invoked_function_arn": ARN,
        "memory_limit_in_mb": "1024",  # a string on AWS too
        "aws_request_id": REQUEST_ID,
        "log_group_name": "/aws/lambda/app-dev-api",
        "log_stream_name": "2024/01/31/[$LATEST]3893xmpl7fac4485b47bb75b671a283c",
        "tenant_id": None,
        "client_context": None,
        "identity": [None, None],
    }

    rt.api.invoke({}, request_id="late", deadline_ms=int(time.time() * 1000) - 10)
    assert rt.api.wait_post("/late/response").json()["remaining"] == 0


def test_client_context_identity_and_trace_id(runtimes: RuntimeFactory) -> None:
    runtimes.write(
        "app.py",
        "import os\n"
        "def handler(event, context):\n"
        "    cc = context.client_context\n"
        "    return {'trace': os.environ.get('_X_AMZN_TRACE_ID'),\n"
        "            'client': cc and [cc.client.app_title, cc.client.installation_id],\n"
        "            'custom': cc and cc.custom, 'env': cc and cc.env,\n"
        "            'w3c': context.w3c(),\n"
        "            'identity': [context.identity.cognito_identity_id,\n"
        "                         context.identity.cognito_identity_pool_id]}\n",
    )
    rt = runtimes.start()
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    client_context = {
        "client": {"installation_id": "i-1", "app_title": "Shop"},
        "custom": {"tenant": "acme"},
        "env": {"locale": "fr"},
        "w3c": {"traceparent": "00-abc-01", "other": "dropped"},
    }
    identity = {"cognitoIdentityId": "us-east-1:1", "cognitoIdentityPoolId": "us-east-1:pool"}
    rt.api.invoke(
        {},
        extra={
            "Lambda-Runtime-Trace-Id": trace,
            "Lambda-Runtime-Client-Context": json.dumps(client_context),
            "Lambda-Runtime-Cognito-Identity": json.dumps(identity),
        },
    )
    assert rt.api.wait_post("/response").json() == {
        "trace": trace,
        "client": ["Shop", "i-1"],
        "custom": {"tenant": "acme"},
        "env": {"locale": "fr"},
        "w3c": {"traceparent": "00-abc-01"},
        "identity": ["us-east-1:1", "us-east-1:pool"],
    }

    rt.api.invoke({}, request_id="no-trace")
    second = rt.api.wait_post("/no-trace/response").json()
    assert second == {
        "trace": None,
        "client": None,
        "custom": None,
        "env": None,
        "w3c": {},
        "identity": [None, None],
    }


def test_print_output_is_written_before_the_response(runtimes: RuntimeFactory) -> None:
    runtimes.write(
        "app.py",
        "import sys\n"
        "def handler(event, context):\n"
        "    print('line from print')\n"
        "    sys.stdout.write('partial without newline')\n"
        "    print('to stderr', file=sys.stderr)\n"
        "    return 'ok'\n",
    )
    rt = runtimes.start()
    rt.api.invoke({})
    post = rt.api.wait_post("/response")
    assert post.stdout_at_post == "line from print\npartial without newline"
    assert rt.stderr == "to stderr\n"


def test_logging_uses_the_lambda_text_format(runtimes: RuntimeFactory) -> None:
    runtimes.write(
        "app.py",
        "import logging\n"
        "logger = logging.getLogger()\n"
        "logger.setLevel(logging.INFO)\n"
        "def handler(event, context):\n"
        "    logger.info('hello %s', 'world')\n"
        "    logging.getLogger('child').debug('hidden')\n"
        "    return 'ok'\n",
    )
    rt = runtimes.start()
    rt.api.invoke({})
    post = rt.api.wait_post("/response")
    assert re.fullmatch(
        rf"\[INFO\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{REQUEST_ID}\thello world\n",
        post.stdout_at_post,
    )


def test_logging_level_from_aws_lambda_log_level(runtimes: RuntimeFactory) -> None:
    runtimes.write(
        "app.py",
        "import logging\n"
        "def handler(event, context):\n"
        "    logging.getLogger('x').debug('debug line')\n"
        "    return 'ok'\n",
    )
    rt = runtimes.start(env={"AWS_LAMBDA_LOG_LEVEL": "TRACE"})
    rt.api.invoke({})
    assert "[DEBUG]\t" in rt.api.wait_post("/response").stdout_at_post


def test_json_log_format(runtimes: RuntimeFactory) -> None:
    runtimes.write(
        "app.py",
        "import logging\n"
        "def handler(event, context):\n"
        "    logging.getLogger('app').warning('careful', extra={'order': 7})\n"
        "    return 'ok'\n",
    )
    rt = runtimes.start(env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
    rt.api.invoke({})
    record = json.loads(rt.api.wait_post("/response").stdout_at_post)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record.pop("timestamp"))
    assert record == {
        "level": "WARNING",
        "message": "careful",
        "logger": "app",
        "requestId": REQUEST_ID,
        "order": 7,
    }


def test_handler_exception_posts_error_and_logs_it(runtimes: RuntimeFactory) -> None:
    app = runtimes.write(
        "app.py",
        "def handler(event, context):\n    helper()\n\ndef helper():\n"
        "    raise ValueError('boom')\n",
    )
    rt = runtimes.start()
    rt.api.invoke({})
    post = rt.api.wait_post("/error")
    assert post.path == f"/2018-06-01/runtime/invocation/{REQUEST_ID}/error"
    assert "lambda-runtime-function-error-type" not in post.headers
    assert post.headers["content-type"] == "application/json"
    frames = [
        f'  File "{app}", line 2, in handler\n    helper()\n',
        f"  File \"{app}\", line 5, in helper\n    raise ValueError('boom')\n",
    ]
    assert post.json() == {
        "errorMessage": "boom",
        "errorType": "ValueError",
        "requestId": REQUEST_ID,
        "stackTrace": frames,
    }
    xray = json.loads(post.headers["lambda-runtime-function-xray-error-cause"])
    assert xray["exceptions"][0]["type"] == "ValueError"
    nbsp = "\u00a0"
    assert post.stdout_at_post == (
        "[ERROR] ValueError: boom\rTraceback (most recent call last):\r"
        f'{nbsp * 2}File "{app}", line 2, in handler\r{nbsp * 4}helper()\r'
        f"{nbsp * 2}File \"{app}\", line 5, in helper\r{nbsp * 4}raise ValueError('boom')\n"
    )

    # The runtime carries on with the next invocation.
    rt.api.invoke({}, request_id="after")
    rt.api.wait_post("/after/error")


def test_unserialisable_result_is_a_marshal_error(runtimes: RuntimeFactory) -> None:
    runtimes.write("app.py", "def handler(event, context):\n    return {1, 2}\n")
    rt = runtimes.start()
    rt.api.invoke({})
    assert rt.api.wait_post("/error").json() == {
        "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
        "errorType": "Runtime.MarshalError",
        "requestId": REQUEST_ID,
        "stackTrace": [],
    }


def test_invalid_json_event_is_an_unmarshal_error(runtimes: RuntimeFactory) -> None:
    runtimes.write("app.py", "def handler(event, context):\n    return event\n")
    rt = runtimes.start()
    rt.api.invoke(body=b"{not json")
    error = rt.api.wait_post("/error").json()
    assert isinstance(error, dict)
    assert error["errorType"] == "Runtime.UnmarshalError"
    assert error["errorMessage"].startswith("Unable to unmarshal input: Expecting property name")


def test_rejected_response_does_not_stop_the_runtime(runtimes: RuntimeFactory) -> None:
    runtimes.write("app.py", "def handler(event, context):\n    return event\n")
    rt = runtimes.start()
    rt.api.response_status.append(413)
    rt.api.invoke({"too": "big"})
    rt.api.wait_post("/response")
    rt.api.invoke({"n": 2}, request_id="req-2")
    assert rt.api.wait_post("/req-2/response").json() == {"n": 2}
    assert "Reason: '413'" in rt.stdout
    assert rt.process.poll() is None


def test_reconnects_when_the_api_drops_an_idle_connection(runtimes: RuntimeFactory) -> None:
    runtimes.write("app.py", "def handler(event, context):\n    return event\n")
    rt = runtimes.start()
    rt.api.drop_after_next = True
    for n in range(3):
        rt.api.invoke({"n": n}, request_id=f"req-{n}")
        assert rt.api.wait_post(f"/req-{n}/response").json() == {"n": n}


def test_runtime_exits_when_the_api_goes_away(runtimes: RuntimeFactory) -> None:
    runtimes.write("app.py", "def handler(event, context):\n    return event\n")
    rt = runtimes.start()
    rt.api.wait_next_calls(1)
    rt.api.close()
    assert rt.wait_exit() == 1


# ---------------------------------------------------------------------------------------------
# Init errors


@pytest.mark.parametrize(
    ("handler", "files", "error_type", "message"),
    [
        (
            "app",
            {},
            "Runtime.MalformedHandlerName",
            "Bad handler 'app': not enough values to unpack (expected 2, got 1)",
        ),
        (
            "missing.handler",
            {},
            "Runtime.ImportModuleError",
            "Unable to import module 'missing': No module named 'missing'",
        ),
        (
            "app.handler",
            {"app.py": "import not_installed_dependency\n"},
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'not_installed_dependency'",
        ),
        (
            "app.nope",
            {"app.py": "def handler(event, context):\n    pass\n"},
            "Runtime.HandlerNotFound",
            "Handler 'nope' missing on module 'app'",
        ),
        (
            "sys.handler",
            {},
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module sys as a handler module",
        ),
    ],
)
def test_init_errors(
    runtimes: RuntimeFactory, handler: str, files: dict[str, str], error_type: str, message: str
) -> None:
    for name, source in files.items():
        runtimes.write(name, source)
    rt = runtimes.start(handler)
    post = rt.api.wait_post("/init/error")
    assert post.path == "/2018-06-01/runtime/init/error"
    assert post.headers["lambda-runtime-function-error-type"] == error_type
    assert post.json() == {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": "",
        "stackTrace": [],
    }
    assert rt.wait_exit() == 1
    assert rt.api.next_calls == []
    assert f"[ERROR] {error_type}: {message}\rTraceback (most recent call last):\n" in rt.stdout
    assert "LAMBDA_WARNING: Unhandled exception." in rt.stdout


def test_syntax_error_in_handler_module(runtimes: RuntimeFactory) -> None:
    app = runtimes.write("app.py", "def handler(event, context:\n    return 1\n")
    rt = runtimes.start()
    post = rt.api.wait_post("/init/error")
    assert post.headers["lambda-runtime-function-error-type"] == "Runtime.UserCodeSyntaxError"
    error = post.json()
    assert isinstance(error, dict)
    assert error["errorMessage"].startswith("Syntax error in module 'app': ")
    assert f"({app.name}, line 1)" in error["errorMessage"]
    assert error["stackTrace"] == [f'  File "{app}" Line 1\n    def handler(event, context:\n']
    assert error["requestId"] == ""
    assert rt.wait_exit() == 1


def test_exception_while_importing_handler_module(runtimes: RuntimeFactory) -> None:
    app = runtimes.write("app.py", "x = 1\nraise RuntimeError('no config')\n")
    rt = runtimes.start()
    post = rt.api.wait_post("/init/error")
    assert post.headers["lambda-runtime-function-error-type"] == "RuntimeError"
    error = post.json()
    assert isinstance(error, dict)
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "no config"
    assert error["stackTrace"][-1] == (
        f"  File \"{app}\", line 2, in <module>\n    raise RuntimeError('no config')\n"
    )
    assert not any(str(RUNTIME.parent) in frame for frame in error["stackTrace"])
    assert rt.wait_exit() == 1


# ---------------------------------------------------------------------------------------------
# Search path


def test_handler_in_a_subdirectory(runtimes: RuntimeFactory) -> None:
    runtimes.write("src/api/__init__.py", "")
    runtimes.write("src/api/app.py", "def handler(event, context):\n    return __name__\n")
    runtimes.write("src/__init__.py", "")
    rt = runtimes.start("src/api/app.handler")
    rt.api.invoke({})
    assert rt.api.wait_post("/response").json() == "src.api.app"


def test_layer_directories_are_importable(runtimes: RuntimeFactory, tmp_path: Path) -> None:
    opt = tmp_path / "opt"
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (opt / "python" / "lib" / version / "site-packages").mkdir(parents=True)
    (opt / "python" / "shared.py").write_text("VALUE = 'from /opt/python'\n")
    (opt / "python" / "lib" / version / "site-packages" / "dep.py").write_text("VALUE = 'dep'\n")
    runtimes.write(
        "app.py",
        "import sys, shared, dep\n"
        "def handler(event, context):\n"
        "    return [shared.VALUE, dep.VALUE, sys.path[:4], sys.argv[1:]]\n",
    )
    rt = runtimes.start(opt_root=opt)
    rt.api.invoke({})
    shared_value, dep_value, path, argv = rt.api.wait_post("/response").json()
    assert (shared_value, dep_value, argv) == ("from /opt/python", "dep", [])
    assert path == [
        str(rt.task_root),
        f"{opt}/python/lib/{version}/site-packages",
        f"{opt}/python",
        next(p for p in sys.path if p.endswith(".zip") or p.endswith(version)),
    ]


def test_pythonpath_is_honoured(runtimes: RuntimeFactory, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "helper.py").write_text("VALUE = 'from PYTHONPATH'\n")
    runtimes.write(
        "app.py",
        "import sys, helper\n"
        "def handler(event, context):\n"
        f"    return [helper.VALUE, sys.path.index({str(extra)!r})]\n",
    )
    rt = runtimes.start(env={"PYTHONPATH": f"{extra}{os.pathsep}"})
    rt.api.invoke({})
    assert rt.api.wait_post("/response").json() == ["from PYTHONPATH", 1]


def test_pth_files_in_the_task_root_are_processed(runtimes: RuntimeFactory, tmp_path: Path) -> None:
    vendored = tmp_path / "vendored"
    vendored.mkdir()
    (vendored / "vendoredmod.py").write_text("VALUE = 'via .pth'\n")
    runtimes.write("extra.pth", f"{vendored}\n")
    runtimes.write(
        "app.py", "import vendoredmod\ndef handler(e, c):\n    return vendoredmod.VALUE\n"
    )
    rt = runtimes.start()
    rt.api.invoke({})
    assert rt.api.wait_post("/response").json() == "via .pth"


# ---------------------------------------------------------------------------------------------
# Start-up


def test_startup_imports_stay_small(runtimes: RuntimeFactory) -> None:
    runtimes.write(
        "app.py",
        "import sys\ndef handler(event, context):\n    return sorted(sys.modules)\n",
    )
    rt = runtimes.start()
    rt.api.invoke({})
    modules = set(rt.api.wait_post("/response").json())
    # These cost more than the rest of start-up; the runtime must not pay for them itself.
    assert not modules & {"logging", "http.client", "ssl", "email", "traceback", "socket"}


# ---------------------------------------------------------------------------------------------
# Other interpreters: the runtime runs in whichever python3.x the function asks for


def _other_pythons() -> list[str]:
    """python3.N (N >= 8) on PATH, plus LAMINA_TEST_PYTHONS (os.pathsep-separated paths)."""
    candidates = [shutil.which(f"python3.{minor}") for minor in range(8, 15)]
    candidates += os.environ.get("LAMINA_TEST_PYTHONS", "").split(os.pathsep)
    found: dict[str, str] = {}
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-I", "-S", "-c", "import sys; print(sys.version_info[:2] >= (3, 8))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.startswith("True"):
            found.setdefault(os.path.realpath(candidate), candidate)
    return sorted(found.values())


@pytest.mark.parametrize("python", _other_pythons() or [pytest.param("", marks=pytest.mark.skip)])
def test_other_interpreters(runtimes: RuntimeFactory, python: str) -> None:
    runtimes.write(
        "app.py",
        "import logging\n"
        "def handler(event, context):\n"
        "    logging.getLogger().warning('warned')\n"
        "    if event.get('fail'):\n"
        "        raise ValueError('boom')\n"
        "    return {'echo': event, 'left': context.get_remaining_time_in_millis() > 0}\n",
    )
    rt = runtimes.start(command=python_runtime.bootstrap_command(python))
    rt.api.invoke({"n": 1})
    post = rt.api.wait_post("/response")
    assert post.json() == {"echo": {"n": 1}, "left": True}
    assert "[WARNING]\t" in post.stdout_at_post
    rt.api.invoke({"fail": True}, request_id="req-2")
    error = rt.api.wait_post("/req-2/error").json()
    assert isinstance(error, dict)
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "boom")


# ---------------------------------------------------------------------------------------------
# Parity with AWS's runtime interface client


def _normalise(text: str, task_roots: list[Path]) -> str:
    for root in task_roots:
        text = text.replace(str(root), "<task>")
    text = re.sub(r'File "[^"]*/importlib/__init__\.py", line \d+', "File <importlib>", text)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "<time>", text)


PARITY_CASES = {
    "handler_exception": (
        "app.handler",
        "def handler(event, context):\n    return helper(event)\n\n"
        "def helper(event):\n    raise KeyError(event['missing'])\n",
    ),
    "marshal_error": ("app.handler", "def handler(event, context):\n    return object()\n"),
    "import_time_exception": ("app.handler", "import json\njson.loads('{')\n"),
    "syntax_error": ("app.handler", "def handler(event, context)\n    return 1\n"),
    "missing_handler": ("app.nope", "def handler(event, context):\n    return 1\n"),
    "decimal_and_unicode": (
        "app.handler",
        "from decimal import Decimal\n"
        "def handler(event, context):\n"
        "    return {'d': Decimal('1.10'), 'n': Decimal('NaN'), 's': 'Zoë ✓', 'b': b'raw'}\n",
    ),
}


@pytest.mark.parametrize("case", sorted(PARITY_CASES))
def test_payloads_match_awslambdaric(tmp_path: Path, case: str) -> None:
    pytest.importorskip("awslambdaric")
    handler, source = PARITY_CASES[case]
    outcomes = []
    for name, command in (
        ("lamina", None),
        ("awslambdaric", [sys.executable, "-m", "awslambdaric", handler]),
    ):
        factory = RuntimeFactory(tmp_path / name)
        (tmp_path / name).mkdir()
        try:
            factory.write("app.py", source)
            rt = factory.start(handler, command=command, name=name)
            rt.api.invoke({"k": 1})
            post = rt.api.wait_first_post()
            error_type = post.headers.get("lambda-runtime-function-error-type")
            if post.path.endswith("/init/error"):
                rt.wait_exit()
            outcomes.append(
                (
                    post.path,
                    error_type,
                    post.headers.get("content-type"),
                    _normalise(post.body.decode(), [rt.task_root]),
                    _normalise(post.stdout_at_post, [rt.task_root]),
                )
            )
        finally:
            factory.close()
    lamina, aws = outcomes
    assert lamina[:2] == aws[:2]
    if not lamina[0].endswith("/init/error"):  # http.client sends no content type there
        assert lamina[2] == aws[2]
    assert json.loads(lamina[3]) == json.loads(aws[3])
    assert lamina[3] == aws[3]
    assert lamina[4] == aws[4]


# ---------------------------------------------------------------------------------------------
# The marshaller in-process, against awslambdaric's


def _load_runtime() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lamina_python_runtime_under_test", RUNTIME)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "execution_env", ["", "AWS_Lambda_python3.11", "AWS_Lambda_python3.12", "AWS_Lambda_python3.13"]
)
@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, None, True, "x"]},
        {"price": Decimal("19.90"), "exp": Decimal("1E+3"), "neg": Decimal("-0.000")},
        [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), float("nan")],
        {"text": "Zoë \u2028 ✓ \x00", "raw": b"bytes are text"},
        "plain string",
        Decimal("12345678901234567890.123456789"),
    ],
    ids=repr,
)
def test_to_json_matches_awslambdaric(
    monkeypatch: pytest.MonkeyPatch, execution_env: str, value: object
) -> None:
    marshaller = pytest.importorskip("awslambdaric.lambda_runtime_marshaller")
    monkeypatch.setenv("AWS_EXECUTION_ENV", execution_env)
    runtime = _load_runtime()
    runtime._State.ensure_ascii = runtime.escapes_non_ascii(execution_env)
    assert runtime.to_json(value) == marshaller.to_json(value)


def test_to_json_unserialisable_message_matches_awslambdaric() -> None:
    marshaller = pytest.importorskip("awslambdaric.lambda_runtime_marshaller")
    runtime = _load_runtime()
    aws: Any
    with pytest.raises(Exception) as aws:
        marshaller.LambdaMarshaller().marshal_response({"when": object()})
    with pytest.raises(runtime.FaultException) as ours:
        runtime.marshal_response({"when": object()})
    assert ours.value.msg == aws.value.msg


def test_runtime_imports_nothing_but_the_standard_library() -> None:
    source = RUNTIME.read_text() + python_runtime.BOOTSTRAP_PATH.read_text()
    imported = set(re.findall(r"^\s*(?:import|from) ([\w.]+)", source, re.MULTILINE))
    assert imported <= {
        "__future__",
        "_socket",
        "os",
        "sys",
        "time",
        "json",
        "traceback",
        "importlib",
        "io",
        "site",
        "logging",
        "lamina_python_runtime",
    }


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nLambda-Runtime-Aws-Request-Id: r\r\n"
        b'\r\n5;ext=1\r\n{"a":\r\n2\r\n1}\r\n0\r\nTrailer: x\r\n\r\n',
        b'HTTP/1.1 200 OK\r\nConnection: close\r\nLambda-Runtime-Aws-Request-Id: r\r\n\r\n{"a":1}',
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n"
        b'Lambda-Runtime-Aws-Request-Id: r\r\n\r\n{"a":1}',
    ],
    ids=["chunked", "until-close", "interim-100"],
)
def test_runtime_api_client_reads_other_framings(response: bytes) -> None:
    runtime = _load_runtime()
    with socket.create_server(("127.0.0.1", 0)) as server:

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(response)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        api = runtime.RuntimeAPI(f"127.0.0.1:{server.getsockname()[1]}")
        headers, body = api.next()
        api.close()
        thread.join(WAIT)
    assert headers["lambda-runtime-aws-request-id"] == "r"
    assert body == b'{"a":1}'


# ---------------------------------------------------------------------------------------------
# Lamina's runtime channel


def _frame(kind: bytes, head: bytes, body: bytes) -> bytes:
    return kind + len(head).to_bytes(4, "big") + len(body).to_bytes(4, "big") + head + body


def _read_frame(conn: socket.socket) -> tuple[bytes, bytes, bytes]:
    def exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            assert chunk, "the runtime closed the connection"
            data += chunk
        return data

    start = exactly(9)
    head = exactly(int.from_bytes(start[1:5], "big"))
    return start[:1], head, exactly(int.from_bytes(start[5:9], "big"))


def test_runtime_api_client_speaks_lamina_s_channel_when_offered() -> None:
    runtime = _load_runtime()
    invocation_head = (
        b"Content-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: r1\r\n"
        b"Lambda-Runtime-Deadline-Ms: 42\r\n"
    )
    seen: list[object] = []
    with socket.create_server(("127.0.0.1", 0)) as server:

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                seen.append(request)
                conn.sendall(
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                    b"Upgrade: lamina-runtime/1\r\n\r\n" + _frame(b"I", invocation_head, b"{}")
                )
                seen.append(_read_frame(conn))
                conn.sendall(_frame(b"X", b"Status: 413\r\n", b'{"errorType":"X"}'))
                seen.append(_read_frame(conn))
                conn.sendall(_frame(b"I", invocation_head.replace(b"r1", b"r2"), b"[1]"))
                seen.append(_read_frame(conn))
                conn.sendall(_frame(b"I", invocation_head.replace(b"r1", b"r3"), b"[2]"))

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        api = runtime.RuntimeAPI(f"127.0.0.1:{server.getsockname()[1]}")
        headers, body = api.next()
        with pytest.raises(runtime.RuntimeAPIError) as refused:
            api.post_response("r1", b"x" * 10, "text/plain")
        following = api.next()
        after_error = api.post_error("r2", '{"errorType":"E"}', "")
        api.close()
        thread.join(WAIT)

    assert b"Connection: Upgrade\r\nUpgrade: lamina-runtime/1\r\n" in seen[0]  # type: ignore[operator]
    assert (headers["lambda-runtime-aws-request-id"], body) == ("r1", b"{}")
    assert headers["content-type"] == "application/json"
    assert seen[1] == (
        b"R",
        b"Lambda-Runtime-Aws-Request-Id: r1\r\nContent-Type: text/plain\r\n",
        b"x" * 10,
    )
    # Worded as over HTTP: the same warning reaches the function's log.
    assert str(refused.value) == (
        "Request to Lambda Runtime '/2018-06-01/runtime/invocation/r1/response' endpoint "
        "failed. Reason: '413'. Response body: 'b'{\"errorType\":\"X\"}''"
    )
    assert seen[2] == (b"N", b"", b"")
    assert (following[0]["lambda-runtime-aws-request-id"], following[1]) == ("r2", b"[1]")
    assert seen[3] == (
        b"E",
        b"Lambda-Runtime-Aws-Request-Id: r2\r\nContent-Type: application/json\r\n",
        b'{"errorType":"E"}',
    )
    assert after_error is not None and after_error[1] == b"[2]"


async def test_the_runtime_uses_the_channel_of_lamina_s_runtime_api(
    runtimes: RuntimeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lamina.core.invocation import Invocation as LaminaInvocation
    from lamina.http import runtime_api

    channels: list[object] = []

    class RecordedChannel(runtime_api.RuntimeChannel):
        def __init__(self, target: Any) -> None:
            super().__init__(target)
            channels.append(self)

    monkeypatch.setattr(runtime_api, "RuntimeChannel", RecordedChannel)

    class Target:
        def __init__(self) -> None:
            self.queue: asyncio.Queue[LaminaInvocation] = asyncio.Queue()
            self.posts: list[tuple[str, str, bytes, str]] = []
            self.posted = asyncio.Event()

        async def wait_next(self) -> LaminaInvocation:
            return await self.queue.get()

        def post_response(self, request_id: str, body: bytes, content_type: str) -> None:
            self.posts.append(("response", request_id, body, content_type))
            self.posted.set()

        def post_error(self, request_id: str, body: bytes, content_type: str) -> None:
            self.posts.append(("error", request_id, body, content_type))
            self.posted.set()

        def post_init_error(self, body: bytes, content_type: str) -> None:
            raise AssertionError(body)

        def post_too_large(self) -> None:
            raise AssertionError("too large")

    target = Target()
    endpoint = await runtime_api.RuntimeApi().open(target)  # type: ignore[arg-type]
    runtimes.write(
        "app.py",
        "def handler(event, context):\n"
        "    if event.get('fail'):\n"
        "        raise ValueError('boom')\n"
        "    print('handled', context.aws_request_id)\n"
        "    return {'got': event}\n",
    )
    rt = runtimes.start(env={"AWS_LAMBDA_RUNTIME_API": endpoint.address})
    try:
        for request_id, event in (("a", {"n": 1}), ("b", {"fail": True}), ("c", {"n": 3})):
            target.queue.put_nowait(
                LaminaInvocation(request_id, json.dumps(event).encode(), ARN, 0, "Root=1-x")
            )
        async with asyncio.timeout(WAIT):
            while len(target.posts) < 3:
                target.posted.clear()
                await target.posted.wait()
    finally:
        rt.process.kill()
        endpoint.close()
    assert len(channels) == 1  # one connection, upgraded with the first `next`
    (_, a, a_body, a_type), (kind, b, b_body, _), (_, c, c_body, _) = target.posts
    assert (a, json.loads(a_body), a_type) == ("a", {"got": {"n": 1}}, "application/json")
    assert (kind, b, json.loads(b_body)["errorType"]) == ("error", "b", "ValueError")
    assert (c, json.loads(c_body)) == ("c", {"got": {"n": 3}})
    assert "handled a\n" in rt.stdout and "[ERROR] ValueError: boom" in rt.stdout
