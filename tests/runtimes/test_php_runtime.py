"""The PHP runtime (src/lamina/runtimes/php/), tested as the platform runs it.

Each test starts a fake Runtime API on a real socket, spawns the runtime with the argv and
PHP variables the launcher gives it, in a temporary task root, queues invocations and looks
at what the runtime posted and printed (stdout and stderr share one file, as they share one
pipe under Lamina). Every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lamina.core.runtimes import RuntimeChoice
from lamina.runtimes import php
from lamina.services import php_launch

PHP = php.find_php()
pytestmark = pytest.mark.skipif(PHP is None, reason="needs PHP's CLI (php8.2-cli)")

WAIT = 10.0  # seconds; bounded, so that a broken runtime fails the test, not the run
ARN = "arn:aws:lambda:us-east-1:123456789012:function:app-dev-api"
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"


@dataclass
class Post:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    client: tuple[str, int]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeRuntimeApi:
    queue: list[tuple[str, bytes]] = field(default_factory=list)  # (request id, payload)
    deadlines: dict[str, int] = field(default_factory=dict)  # request id -> epoch ms
    posts: list[Post] = field(default_factory=list)
    nexts: list[tuple[float, tuple[str, int]]] = field(default_factory=list)  # (when, client)
    statuses: list[int] = field(default_factory=list)  # answers to /response posts, FIFO
    drop_after_post: bool = False  # close the connection after a 202, without saying so
    closed: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def invoke(self, event: object, request_id: str = "", deadline_in_ms: int = 30_000) -> str:
        request_id = request_id or f"req-{len(self.queue) + len(self.posts) + 1}"
        with self.cond:
            self.queue.append((request_id, json.dumps(event).encode()))
            self.deadlines[request_id] = int(time.time() * 1000) + deadline_in_ms
            self.cond.notify_all()
        return request_id

    def wait_post(self, request_id: str) -> Post:
        def found() -> Post | None:
            return next((p for p in self.posts if f"/{request_id}/" in p.path), None)

        with self.cond:
            assert self.cond.wait_for(found, WAIT), f"no post for {request_id}: {self.posts}"
            post = found()
            assert post is not None
            return post

    def wait_path(self, suffix: str) -> Post:
        def found() -> Post | None:
            return next((p for p in self.posts if p.path.endswith(suffix)), None)

        with self.cond:
            assert self.cond.wait_for(found, WAIT), f"no post to …{suffix}: {self.posts}"
            post = found()
            assert post is not None
            return post

    def wait_nexts(self, count: int) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.nexts) >= count, WAIT)
            assert ok, f"{len(self.nexts)} calls to /next, expected {count}"

    def result(self, event: object, **kwargs: Any) -> Any:
        """Invoke and return the posted body (JSON), whether a response or an error."""
        return self.wait_post(self.invoke(event, **kwargs)).json()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


def _handler(api: FakeRuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # As Lamina's server: no Nagle delay between a response's head and body.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with api.cond:
                api.nexts.append((time.perf_counter(), self.client_address))
                api.cond.notify_all()
                api.cond.wait_for(lambda: api.queue or api.closed)
                if api.closed:
                    self.close_connection = True
                    return
                request_id, body = api.queue.pop(0)
            headers = {
                "Lambda-Runtime-Aws-Request-Id": request_id,
                "Lambda-Runtime-Deadline-Ms": str(api.deadlines[request_id]),
                "Lambda-Runtime-Invoked-Function-Arn": ARN,
                "Lambda-Runtime-Trace-Id": TRACE,
                "Content-Type": "application/json",
            }
            self._reply(200, body, headers)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = 202
            with api.cond:
                if self.path.endswith("/response") and api.statuses:
                    status = api.statuses.pop(0)
                headers = {k.lower(): v for k, v in self.headers.items()}
                api.posts.append(Post(self.path, headers, body, self.client_address))
                api.cond.notify_all()
            if status == 202:
                self._reply(202, b'{"status":"OK"}')
            else:
                self._reply(status, b'{"errorType":"RequestEntityTooLarge","errorMessage":"x"}')
            if api.drop_after_post:
                self.close_connection = True

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
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class PhpRuntime:
    api: FakeRuntimeApi
    process: subprocess.Popen[bytes]
    task_root: Path
    log_path: Path
    started: float

    @property
    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")

    def wait_exit(self) -> int:
        return self.process.wait(timeout=WAIT)

    def wait_log(self, text: str) -> str:
        deadline = time.monotonic() + WAIT
        while text not in self.log:
            assert time.monotonic() < deadline, f"{text!r} not in the log:\n{self.log}"
            time.sleep(0.01)
        return self.log


@dataclass
class PhpRuntimes:
    """Starts runtimes in `tmp_path/task`; kills them and their workers at teardown."""

    tmp_path: Path
    started: list[PhpRuntime] = field(default_factory=list)
    servers: list[ThreadingHTTPServer] = field(default_factory=list)

    @property
    def task_root(self) -> Path:
        return self.tmp_path / "task"

    def write(self, relative: str, source: str) -> Path:
        path = self.task_root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        return path

    def start(
        self,
        handler: str = "index.php",
        *,
        kind: str = "function",
        env: dict[str, str] | None = None,
    ) -> PhpRuntime:
        assert PHP is not None
        self.task_root.mkdir(exist_ok=True)
        api = FakeRuntimeApi()
        server = _QuietServer(("127.0.0.1", 0), _handler(api))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self.servers.append(server)
        choice = RuntimeChoice("php-console" if kind == "console" else "php-function", "8.2")
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **php_launch.variables(choice, self.task_root, None),
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "AWS_LAMBDA_FUNCTION_NAME": "app-dev-api",
            "AWS_REGION": "us-east-1",
            **(env or {}),
        }
        log_path = self.tmp_path / f"runtime{len(self.started)}.log"
        with log_path.open("wb") as log:
            started = time.perf_counter()
            process = subprocess.Popen(
                php.bootstrap_command(PHP.path, "console" if kind == "console" else "function"),
                cwd=self.task_root,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        runtime = PhpRuntime(api, process, self.task_root, log_path, started)
        self.started.append(runtime)
        return runtime

    def close(self) -> None:
        for runtime in self.started:
            runtime.api.close()
            if runtime.process.poll() is None:
                os.killpg(runtime.process.pid, 9)  # the zygote and its worker
                runtime.process.wait(timeout=WAIT)
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def runtimes(tmp_path: Path) -> Iterator[PhpRuntimes]:
    factory = PhpRuntimes(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


# --- handlers and context --------------------------------------------------------------------

CONTEXT = """<?php
use Bref\\Context\\Context;
return function ($event, Context $context) {
    static $calls = 0;
    $calls++;
    return [
        'event' => $event,
        'calls' => $calls,
        'pid' => getmypid(),
        'requestId' => $context->getAwsRequestId(),
        'remaining' => $context->getRemainingTimeInMillis(),
        'deadline' => $context->getDeadlineMs(),
        'arn' => $context->getInvokedFunctionArn(),
        'trace' => $context->getTraceId(),
        'contextClass' => get_class($context),
        'invocationContext' => json_decode(getenv('LAMBDA_INVOCATION_CONTEXT'), true),
        'requestIdEnv' => [
            getenv('LAMBDA_REQUEST_ID'), $_SERVER['LAMBDA_REQUEST_ID'], $_ENV['LAMBDA_REQUEST_ID'],
        ],
        'traceEnv' => getenv('_X_AMZN_TRACE_ID'),
        'ping' => getenv('BREF_PING_DISABLE'),
        'bref' => getenv('BREF_RUNTIME'),
        'cwd' => getcwd(),
    ];
};
"""


def test_a_closure_gets_the_event_and_bref_s_context(runtimes: PhpRuntimes) -> None:
    runtimes.write("index.php", CONTEXT)
    runtime = runtimes.start()

    body = runtime.api.result({"name": "ada", "list": [1, 2]}, request_id="r-1")

    assert body["event"] == {"name": "ada", "list": [1, 2]}
    assert body["requestId"] == "r-1"
    assert 0 < body["remaining"] <= 30_000
    assert body["deadline"] - int(time.time() * 1000) <= 30_000
    assert (body["arn"], body["trace"], body["traceEnv"]) == (ARN, TRACE, TRACE)
    assert body["contextClass"] == "Bref\\Context\\Context"
    assert body["invocationContext"] == {
        "awsRequestId": "r-1",
        "deadlineMs": body["deadline"],
        "invokedFunctionArn": ARN,
        "traceId": TRACE,
    }
    assert body["requestIdEnv"] == ["r-1"] * 3
    assert (body["ping"], body["bref"]) == ("1", "Bref\\FunctionRuntime\\Main")
    assert body["cwd"] == str(runtimes.task_root)
    post = runtime.api.wait_post("r-1")
    assert post.path == "/2018-06-01/runtime/invocation/r-1/response"
    assert post.headers["content-type"] == "application/json"


def test_one_worker_serves_every_invocation_over_one_connection(runtimes: PhpRuntimes) -> None:
    runtimes.write("index.php", CONTEXT)
    runtime = runtimes.start()

    bodies = [runtime.api.result({"n": n}) for n in range(3)]

    assert [b["calls"] for b in bodies] == [1, 2, 3]
    assert len({b["pid"] for b in bodies}) == 1
    runtime.api.wait_nexts(4)
    clients = {client for _, client in runtime.api.nexts} | {p.client for p in runtime.api.posts}
    assert len(clients) == 1  # kept alive: one TCP connection for every request


def test_a_kept_alive_connection_the_server_closed_is_opened_again(
    runtimes: PhpRuntimes,
) -> None:
    runtimes.write("index.php", CONTEXT)
    runtime = runtimes.start()
    runtime.api.drop_after_post = True

    bodies = [runtime.api.result({"n": n}) for n in range(3)]

    assert [b["calls"] for b in bodies] == [1, 2, 3]


def test_bref_loop_max_gives_a_fresh_worker_after_that_many_invocations(
    runtimes: PhpRuntimes,
) -> None:
    runtimes.write("index.php", CONTEXT)
    runtime = runtimes.start(env={"BREF_LOOP_MAX": "2"})

    bodies = [runtime.api.result({"n": n}) for n in range(3)]

    assert [b["calls"] for b in bodies] == [1, 2, 1]
    assert bodies[0]["pid"] == bodies[1]["pid"] != bodies[2]["pid"]
    assert runtime.process.poll() is None  # the environment lives on


HANDLER_OBJECTS = """<?php
use Bref\\Context\\Context;
use Bref\\Event\\Handler;

class Greeter implements Handler
{
    public function handle($event, Context $context)
    {
        return 'Hello ' . $event['name'] . ' from ' . get_class($this);
    }
}

class Duck
{
    public function handle($event, $context)
    {
        return ['duck' => $event['name'], 'id' => $context->getAwsRequestId()];
    }
}

return getenv('WHICH') === 'duck' ? new Duck() : new Greeter();
"""


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("bref", "Hello ada from Greeter"),
        ("duck", {"duck": "ada", "id": "r-1"}),
    ],
)
def test_handler_objects_are_called_with_the_event_and_context(
    runtimes: PhpRuntimes, which: str, expected: object
) -> None:
    runtimes.write("index.php", HANDLER_OBJECTS)
    runtime = runtimes.start(env={"WHICH": which})

    assert runtime.api.result({"name": "ada"}, request_id="r-1") == expected


def test_the_app_s_autoloader_comes_first_and_its_classes_win(runtimes: PhpRuntimes) -> None:
    runtimes.write(
        "vendor/autoload.php",
        """<?php
        $GLOBALS['autoloaded_at'] = hrtime(true);
        spl_autoload_register(function ($class) {
            $file = __DIR__ . '/classes/' . str_replace('\\\\', '/', $class) . '.php';
            if (is_file($file)) require $file;
        });
        """,
    )
    runtimes.write(
        "vendor/classes/Bref/Context/Context.php",
        """<?php namespace Bref\\Context;
        final class Context {
            public function __construct(
                private string $id, int $deadline, string $arn, string $trace
            ) {}
            public function getAwsRequestId(): string { return 'app:' . $this->id; }
        }
        """,
    )
    runtimes.write(
        "vendor/classes/App/Greeting.php",
        "<?php namespace App; final class Greeting { const TEXT = 'from vendor'; }",
    )
    runtimes.write(
        "index.php",
        """<?php
        $loadedBefore = isset($GLOBALS['autoloaded_at']);
        return function ($event, $context) use ($loadedBefore) {
            return [$loadedBefore, \\App\\Greeting::TEXT, $context->getAwsRequestId()];
        };
        """,
    )
    runtime = runtimes.start()

    result = runtime.api.result({}, request_id="r-1")
    assert result == [True, "from vendor", "app:r-1"], result


def test_bref_autoload_path_names_another_autoloader(runtimes: PhpRuntimes) -> None:
    runtimes.write("lib/boot.php", "<?php const BOOTED = 'custom autoloader';")
    runtimes.write("index.php", "<?php return fn ($event) => BOOTED;")
    runtime = runtimes.start(env={"BREF_AUTOLOAD_PATH": str(runtimes.task_root / "lib/boot.php")})

    assert runtime.api.result({}) == "custom autoloader"


def test_the_project_s_php_conf_d_and_the_machine_s_extensions_apply(
    runtimes: PhpRuntimes,
) -> None:
    runtimes.write("php/conf.d/app.ini", "memory_limit = 77M\n")
    runtimes.write(
        "index.php",
        """<?php return fn ($e) => [
            ini_get('memory_limit'), ini_get('display_errors'), php_ini_loaded_file(),
            count(get_loaded_extensions()),
        ];""",
    )
    runtime = runtimes.start()

    memory, display, loaded, extensions = runtime.api.result({})

    assert (memory, display, loaded) == ("77M", "0", str(php.INI_PATH))
    bare = subprocess.run(
        [PHP.path, "-n", "-r", "echo count(get_loaded_extensions());"],  # type: ignore[union-attr]
        capture_output=True,
        check=True,
    )
    assert extensions >= int(bare.stdout)


# --- failures --------------------------------------------------------------------------------

FAILING = """<?php
return function ($event) {
    static $calls = 0;
    $calls++;
    switch ($event['do'] ?? '') {
        case 'throw':
            throw new RuntimeException('outer', 3, new LogicException('inner'));
        case 'undefined':
            return undefined_function();
        case 'memory':
            ini_set('memory_limit', '32M');
            $data = [];
            while (true) { $data[] = str_repeat('x', 1 << 20); }
        case 'exit':
            exit(0);
        case 'binary':
            return "\\xff\\xfe";
    }
    return ['calls' => $calls, 'pid' => getmypid()];
};
"""


def test_an_exception_is_an_error_payload_and_bref_s_log_line(runtimes: PhpRuntimes) -> None:
    runtimes.write("index.php", FAILING)
    runtime = runtimes.start()

    before = runtime.api.result({})
    error = runtime.api.result({"do": "throw"}, request_id="r-2")
    after = runtime.api.result({})

    assert error["errorType"] == "RuntimeException"
    assert error["errorMessage"] == "outer"
    assert error["errorLocation"] == f"File: {runtimes.task_root}/index.php, Line: 7"
    assert error["stackTrace"][0].startswith("#0 ")
    assert error["stackTrace"][-1].endswith("{main}")
    post = runtime.api.wait_post("r-2")
    assert post.path.endswith("/r-2/error")
    assert "lambda-runtime-function-error-type" not in post.headers  # as Bref: no header
    line = next(x for x in runtime.log.splitlines() if x.startswith("r-2\tInvoke Error\t"))
    logged = json.loads(line.split("\t", 2)[2])
    assert (logged["errorType"], logged["errorMessage"]) == ("RuntimeException", "outer")
    assert logged["stack"] == error["stackTrace"]
    assert [(p["errorType"], p["errorMessage"]) for p in logged["previous"]] == [
        ("LogicException", "inner")
    ]
    # As Bref: a failed invocation leaves no state behind; a fresh worker takes the next.
    assert after["calls"] == 1
    assert after["pid"] != before["pid"]
    assert runtime.process.poll() is None


def test_calling_an_undefined_function_is_an_error_payload(runtimes: PhpRuntimes) -> None:
    runtimes.write("index.php", FAILING)
    runtime = runtimes.start()

    error = runtime.api.result({"do": "undefined"})

    assert (error["errorType"], error["errorMessage"]) == (
        "Error",
        "Call to undefined function undefined_function()",
    )
    assert runtime.api.result({})["calls"] == 1


def test_a_fatal_error_is_an_error_payload_and_a_fresh_worker_follows(
    runtimes: PhpRuntimes,
) -> None:
    runtimes.write("index.php", FAILING)
    runtime = runtimes.start()

    first = runtime.api.result({})
    error = runtime.api.result({"do": "memory"}, request_id="r-2")
    after = runtime.api.result({})

    assert error["errorType"] == "E_ERROR"
    assert error["errorMessage"].startswith("Allowed memory size of 33554432 bytes exhausted")
    assert error["stackTrace"] == [f"#0 {runtimes.task_root}/index.php(13)"]
    log = runtime.wait_log("r-2\tInvoke Error\t")
    assert "PHP Fatal error:  Allowed memory size of 33554432 bytes exhausted" in log
    assert (after["calls"], after["pid"] != first["pid"]) == (1, True)
    assert runtime.process.poll() is None


def test_a_handler_that_exits_fails_its_invocation(runtimes: PhpRuntimes) -> None:
    runtimes.write("index.php", FAILING)
    runtime = runtimes.start()

    error = runtime.api.result({"do": "exit"})

    assert error["errorType"] == "Runtime.ExitError"
    assert "exit or die" in error["errorMessage"]
    assert runtime.api.result({})["calls"] == 1


def test_a_result_json_cannot_encode_fails_with_bref_s_explanation(
    runtimes: PhpRuntimes,
) -> None:
    runtimes.write("index.php", FAILING)
    runtime = runtimes.start()

    error = runtime.api.result({"do": "binary"})

    assert error["errorType"] == "Exception"
    assert error["errorMessage"].startswith("The Lambda response cannot be encoded to JSON.")
    assert "Malformed UTF-8 characters" in error["errorMessage"]


def test_a_response_the_api_refuses_as_too_big_is_logged_not_posted_again(
    runtimes: PhpRuntimes,
) -> None:
    runtimes.write("index.php", FAILING)
    runtime = runtimes.start()
    runtime.api.statuses.append(413)

    runtime.api.invoke({}, request_id="r-1")
    runtime.wait_log("r-1\tInvoke Error\t")
    after = runtime.api.result({})

    assert [p.path.rsplit("/", 2)[1:] for p in runtime.api.posts][:1] == [["r-1", "response"]]
    assert not [p for p in runtime.api.posts if p.path.endswith("/r-1/error")]
    assert '"errorType":"Bref\\\\Runtime\\\\ResponseTooBig"' in runtime.log
    assert after["calls"] == 1


def test_without_fork_the_worker_serves_on_after_a_failure(runtimes: PhpRuntimes) -> None:
    runtimes.write("php/conf.d/nofork.ini", "disable_functions = pcntl_fork\n")
    runtimes.write("index.php", FAILING)
    runtime = runtimes.start()

    first = runtime.api.result({})
    runtime.api.result({"do": "throw"})
    after = runtime.api.result({})

    assert (after["calls"], after["pid"]) == (3, first["pid"])  # state survived
    assert first["pid"] == runtime.process.pid


LARGE = """<?php
return function ($event) {
    $bytes = random_bytes(16);
    return [
        'big' => str_repeat('a', 5 * 1024 * 1024),
        'base64' => base64_encode($bytes),
        'bytes' => bin2hex($bytes),
        'text' => "\\u{e9}t\\u{e9} \\u{1F600} \\"quoted\\" \\\\ / \\n\\t\\0",
    ];
};
"""


def test_a_5_mb_response_and_binary_content_as_base64_arrive_whole(
    runtimes: PhpRuntimes,
) -> None:
    runtimes.write("index.php", LARGE)
    runtime = runtimes.start()

    body = runtime.api.result({})

    assert body["big"] == "a" * 5 * 1024 * 1024
    assert base64.b64decode(body["base64"]).hex() == body["bytes"]
    assert body["text"] == 'été 😀 "quoted" \\ / \n\t\0'


# --- init errors -----------------------------------------------------------------------------

INIT_NOTICE = (
    "The function failed to start. AWS Lambda will restart the process, do not be surprised "
    "if you see the error message twice."
)


def test_a_missing_handler_file_is_an_init_error(runtimes: PhpRuntimes) -> None:
    runtime = runtimes.start("missing.php")

    post = runtime.api.wait_path("/init/error")

    assert runtime.wait_exit() == 1
    assert post.headers["lambda-runtime-function-error-type"] == "Runtime.NoSuchHandler"
    body = post.json()
    assert body["errorType"] == "Bref\\Runtime\\HandlerNotFound"
    assert body["errorMessage"] == f"Handler `{runtimes.task_root}/missing.php` doesn't exist"
    assert f"Fatal error: Bref\\Runtime\\HandlerNotFound: Handler `{runtimes.task_root}" in (
        runtime.log
    )
    assert INIT_NOTICE in runtime.log


@pytest.mark.parametrize(
    ("source", "error_type", "message"),
    [
        ("<?php return 42;", "Bref\\Runtime\\HandlerNotFound", "must return a function"),
        ("<?php throw new DomainException('no db');", "DomainException", "no db"),
        ("<?php return function (", "ParseError", "Unclosed"),
    ],
)
def test_a_handler_file_that_fails_is_an_init_error(
    runtimes: PhpRuntimes, source: str, error_type: str, message: str
) -> None:
    runtimes.write("index.php", source)
    runtime = runtimes.start()

    post = runtime.api.wait_path("/init/error")

    assert runtime.wait_exit() == 1
    assert post.headers["lambda-runtime-function-error-type"] == "Runtime.NoSuchHandler"
    assert post.json()["errorType"] == error_type
    assert message in post.json()["errorMessage"]


def test_a_fatal_error_while_loading_is_an_init_error(runtimes: PhpRuntimes) -> None:
    runtimes.write("index.php", "<?php function strlen() {} return fn () => 1;")
    runtime = runtimes.start()

    post = runtime.api.wait_path("/init/error")

    assert runtime.wait_exit() == 1
    assert post.json()["errorType"] == "E_COMPILE_ERROR"
    assert "Cannot redeclare strlen()" in post.json()["errorMessage"]


def test_an_autoloader_that_fails_is_an_init_error_of_unknown_reason(
    runtimes: PhpRuntimes,
) -> None:
    runtimes.write("vendor/autoload.php", "<?php throw new RuntimeException('broken vendor');")
    runtimes.write("index.php", "<?php return fn () => 1;")
    runtime = runtimes.start()

    post = runtime.api.wait_path("/init/error")

    assert runtime.wait_exit() == 1
    assert post.headers["lambda-runtime-function-error-type"] == "Runtime.UnknownReason"
    assert post.json()["errorMessage"] == "broken vendor"


# --- console ---------------------------------------------------------------------------------

CONSOLE = """<?php
$context = json_decode(getenv('LAMBDA_INVOCATION_CONTEXT'), true);
echo 'args: ' . implode(' ', array_slice($argv, 1)) . "\\n";
echo 'request: ' . $context['awsRequestId'] . "\\n";
fwrite(STDERR, "to stderr\\n");
exit((int) ($argv[2] ?? 0));
"""


def test_the_console_runtime_runs_the_command_with_the_event_s_arguments(
    runtimes: PhpRuntimes,
) -> None:
    runtimes.write("bin/console", CONSOLE)
    runtime = runtimes.start("bin/console", kind="console")

    first = runtime.api.result("cache:clear --env prod", request_id="r-1")
    second = runtime.api.result({"cli": "migrate"}, request_id="r-2")

    assert first == {
        "exitCode": 0,
        "output": "args: cache:clear --env prod\nrequest: r-1\nto stderr\n",
    }
    assert second["output"].startswith("args: migrate\nrequest: r-2\n")
    assert "args: cache:clear --env prod" in runtime.wait_log("args: migrate")


def test_a_console_command_that_fails_fails_the_invocation(runtimes: PhpRuntimes) -> None:
    runtimes.write("bin/console", CONSOLE)
    runtime = runtimes.start("bin/console", kind="console")

    error = runtime.api.result("fail 3")

    assert error["errorMessage"] == "The command exited with a non-zero status code: 3"
    assert runtime.api.result("ok")["exitCode"] == 0  # the runtime goes on


def test_a_console_command_is_stopped_a_second_before_the_deadline(
    runtimes: PhpRuntimes,
) -> None:
    runtimes.write("bin/console", "<?php sleep(30);")
    runtime = runtimes.start("bin/console", kind="console")

    started = time.monotonic()
    error = runtime.api.result("", deadline_in_ms=2000)

    assert "exceeded the timeout of 1 seconds" in error["errorMessage"]
    assert time.monotonic() - started < 5


def test_a_missing_console_handler_is_an_init_error(runtimes: PhpRuntimes) -> None:
    runtime = runtimes.start("bin/none", kind="console")

    post = runtime.api.wait_path("/init/error")

    assert runtime.wait_exit() == 1
    assert post.headers["lambda-runtime-function-error-type"] == "Runtime.NoSuchHandler"
    assert post.json() == {
        "errorMessage": f"Handler `{runtimes.task_root}/bin/none` doesn't exist",
        "errorType": "Internal",
        "stackTrace": [],
    }
