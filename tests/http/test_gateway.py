"""The gateway in-process: requests in, invocations out to a fake invoker, responses back.

Timeouts run on a warped loop clock (`LoopTimeWarp`), so the real 29 s and 30 s ceilings
are tested without waiting for them.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from tests.services.fakes import LoopTimeWarp, settle

from lamina.core.clock import FakeClock
from lamina.core.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from lamina.core.invocation import InvocationResult, Outcome, error_payload
from lamina.core.models import Account
from lamina.core.routes import AlbConditions, Route
from lamina.http.gateway import Gateway, too_large_response
from lamina.http.server import Request, Response
from lamina.services.invoke import InvokeResponse

ACCOUNT = Account(region="eu-west-1", account_id="123456789012")
REST_ERROR = b'{"message": "Internal server error"}'
HTTP_API_ERROR = b'{"message":"Internal Server Error"}'

Handler = Callable[[dict[str, Any]], object]


class FakeInvoker:
    """Answers with what `handler(event)` returns: an InvocationResult as is, bytes as the
    payload, anything else as JSON; an exception is raised. Awaitables are awaited."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler: Handler = handler or (lambda event: {"statusCode": 200, "body": "ok"})
        self.calls: list[tuple[str, str | None, dict[str, Any]]] = []
        self.finished = 0

    async def invoke(self, name: str, qualifier: str | None, payload: bytes) -> InvokeResponse:
        event = orjson.loads(payload)
        self.calls.append((name, qualifier, event))
        result = self.handler(event)
        if inspect.isawaitable(result):
            result = await result
        self.finished += 1
        if isinstance(result, BaseException):
            raise result
        if not isinstance(result, InvocationResult):
            body = result if isinstance(result, bytes) else orjson.dumps(result)
            result = InvocationResult(Outcome.SUCCESS, body)
        return InvokeResponse("lambda-request-id", result, "3", b"")

    @property
    def event(self) -> dict[str, Any]:
        return self.calls[-1][2]


def failing(event: dict[str, Any]) -> InvocationResult:
    return InvocationResult(Outcome.ERROR, error_payload("ValueError", "boom"))


def raising(exc: BaseException) -> Handler:
    return lambda event: exc


def held(gate: asyncio.Event, answer: object = None) -> Handler:
    async def wait(event: dict[str, Any]) -> object:
        await gate.wait()
        return answer if answer is not None else {"statusCode": 200, "body": "late"}

    return wait


REST = Route("http", "app", "dev", "app-dev-api", qualifier="7", method="GET", path="/users/{id}")
V2 = Route("httpApi", "app", "dev", "app-dev-web", method="POST", path="/items")
V1 = Route("httpApi", "app", "dev", "app-dev-old", method="GET", path="/old", payload_version="1.0")
ALB = Route("alb", "lb", "dev", "lb-dev-fn", priority=1, conditions=AlbConditions(paths=("/lb/*",)))


def gateway(
    handler: Handler | None = None, routes: tuple[Route, ...] = (REST, V2, V1, ALB)
) -> tuple[Gateway, FakeInvoker]:
    invoker = FakeInvoker(handler)
    gw = Gateway(invoke=invoker, account=ACCOUNT, clock=FakeClock())
    gw.set_routes(routes)
    return gw, invoker


def request(
    method: str,
    path: str,
    *,
    query: str = "",
    body: bytes = b"",
    client: str = "198.51.100.9",
    **headers: str,
) -> Request:
    names = {"host": "127.0.0.1:8080"}
    names.update({k.replace("_", "-"): v for k, v in headers.items()})
    return Request(method, path, query, names, body, client)


@pytest.fixture
async def warp() -> AsyncIterator[LoopTimeWarp]:
    warp = LoopTimeWarp()  # needs the running loop, hence an async fixture
    yield warp
    warp.close()


# the happy paths


async def test_rest_route_invokes_its_qualified_function_with_a_v1_event() -> None:
    gw, invoker = gateway(lambda e: {"statusCode": 201, "headers": {"X-A": "1"}, "body": "made"})
    response = await gw(request("GET", "/app/dev/users/42", query="a=1", user_agent="curl/8"))

    name, qualifier, event = invoker.calls[0]
    assert (name, qualifier) == ("app-dev-api", "7")
    assert event["resource"] == "/users/{id}"
    assert event["path"] == "/users/42"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"a": "1"}
    assert event["requestContext"]["stage"] == "dev"
    assert event["requestContext"]["path"] == "/app/dev/users/42"
    assert event["requestContext"]["identity"]["sourceIp"] == "198.51.100.9"
    assert event["requestContext"]["accountId"] == "123456789012"
    assert event["requestContext"]["requestTimeEpoch"] == 1_700_000_000_000
    assert event["headers"]["X-Forwarded-For"] == "198.51.100.9"
    assert (response.status, response.body) == (201, b"made")
    assert response.content_type is None  # the function's own headers say it
    request_id = event["requestContext"]["requestId"]
    assert response.headers == [
        ("X-A", "1"),
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
    ]


async def test_http_api_route_gets_a_v2_event_and_inferred_response() -> None:
    gw, invoker = gateway(lambda e: {"hello": e["body"]})
    response = await gw(
        request("POST", "/app/dev/items", body=b'{"a":1}', content_type="application/json")
    )
    event = invoker.event
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /items"
    assert event["body"] == '{"a":1}'
    assert (response.status, orjson.loads(response.body)) == (200, {"hello": '{"a":1}'})
    assert ("Content-Type", "application/json") in response.headers
    assert ("Apigw-Requestid", event["requestContext"]["requestId"]) in response.headers
    assert len(event["requestContext"]["requestId"]) == 16


async def test_http_api_payload_1_0_route() -> None:
    gw, invoker = gateway(lambda e: {"statusCode": 200, "body": e["version"]})
    response = await gw(request("GET", "/app/dev/old"))
    assert invoker.event["requestContext"]["stage"] == "$default"
    assert "multiValueHeaders" in invoker.event
    assert response.body == b"1.0"


async def test_alb_rule_at_the_root() -> None:
    gw, invoker = gateway(
        lambda e: {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": e["path"]}
    )
    response = await gw(request("GET", "/lb/x", query="q=%20"))
    assert invoker.calls[0][:2] == ("lb-dev-fn", None)
    assert invoker.event["queryStringParameters"] == {"q": "%20"}
    assert (response.status, response.body) == (200, b"/lb/x")
    assert response.headers == [("Content-Type", "text/plain")]  # ALB adds no request id


async def test_host_addressed_request() -> None:
    gw, invoker = gateway()
    response = await gw(request("GET", "/users/5", host="app-dev.localhost:8080"))
    assert response.status == 200
    assert invoker.event["path"] == invoker.event["requestContext"]["path"] == "/users/5"


async def test_binary_request_and_response_bodies() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\xff"

    def echo(event: dict[str, Any]) -> object:
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "image/png"},
            "body": event["body"],
            "isBase64Encoded": event["isBase64Encoded"],
        }

    gw, invoker = gateway(echo)
    response = await gw(request("POST", "/app/dev/items", body=png, content_type="image/png"))
    assert invoker.event["isBase64Encoded"] is True
    assert base64.b64decode(invoker.event["body"]) == png
    assert response.body == png


async def test_client_address_defaults_to_loopback() -> None:
    gw, invoker = gateway()
    await gw(request("GET", "/app/dev/users/1", client=""))
    assert invoker.event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"


# no route


async def test_no_route_on_a_rest_api_is_missing_authentication_token() -> None:
    gw, invoker = gateway(routes=(REST,))
    for response in (
        await gw(request("GET", "/app/dev/nope")),
        await gw(request("POST", "/app/dev/users/1")),  # the path exists, the method does not
    ):
        assert response.status == 403
        assert response.body == b'{"message":"Missing Authentication Token"}'
        assert ("x-amzn-ErrorType", "MissingAuthenticationTokenException") in response.headers
    assert invoker.calls == []
    assert gw.statistics()["misses"] == 2


async def test_no_route_elsewhere_is_not_found() -> None:
    gw, _ = gateway()
    for path in ("/app/dev/nope", "/nope", "/other/dev/x"):
        response = await gw(request("GET", path))
        assert (response.status, response.body) == (404, b'{"message":"Not Found"}'), path


async def test_no_routes_at_all() -> None:
    gw = Gateway(invoke=FakeInvoker(), account=ACCOUNT)
    assert (await gw(request("GET", "/"))).status == 404


# failures, per front door


async def test_function_error() -> None:
    gw, _ = gateway(failing)
    rest = await gw(request("GET", "/app/dev/users/1"))
    v2 = await gw(request("POST", "/app/dev/items"))
    v1 = await gw(request("GET", "/app/dev/old"))
    lb = await gw(request("GET", "/lb/x"))
    assert (rest.status, rest.body) == (502, REST_ERROR)
    assert ("x-amzn-ErrorType", "InternalServerErrorException") in rest.headers
    assert any(name == "x-amzn-RequestId" for name, _ in rest.headers)
    assert (v2.status, v2.body) == (500, HTTP_API_ERROR)
    assert (v1.status, v1.body) == (500, HTTP_API_ERROR)
    assert (lb.status, lb.content_type) == (502, "text/html")
    assert b"<title>502 Bad Gateway</title>" in lb.body
    assert gw.statistics()["function_errors"] == 4


@pytest.mark.parametrize("outcome", [Outcome.TIMEOUT, Outcome.CRASH])
async def test_function_timeout_or_crash_is_a_function_error(outcome: Outcome) -> None:
    gw, _ = gateway(lambda e: InvocationResult(outcome, b"{}"))
    assert (await gw(request("GET", "/app/dev/users/1"))).status == 502


async def test_malformed_result(caplog: pytest.LogCaptureFixture) -> None:
    gw, _ = gateway(lambda e: {"body": "no status"})
    with caplog.at_level(logging.WARNING, logger="lamina.http.gateway"):
        rest = await gw(request("GET", "/app/dev/users/1"))
    assert (rest.status, rest.body) == (502, REST_ERROR)
    assert "malformed response from app-dev-api" in caplog.text
    assert "statusCode must be an integer" in caplog.text
    lb = await gw(request("GET", "/lb/x"))
    assert lb.status == 502
    gw, _ = gateway(lambda e: b"not json")
    assert (await gw(request("POST", "/app/dev/items"))).status == 500
    assert gw.statistics()["malformed"] == 1


async def test_throttled() -> None:
    gw, _ = gateway(
        raising(
            TooManyRequestsException(
                "Rate Exceeded.", reason="ReservedFunctionConcurrentInvocationLimitExceeded"
            )
        )
    )
    rest = await gw(request("GET", "/app/dev/users/1"))
    v2 = await gw(request("POST", "/app/dev/items"))
    lb = await gw(request("GET", "/lb/x"))
    assert (rest.status, rest.body) == (429, b'{"message":"Too Many Requests"}')
    assert (v2.status, v2.body) == (429, b'{"message":"Too Many Requests"}')
    assert (lb.status, lb.content_type) == (503, "text/html")
    assert gw.statistics()["throttles"] == 3


async def test_invoke_failure_is_an_integration_error(caplog: pytest.LogCaptureFixture) -> None:
    gw, _ = gateway(raising(ResourceNotFoundException("Function not found: app-dev-api")))
    with caplog.at_level(logging.WARNING, logger="lamina.http.gateway"):
        rest = await gw(request("GET", "/app/dev/users/1"))
    assert (rest.status, rest.body) == (500, REST_ERROR)
    assert "Function not found: app-dev-api" in caplog.text
    assert (await gw(request("POST", "/app/dev/items"))).status == 500
    assert (await gw(request("GET", "/lb/x"))).status == 502


async def test_unexpected_invoke_error_is_logged_not_leaked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw, _ = gateway(raising(RuntimeError("secret detail")))
    with caplog.at_level(logging.ERROR, logger="lamina.http.gateway"):
        response = await gw(request("GET", "/app/dev/users/1"))
    assert (response.status, response.body) == (500, REST_ERROR)
    assert b"secret" not in response.body
    assert "secret detail" in caplog.text


# timeouts


async def _timed(gw: Gateway, req: Request, warp: LoopTimeWarp, after: float) -> Response:
    """Run `req`, move the loop clock `after` seconds on, and return the response."""
    task = asyncio.ensure_future(gw(req))
    await settle(lambda: gw.statistics()["in_flight"] == 1)
    warp.advance(after)
    async with asyncio.timeout(5):
        return await task


async def test_rest_api_gives_up_after_29_seconds_but_the_invocation_goes_on(
    warp: LoopTimeWarp,
) -> None:
    gate = asyncio.Event()
    gw, invoker = gateway(held(gate))
    task = asyncio.ensure_future(gw(request("GET", "/app/dev/users/1")))
    await settle(lambda: gw.statistics()["in_flight"] == 1)
    warp.advance(28.9)
    await settle()
    assert not task.done()
    warp.advance(0.2)
    response = await asyncio.wait_for(task, 5)
    assert (response.status, response.body) == (504, b'{"message": "Endpoint request timed out"}')
    assert gw.statistics()["in_flight"] == 1  # still running, as on AWS
    gate.set()
    await settle(lambda: gw.statistics()["in_flight"] == 0)
    assert invoker.finished == 1
    assert gw.statistics()["timeouts"] == 1


async def test_http_api_gives_up_after_30_seconds(warp: LoopTimeWarp) -> None:
    gate = asyncio.Event()
    gw, _ = gateway(held(gate))
    response = await _timed(gw, request("POST", "/app/dev/items"), warp, 30.1)
    assert (response.status, response.body) == (503, b'{"message":"Service Unavailable"}')
    gate.set()
    await settle(lambda: gw.statistics()["in_flight"] == 0)


async def test_alb_waits_for_the_function(warp: LoopTimeWarp) -> None:
    gate = asyncio.Event()
    gw, _ = gateway(held(gate))
    task = asyncio.ensure_future(gw(request("GET", "/lb/x")))
    await settle(lambda: gw.statistics()["in_flight"] == 1)
    warp.advance(900)
    await settle()
    assert not task.done()
    gate.set()
    response = await asyncio.wait_for(task, 5)
    assert (response.status, response.body) == (200, b"late")


async def test_a_client_going_away_does_not_cancel_the_invocation() -> None:
    gate = asyncio.Event()
    gw, invoker = gateway(held(gate))
    task = asyncio.ensure_future(gw(request("GET", "/app/dev/users/1")))
    await settle(lambda: gw.statistics()["in_flight"] == 1)
    task.cancel()  # what the server does when the connection is lost
    await settle(task.done)
    assert gw.statistics()["in_flight"] == 1
    gate.set()
    await settle(lambda: gw.statistics()["in_flight"] == 0)
    assert invoker.finished == 1


async def test_an_abandoned_invocation_that_fails_is_retrieved_and_logged(
    warp: LoopTimeWarp, caplog: pytest.LogCaptureFixture
) -> None:
    gate = asyncio.Event()

    async def fail_late(event: dict[str, Any]) -> object:
        await gate.wait()
        raise TooManyRequestsException("late")

    gw, _ = gateway(fail_late)
    response = await _timed(gw, request("GET", "/app/dev/users/1"), warp, 30)
    assert response.status == 504
    with caplog.at_level(logging.DEBUG, logger="lamina.http.gateway"):
        gate.set()
        await settle(lambda: gw.statistics()["in_flight"] == 0)
    assert "an invocation nobody waited for failed" in caplog.text


# sizes


async def test_alb_request_body_over_one_megabyte() -> None:
    gw, invoker = gateway()
    response = await gw(request("POST", "/lb/x", body=b"x" * (1024 * 1024 + 1)))
    assert (response.status, response.content_type) == (413, "text/html")
    assert invoker.calls == []
    assert (await gw(request("POST", "/lb/x", body=b"x" * 1024 * 1024))).status == 200


async def test_api_gateway_request_body_over_ten_megabytes() -> None:
    gw, invoker = gateway()
    big = b"x" * (10 * 1024 * 1024 + 1)
    rest = await gw(request("GET", "/app/dev/users/1", body=big))
    v2 = await gw(request("POST", "/app/dev/items", body=big))
    assert (rest.status, rest.body) == (413, b'{"message":"Request Too Long"}')
    assert (v2.status, v2.body) == (413, b'{"message":"Request Entity Too Large"}')
    assert invoker.calls == []
    assert too_large_response(10 * 1024 * 1024).status == 413


async def test_event_over_lambdas_six_megabytes_is_refused_before_invoking() -> None:
    gw, invoker = gateway()
    response = await gw(request("POST", "/app/dev/items", body=b"x" * (7 * 1024 * 1024)))
    assert response.status == 413
    assert any(name == "Apigw-Requestid" for name, _ in response.headers)
    assert invoker.calls == []


# the route table


async def test_set_routes_refuses_conflicts_and_keeps_the_routes_in_use() -> None:
    gw, _ = gateway()
    clash = Route("http", "app", "dev", "other", method="GET", path="/users/{userId}")
    with pytest.raises(InvalidParameterValueException, match="answer the same requests"):
        gw.set_routes([REST, clash])
    assert gw.routes() == [REST, V2, V1, ALB]
    assert (await gw(request("GET", "/app/dev/users/1"))).status == 200


async def test_set_routes_replaces_every_route() -> None:
    gw, _ = gateway()
    gw.set_routes([V2])
    assert gw.routes() == [V2]
    assert (await gw(request("GET", "/app/dev/users/1"))).status == 404
    gw.set_routes([])
    assert gw.routes() == []
    assert "routes=0" in repr(gw)


def test_endpoints() -> None:
    catch_all = Route("httpApi", "app", "dev", "app-dev-web")
    prod = Route("http", "app", "prod", "app-prod-api", method="GET", path="users/{id}")
    gw, _ = gateway(routes=(REST, catch_all, prod, ALB))
    endpoints = [
        (r.route_key if r.kind != "alb" else "alb", url)
        for r, url in gw.endpoints("http://127.0.0.1:8080/")
    ]
    assert endpoints == [
        ("$default", "http://127.0.0.1:8080/app/dev/"),
        ("GET /users/{id}", "http://127.0.0.1:8080/app/dev/users/{id}"),
        ("GET users/{id}", "http://127.0.0.1:8080/app/prod/users/{id}"),
        ("alb", "http://127.0.0.1:8080/lb/*"),
    ]
    other_alb = Route(
        "alb", "other", "dev", "o", priority=2, conditions=AlbConditions(paths=("/a", "/b"))
    )
    gw.set_routes([ALB, other_alb])
    assert [url for _, url in gw.endpoints("http://h")] == [
        "http://h/lb/dev/lb/*",
        "http://h/other/dev/a",
        "http://h/other/dev/b",
    ]


# CORS


CORS_REST = Route("http", "app", "dev", "f", method="POST", path="/c", cors=True)
CORS_V2 = Route("httpApi", "app", "dev", "g", method="PUT", path="/d", cors=True)


async def test_cors_preflight_for_a_rest_route() -> None:
    gw, invoker = gateway(routes=(CORS_REST,))
    response = await gw(
        request(
            "OPTIONS", "/app/dev/c", origin="https://x.test", access_control_request_method="POST"
        )
    )
    assert response.status == 200
    assert ("Access-Control-Allow-Origin", "*") in response.headers
    assert ("Access-Control-Allow-Methods", "OPTIONS,POST") in response.headers
    assert invoker.calls == []
    # REST APIs leave CORS headers of real responses to the function.
    response = await gw(request("POST", "/app/dev/c", origin="https://x.test"))
    assert all(name != "Access-Control-Allow-Origin" for name, _ in response.headers)


async def test_cors_for_an_http_api_route() -> None:
    gw, _ = gateway(routes=(CORS_V2,))
    preflight = await gw(
        request(
            "OPTIONS", "/app/dev/d", origin="https://x.test", access_control_request_method="put"
        )
    )
    assert preflight.status == 204
    assert ("Access-Control-Allow-Methods", "OPTIONS,PUT") in preflight.headers
    response = await gw(request("PUT", "/app/dev/d", origin="https://x.test"))
    assert ("Access-Control-Allow-Origin", "*") in response.headers
    response = await gw(request("PUT", "/app/dev/d"))
    assert all(name != "Access-Control-Allow-Origin" for name, _ in response.headers)


async def test_preflight_goes_to_a_function_that_takes_options_or_without_cors() -> None:
    own = Route("http", "app", "dev", "own", method="OPTIONS", path="/c")
    gw, invoker = gateway(routes=(CORS_REST, own))
    preflight = request("OPTIONS", "/app/dev/c", origin="o", access_control_request_method="POST")
    assert (await gw(preflight)).status == 200
    assert invoker.calls[0][0] == "own"
    no_cors = Route("http", "app", "dev", "f", method="POST", path="/c")
    gw, invoker = gateway(routes=(no_cors,))
    assert (await gw(preflight)).status == 403
    assert invoker.calls == []


def test_statistics_and_repr() -> None:
    gw, _ = gateway()
    stats = gw.statistics()
    assert stats["routes"] == 4 and stats["in_flight"] == 0 and stats["requests"] == 0
    assert repr(gw) == "<Gateway routes=4 in_flight=0>"


async def test_head_responses_have_no_body() -> None:
    anything = Route("http", "app", "dev", "f", method="ANY", path="/any")
    gw, invoker = gateway(routes=(REST, anything))
    ok = await gw(request("HEAD", "/app/dev/any"))
    assert (ok.status, ok.body) == (200, b"")
    assert invoker.event["httpMethod"] == "HEAD"
    # A GET route does not take HEAD, as on API Gateway; the error has no body either.
    missing = await gw(request("HEAD", "/app/dev/users/1"))
    assert (missing.status, missing.body) == (403, b"")
