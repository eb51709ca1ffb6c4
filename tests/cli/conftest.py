"""A fake control API on a real socket, and a runner for `lamina` commands.

The fake keeps functions in a dict, answers with the wire shapes of the Lambda REST API,
records every request, and lets each test choose what an invocation returns.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from lamina.cli.main import app

FUNCTIONS = "/2015-03-31/functions"


@dataclass
class Recorded:
    method: str
    path: str  # decoded
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeControlApi:
    endpoint: str = ""
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    log_pages: list[dict[str, Any]] = field(default_factory=list)
    invoke_reply: Reply = field(default_factory=lambda: Reply(200, b'{"ok": true}'))

    def answer_invocations(
        self, body: bytes, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.invoke_reply = Reply(status, body, headers or {})

    def calls(self, method: str, suffix: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    def add_function(self, name: str, **config: Any) -> None:
        self.functions[name] = {
            "FunctionName": name,
            "Runtime": "python3.12",
            "Handler": "handler.main",
            "CodeSize": 10,
            "CodeSha256": "abc=",
            "MemorySize": 128,
            "Timeout": 3,
            "LastModified": "2024-05-01T10:00:00.000+0000",
            **config,
        }

    # --- request handling, called from the server thread -------------------------------

    def handle(self, request: Recorded) -> Reply:
        self.requests.append(request)
        route = (request.method, request.path)
        if route == ("GET", "/health"):
            return _json(200, {"status": "ok"})
        if route == ("GET", "/lamina/v1/logs"):
            page = self.log_pages.pop(0) if self.log_pages else {"events": [], "last": None}
            return _json(200, page)
        if route == ("POST", FUNCTIONS):
            return self._create(request.json())
        if route == ("GET", f"{FUNCTIONS}/"):
            return _json(200, {"Functions": list(self.functions.values())})
        if not request.path.startswith(f"{FUNCTIONS}/"):
            return _error(404, "UnknownOperationException", "Unknown operation")
        name, _, action = request.path[len(FUNCTIONS) + 1 :].partition("/")
        if (request.method, action) == ("POST", "invocations"):
            return self.invoke_reply  # whatever the test chose, function or not
        if name not in self.functions:
            return _error(404, "ResourceNotFoundException", f"Function not found: {name}")
        config = self.functions[name]
        if (request.method, action) == ("GET", ""):
            return _json(200, {"Configuration": config, "Code": {"RepositoryType": "S3"}})
        if (request.method, action) == ("DELETE", ""):
            del self.functions[name]
            return Reply(204)
        if (request.method, action) == ("PUT", "code"):
            config.update(_code(request.json()["ZipFile"]))
            return _json(200, config)
        if (request.method, action) == ("PUT", "configuration"):
            body = request.json()
            config.update({k: v for k, v in body.items() if k != "Layers"})
            config["Layers"] = [{"Arn": arn, "CodeSize": 1} for arn in body.get("Layers", [])]
            return _json(200, config)
        return _error(404, "UnknownOperationException", "Unknown operation")

    def _create(self, body: dict[str, Any]) -> Reply:
        name = body["FunctionName"]
        if name in self.functions:
            return _error(409, "ResourceConflictException", f"Function already exist: {name}")
        config = {k: v for k, v in body.items() if k not in ("Code", "Layers")}
        config["Layers"] = [{"Arn": arn, "CodeSize": 1} for arn in body.get("Layers", [])]
        config.update(_code(body["Code"]["ZipFile"]))
        config["LastModified"] = "2024-05-01T10:00:00.000+0000"
        self.functions[name] = config
        return _json(201, config)


BUNDLES = "/lamina/v1/bundles/"
STACKS = "/lamina/v1/stacks/"


@dataclass
class FakeDeployApi(FakeControlApi):
    """The fake control API plus deployments (bundles, stacks) and SSM GetParameter, with
    the answers `lamina up` gives; every posted deployment document is kept as sent."""

    bundles: dict[str, bytes] = field(default_factory=dict)
    deployments: list[dict[str, Any]] = field(default_factory=list)  # answers, by id - 1
    posted: list[dict[str, Any]] = field(default_factory=list)  # the documents, as sent
    live: dict[tuple[str, str], int] = field(default_factory=dict)  # (service, stage) -> id
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployment_reply: Reply | None = None  # answer every deployment with this instead
    data_url: str = "http://127.0.0.1:8080"

    def refuse_deployments(self, status: int, code: str, message: str) -> None:
        self.deployment_reply = _error(status, code, message)

    def put_parameter(self, name: str, value: str, kind: str = "String") -> None:
        self.parameters[name] = {"Name": name, "Type": kind, "Value": value, "Version": 1}

    def handle(self, request: Recorded) -> Reply:
        path, method = request.path, request.method
        if path.startswith(BUNDLES):
            self.requests.append(request)
            return self._bundle(method, path[len(BUNDLES) :], request.body)
        if (method, path) == ("POST", "/lamina/v1/deployments"):
            self.requests.append(request)
            return self.deployment_reply or self._deploy(request.json())
        if path.startswith(STACKS):
            self.requests.append(request)
            return self._stack(request)
        if (method, path) == ("POST", "/") and "x-amz-target" in request.headers:
            self.requests.append(request)
            return self._ssm(request)
        return super().handle(request)

    def _bundle(self, method: str, sha: str, body: bytes) -> Reply:
        if method == "HEAD":
            return Reply(200 if sha in self.bundles else 404)
        if method == "PUT":
            if hashlib.sha256(body).hexdigest() != sha:
                return _error(400, "InvalidParameterValueException", "SHA-256 does not match")
            self.bundles[sha] = body
            return _json(201, {"sha256": sha, "size": len(body)})
        return _error(404, "UnknownOperationException", "Unknown operation")

    def _deploy(self, document: dict[str, Any]) -> Reply:
        shas = [f["code_sha256"] for f in document["functions"]]
        shas += [layer["code_sha256"] for layer in document["layers"]]
        for sha in shas:
            if sha not in self.bundles:
                return _error(400, "InvalidParameterValueException", f"no bundle {sha}")
        stack = (document["service"], document["stage"])
        previous = self._previous_functions(stack)
        functions = []
        for fn in document["functions"]:
            before = previous.get(fn["key"])
            changed = before is None or before[0] != fn
            version = 1 if before is None else int(before[1]) + (1 if changed else 0)
            shown = str(version) if document["version_functions"] else "$LATEST"
            functions.append(
                {"key": fn["key"], "name": fn["name"], "version": shown, "changed": changed}
            )
            self.add_function(
                fn["name"],
                Runtime=fn["runtime"],
                Handler=fn["handler"],
                MemorySize=fn["memory_size"],
                Timeout=fn["timeout"],
                Description=fn["description"],
                Environment={"Variables": fn["environment"]},
                CodeSha256=base64.b64encode(bytes.fromhex(fn["code_sha256"])).decode(),
            )
        answer = {
            "id": len(self.deployments) + 1,
            "service": document["service"],
            "stage": document["stage"],
            "region": document["region"],
            "created": f"2024-05-01T10:00:{len(self.deployments):02d}Z",
            "functions": functions,
            "endpoints": self._endpoints(document),
        }
        self.posted.append(document)
        self.deployments.append(answer)
        self.live[stack] = answer["id"]
        return _json(201, {"deployment": answer})

    def _previous_functions(self, stack: tuple[str, str]) -> dict[str, tuple[Any, str]]:
        live = self.live.get(stack)
        if live is None:
            return {}
        versions = {f["key"]: f["version"] for f in self.deployments[live - 1]["functions"]}
        posted = self.posted[live - 1]["functions"]
        return {f["key"]: (f, versions[f["key"]].replace("$LATEST", "1")) for f in posted}

    def _endpoints(self, document: dict[str, Any]) -> list[dict[str, str]]:
        base = f"{self.data_url}/{document['service']}/{document['stage']}"
        endpoints = []
        for fn in document["functions"]:
            for route in fn["routes"]:
                path = "" if route["path"] == "$default" else route["path"]
                url = base + path if route["kind"] != "alb" else self.data_url
                endpoints.append(
                    {"kind": route["kind"], "method": route["method"], "path": path, "url": url}
                )
        return endpoints

    def _stack(self, request: Recorded) -> Reply:
        service, stage, *rest = request.path[len(STACKS) :].split("/")
        stack = (service, stage)
        ours = [d for d in self.deployments if (d["service"], d["stage"]) == stack]
        if stack not in self.live:
            return _error(404, "ResourceNotFoundException", f"Stack {service}-{stage} not found")
        if (request.method, rest) == ("GET", []):
            return _json(200, {"stack": self.deployments[self.live[stack] - 1]})
        if (request.method, rest) == ("DELETE", []):
            del self.live[stack]
            return Reply(204)
        if (request.method, rest) == ("GET", ["deployments"]):
            return _json(200, {"deployments": ours})
        if (request.method, rest) == ("POST", ["rollback"]):
            wanted = request.json().get("deployment")
            if wanted is None:
                earlier = [d["id"] for d in ours if d["id"] < self.live[stack]]
                wanted = earlier[-1] if earlier else None
            if wanted not in [d["id"] for d in ours]:
                return _error(404, "ResourceNotFoundException", f"No deployment {wanted}")
            self.live[stack] = wanted
            return _json(200, {"deployment": self.deployments[wanted - 1]})
        return _error(404, "UnknownOperationException", "Unknown operation")

    def _ssm(self, request: Recorded) -> Reply:
        if request.headers["x-amz-target"] != "AmazonSSM.GetParameter":
            return _ssm_error("UnknownOperationException", "not in the fake")
        name = request.json()["Name"]
        if name not in self.parameters:
            return _ssm_error("ParameterNotFound", "")
        return _json(200, {"Parameter": self.parameters[name]})


def _ssm_error(code: str, message: str) -> Reply:
    body = json.dumps({"__type": code, "message": message}).encode()
    return Reply(400, body, {"Content-Type": "application/x-amz-json-1.1"})


def _code(zip_base64: str) -> dict[str, Any]:
    data = base64.b64decode(zip_base64)
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return {"CodeSize": len(data), "CodeSha256": digest}


def _json(status: int, value: object) -> Reply:
    return Reply(status, json.dumps(value).encode(), {"Content-Type": "application/json"})


def _error(status: int, code: str, message: str) -> Reply:
    body = json.dumps({"Type": "User", "Message": message}).encode()
    return Reply(status, body, {"x-amzn-ErrorType": code, "Content-Type": "application/json"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeControlApi


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Recorded(
            method=self.command,
            path=urllib.parse.unquote(url.path),
            query=dict(urllib.parse.parse_qsl(url.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length),
        )
        reply = self.server.fake.handle(request)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def do_HEAD(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        request = Recorded("HEAD", urllib.parse.unquote(url.path), {}, {}, b"")
        reply = self.server.fake.handle(request)
        self.send_response(reply.status)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()  # a HEAD answer has headers only

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


@pytest.fixture(scope="session")
def _control_api_server() -> Iterator[_Server]:
    # One server for the session: shutting one down waits out serve_forever's poll interval.
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def control_api(_control_api_server: _Server) -> FakeControlApi:
    """A fresh fake control API (no functions, no requests) for each test."""
    fake = FakeControlApi(endpoint=f"http://127.0.0.1:{_control_api_server.server_address[1]}")
    _control_api_server.fake = fake
    return fake


@pytest.fixture
def deploy_api(_control_api_server: _Server) -> FakeDeployApi:
    """A fresh fake control API that also takes deployments and answers SSM GetParameter."""
    fake = FakeDeployApi(endpoint=f"http://127.0.0.1:{_control_api_server.server_address[1]}")
    _control_api_server.fake = fake
    return fake


# Settings of the developer's shell must not leak into the commands under test.
CLEAN_ENV: dict[str, str | None] = {
    "LAMINA_ENDPOINT": None,
    "LAMINA_HOST": None,
    "LAMINA_CONTROL_PORT": None,
    "COLUMNS": "200",
}


@pytest.fixture
def clean_env() -> dict[str, str | None]:
    return dict(CLEAN_ENV)


@pytest.fixture
def lamina(control_api: FakeControlApi) -> Callable[..., Result]:
    """Run `lamina <args>` against the fake control API."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(
            app,
            ["--endpoint", control_api.endpoint, *args],
            input=input,
            env={**CLEAN_ENV, **(env or {})},
        )

    return run


@pytest.fixture
def sls(deploy_api: FakeDeployApi) -> Callable[..., Result]:
    """Run `lamina <args>` against the fake that takes deployments."""
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(
            app, ["--endpoint", deploy_api.endpoint, *args], env={**CLEAN_ENV, **(env or {})}
        )

    return run
