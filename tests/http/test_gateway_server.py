"""The gateway behind the real HTTP server on a real socket, spoken to by `http.client`: one
keep-alive connection carrying several requests, binary bodies both ways, cookies, the
client's address from the transport, and the body limits enforced by the server."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from tests.http.test_gateway import FakeInvoker

from lamina.core.models import Account
from lamina.core.routes import AlbConditions, Route
from lamina.http.gateway import MAX_BODY, Gateway, too_large_response
from lamina.http.server import serve

ROUTES = (
    Route("http", "app", "dev", "app-dev-rest", method="ANY", path="/{proxy+}"),
    Route("httpApi", "app", "dev", "app-dev-web", method="POST", path="/echo"),
    Route("httpApi", "app", "dev", "app-dev-web", method="GET", path="/cookies"),
    Route("alb", "app", "dev", "app-dev-lb", priority=1, conditions=AlbConditions(paths=("/lb",))),
)
PNG = b"\x89PNG\r\n\x1a\n\x00\xff" * 100


def respond(event: dict[str, Any]) -> object:
    if "version" not in event:  # REST and ALB: tell the test what arrived
        keys = ("path", "pathParameters", "requestContext", "headers", "multiValueHeaders")
        body = {k: event.get(k) for k in keys}
        return {"statusCode": 200, "body": json.dumps(body)}
    if event["rawPath"] == "/cookies":
        return {"statusCode": 200, "cookies": ["a=1; Path=/", "b=2; HttpOnly"], "body": ""}
    return {  # /echo: the body back, base64 both ways
        "statusCode": 200,
        "headers": {"Content-Type": event["headers"].get("content-type", "")},
        "body": event.get("body", ""),
        "isBase64Encoded": event["isBase64Encoded"],
    }


@pytest.fixture
async def port() -> AsyncIterator[int]:
    gateway = Gateway(invoke=FakeInvoker(respond), account=Account())
    gateway.set_routes(ROUTES)
    server = await serve(gateway, "127.0.0.1", 0, max_body=MAX_BODY, too_large=too_large_response)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def _conversation(port: int) -> list[tuple[int, dict[str, list[str]], bytes]]:
    """Several requests on one connection; http.client raises if the server closed it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    answers = []
    requests: list[tuple[str, str, bytes, dict[str, str]]] = [
        ("GET", "/app/dev/users/1", b"", {}),
        ("POST", "/app/dev/echo", PNG, {"Content-Type": "image/png"}),
        ("GET", "/app/dev/cookies", b"", {}),
        ("GET", "/nowhere", b"", {}),
        ("GET", "/users/2", b"", {"Host": f"app-dev.localhost:{port}"}),
        ("POST", "/lb", b"x" * (1024 * 1024 + 1), {}),
    ]
    try:
        for method, path, body, headers in requests:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            names: dict[str, list[str]] = {}
            for name, value in response.getheaders():
                names.setdefault(name.lower(), []).append(value)
            answers.append((response.status, names, response.read()))
            assert not response.will_close, f"{method} {path} closed the connection"
    finally:
        connection.close()
    return answers


async def test_one_keep_alive_connection_through_the_gateway(port: int) -> None:
    rest, echo, cookies, nowhere, by_host, too_big = await asyncio.to_thread(_conversation, port)

    status, _, body = rest
    seen = orjson.loads(body)
    assert status == 200
    assert seen["path"] == "/users/1"
    assert seen["pathParameters"] == {"proxy": "users/1"}
    assert seen["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"  # from the socket

    status, headers, body = echo
    assert (status, body) == (200, PNG)
    assert headers["content-type"] == ["image/png"]
    assert headers["content-length"] == [str(len(PNG))]

    status, headers, _ = cookies
    assert status == 200
    assert headers["set-cookie"] == ["a=1; Path=/", "b=2; HttpOnly"]

    assert nowhere[0] == 404
    assert orjson.loads(by_host[2])["requestContext"]["path"] == "/users/2"

    status, headers, body = too_big
    assert (status, headers["content-type"]) == (413, ["text/html"])


def _over_ten_megabytes(port: int) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/app/dev/echo", body=b"x" * (MAX_BODY + 1))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


async def test_the_server_refuses_bodies_over_ten_megabytes_as_api_gateway_does(port: int) -> None:
    status, body = await asyncio.to_thread(_over_ten_megabytes, port)
    assert (status, body) == (413, b'{"message":"Request Too Long"}')


def _raw(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_repeated_headers_reach_a_rest_event_apart_and_in_their_case(port: int) -> None:
    answer = await asyncio.to_thread(
        _raw,
        port,
        b"GET /app/dev/tags HTTP/1.1\r\nHost: x\r\nX-Tag: one\r\nX-Tag: two\r\n"
        b"Connection: close\r\n\r\n",
    )
    event = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert event["multiValueHeaders"]["X-Tag"] == ["one", "two"]
    assert event["headers"]["X-Tag"] == "two"  # API Gateway keeps the last one


async def test_binary_body_round_trip_and_connection_close(port: int) -> None:
    # Not a text type, so the function gets base64 and answers base64, decoded on the way out.
    answer = await asyncio.to_thread(
        _raw,
        port,
        b"POST /app/dev/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\n\x00\x01",
    )
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close" in head
    assert head.count(b"Content-Type") == 1
    assert payload == b"\x00\x01"


async def test_a_head_response_has_no_body_so_the_connection_stays_in_step(port: int) -> None:
    answer = await asyncio.to_thread(
        _raw,
        port,
        b"HEAD /app/dev/users/1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /app/dev/users/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), rest[:80]  # no HEAD body in between
    assert orjson.loads(rest.partition(b"\r\n\r\n")[2])["path"] == "/users/2"
