"""The gateway on the real InvokeService, Pool and execution environments (with fake
processes from `tests.services.fakes`): the event reaches the runtime as its payload, and
throttles, function errors and timeouts come from the real machinery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from tests.services.fakes import Fail, FakeRuntime, Gate, Harness, Reply, Respond, Script, settle

from lamina.core.invocation import Invocation
from lamina.core.routes import Route
from lamina.http.gateway import Gateway
from lamina.http.server import Request

REST = Route("http", "app", "dev", "fn", method="GET", path="/users/{id}")
V2 = Route("httpApi", "app", "dev", "fn", method="ANY", path="/{proxy+}")


def _gateway(h: Harness, *routes: Route) -> Gateway:
    gateway = Gateway(invoke=h.invoker, account=h.account, clock=h.clock)
    gateway.set_routes(routes or (REST, V2))
    return gateway


def _get(path: str) -> Request:
    return Request("GET", path, "", {"host": "127.0.0.1:8080"}, b"", "192.0.2.4")


def answer_with_path(runtime: FakeRuntime, invocation: Invocation) -> Reply:
    event = orjson.loads(invocation.payload)
    path = event.get("path") or event.get("rawPath")
    return Respond(orjson.dumps({"statusCode": 200, "body": path}))


async def test_the_event_is_the_payload_of_a_real_invocation(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        h.driver.default_script = Script(handler=answer_with_path)
        gateway = _gateway(h)
        rest = await gateway(_get("/app/dev/users/9"))
        v2 = await gateway(_get("/app/dev/a/b"))
        assert (rest.status, rest.body) == (200, b"/users/9")
        assert (v2.status, v2.body) == (200, b"/a/b")
        (runtime,) = h.driver.runtimes  # one warm environment served both
        events = [orjson.loads(i.payload) for i in runtime.invocations]
        assert events[0]["requestContext"]["identity"]["sourceIp"] == "192.0.2.4"
        assert events[1]["version"] == "2.0"
        assert events[1]["pathParameters"] == {"proxy": "a/b"}
        lines = await h.log_lines("fn")
        assert sum(line.startswith("REPORT") for line in lines) == 2


async def test_function_error_from_a_real_runtime(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        h.driver.default_script = Script(handler=lambda runtime, invocation: Fail())
        response = await _gateway(h)(_get("/app/dev/users/1"))
        assert (response.status, response.body) == (502, b'{"message": "Internal server error"}')


async def test_reserved_concurrency_zero_throttles(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn", reserved=0)
        gateway = _gateway(h)
        assert (await gateway(_get("/app/dev/users/1"))).status == 429
        assert (await gateway(_get("/app/dev/x"))).status == 429
        assert h.driver.processes == []


async def test_a_route_to_a_missing_function(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        response = await _gateway(h)(_get("/app/dev/users/1"))
        assert (response.status, response.body) == (500, b'{"message": "Internal server error"}')


async def test_rest_timeout_leaves_the_function_running_to_its_own_timeout(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn", timeout=60)
        gate = Gate()
        h.driver.default_script = Script(handler=gate)
        gateway = _gateway(h)
        request = asyncio.ensure_future(gateway(_get("/app/dev/users/1")))
        await settle(lambda: gate.waiting == 1)
        h.warp.advance(29.5)
        response = await request
        assert response.status == 504
        assert gate.waiting == 1  # the function is still running
        assert h.invoker.in_flight == 1
        h.warp.advance(31)  # past the function's own 60 s
        await settle(lambda: h.invoker.in_flight == 0)
        lines = await h.log_lines("fn")
        (report,) = [line for line in lines if line.startswith("REPORT")]
        assert "Duration: 60000.00 ms" in report
        assert report.endswith("Status: timeout\t")
