from __future__ import annotations

import asyncio
import http.client

import orjson
import pytest

from lamina.core.errors import InvalidFunctionResponseMode, InvalidRequestID
from lamina.core.invocation import MAX_RUNTIME_PAYLOAD, Invocation
from lamina.http.runtime_api import RuntimeApi, render_error, route
from lamina.http.server import Request
from lamina.wire import runtime_api as wire

RID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:app-dev-api"
TRACE = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=0"
ACCEPTED = b'{"status":"OK"}'
NOT_FOUND = b'{"errorType":"NotFound","errorMessage":"Not Found"}'


class FakeTarget:
    """A RuntimeTarget that records calls; `wait_next` hands out a canned invocation."""

    def __init__(self, invocation: Invocation | None = None) -> None:
        self.invocation = invocation or Invocation(
            request_id=RID,
            payload=b'{"hello":"world"}',
            invoked_arn=ARN,
            deadline_ms=1_542_409_706_888,
            trace_id=TRACE,
        )
        self.calls: list[tuple[object, ...]] = []
        self.refuse: Exception | None = None

    async def wait_next(self) -> Invocation:
        self.calls.append(("next",))
        return self.invocation

    def post_response(self, request_id: str, body: bytes, content_type: str) -> None:
        self.calls.append(("response", request_id, body, content_type))
        if self.refuse is not None:
            raise self.refuse

    def post_error(self, request_id: str, body: bytes, content_type: str) -> None:
        self.calls.append(("error", request_id, body, content_type))

    def post_init_error(self, body: bytes, content_type: str) -> None:
        self.calls.append(("init_error", body, content_type))

    def post_too_large(self) -> None:
        self.calls.append(("too_large",))


def _request(method: str, path: str, body: bytes = b"", **headers: str) -> Request:
    return Request(method, path, "", {k.replace("_", "-"): v for k, v in headers.items()}, body)


# route() in-process


async def test_next_returns_the_payload_and_the_invocation_headers() -> None:
    target = FakeTarget()
    response = await route(target, _request("GET", "/2018-06-01/runtime/invocation/next"))
    assert response.status == 200
    assert response.body == b'{"hello":"world"}'
    assert response.content_type == "application/json"
    assert response.headers == [
        ("Lambda-Runtime-Aws-Request-Id", RID),
        ("Lambda-Runtime-Deadline-Ms", "1542409706888"),
        ("Lambda-Runtime-Invoked-Function-Arn", ARN),
        ("Lambda-Runtime-Trace-Id", TRACE),
    ]
    assert target.calls == [("next",)]


async def test_next_passes_client_context_and_cognito_identity() -> None:
    invocation = Invocation(RID, b"{}", ARN, 1, TRACE, '{"custom":{}}', '{"cognitoIdentityId":"i"}')
    response = await route(
        FakeTarget(invocation), _request("GET", "/2018-06-01/runtime/invocation/next")
    )
    assert dict(response.headers)["Lambda-Runtime-Client-Context"] == '{"custom":{}}'
    assert dict(response.headers)["Lambda-Runtime-Cognito-Identity"] == '{"cognitoIdentityId":"i"}'


async def test_response_is_accepted_and_forwarded_verbatim() -> None:
    target = FakeTarget()
    response = await route(
        target,
        _request(
            "POST",
            f"/2018-06-01/runtime/invocation/{RID}/response",
            b"\x00raw",
            content_type="application/unknown",
        ),
    )
    assert (response.status, response.body) == (202, ACCEPTED)
    assert target.calls == [("response", RID, b"\x00raw", "application/unknown")]


async def test_content_type_defaults_to_json() -> None:
    target = FakeTarget()
    await route(target, _request("POST", f"/2018-06-01/runtime/invocation/{RID}/response", b"1"))
    assert target.calls == [("response", RID, b"1", "application/json")]


async def test_streaming_response_mode_is_accepted() -> None:
    target = FakeTarget()
    response = await route(
        target,
        _request(
            "POST",
            f"/2018-06-01/runtime/invocation/{RID}/response",
            b"{}",
            lambda_runtime_function_response_mode="streaming",
        ),
    )
    assert response.status == 202


async def test_bad_response_mode_is_refused_before_the_target_sees_it() -> None:
    target = FakeTarget()
    request = _request(
        "POST",
        f"/2018-06-01/runtime/invocation/{RID}/response",
        b"{}",
        lambda_runtime_function_response_mode="buffered",
    )
    with pytest.raises(InvalidFunctionResponseMode) as caught:
        await route(target, request)
    assert target.calls == []
    response = render_error(caught.value)
    assert response.status == 400
    assert orjson.loads(response.body) == {
        "errorType": "InvalidFunctionResponseMode",
        "errorMessage": "Invalid function response mode",
    }


async def test_invocation_error_is_accepted() -> None:
    target = FakeTarget()
    body = b'{"errorMessage":"boom","errorType":"Exception","stackTrace":[]}'
    response = await route(
        target,
        _request(
            "POST",
            f"/2018-06-01/runtime/invocation/{RID}/error",
            body,
            lambda_runtime_function_error_type="Runtime.UnknownReason",
        ),
    )
    assert (response.status, response.body) == (202, ACCEPTED)
    assert target.calls == [("error", RID, body, "application/json")]


async def test_init_error_is_accepted() -> None:
    target = FakeTarget()
    body = b'{"errorMessage":"Unable to import module","errorType":"Runtime.ImportModuleError"}'
    response = await route(target, _request("POST", "/2018-06-01/runtime/init/error", body))
    assert (response.status, response.body) == (202, ACCEPTED)
    assert target.calls == [("init_error", body, "application/json")]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/2018-06-01/ping/"),
        ("GET", "/2020-01-01/extension/register"),
        ("POST", "/2018-06-01/runtime/invocation/next"),
        ("GET", f"/2018-06-01/runtime/invocation/{RID}/response"),
        ("POST", f"/2018-06-01/runtime/invocation/{RID}/other"),
        ("POST", f"/2018-06-01/runtime/invocation/{RID}"),
        ("GET", "/2018-06-01/runtime/init/error"),
        ("GET", "/2018-06-01/runtime/restore/next"),
        ("PUT", f"/2018-06-01/runtime/invocation/{RID}/response"),
    ],
)
async def test_unknown_paths_and_methods_are_404(method: str, path: str) -> None:
    target = FakeTarget()
    response = await route(target, _request(method, path, b"{}"))
    assert (response.status, response.body) == (404, NOT_FOUND)
    assert target.calls == []


def test_render_error() -> None:
    response = render_error(InvalidRequestID("Invalid request ID"))
    assert response.status == 400
    assert response.content_type == "application/json"
    assert response.body == b'{"errorType":"InvalidRequestID","errorMessage":"Invalid request ID"}'


# RuntimeApi.open() over a real socket


def _http(
    address: str, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


async def test_open_serves_the_runtime_api_on_a_loopback_port() -> None:
    target = FakeTarget()
    endpoint = await RuntimeApi().open(target)
    try:
        assert endpoint.address.startswith("127.0.0.1:")
        status, headers, body = await asyncio.to_thread(
            _http, endpoint.address, "GET", "/2018-06-01/runtime/invocation/next"
        )
        assert (status, body) == (200, b'{"hello":"world"}')
        assert headers["Lambda-Runtime-Aws-Request-Id"] == RID
        assert headers["Lambda-Runtime-Deadline-Ms"] == "1542409706888"
        assert headers["Content-Type"] == "application/json"

        status, _, body = await asyncio.to_thread(
            _http, endpoint.address, "POST", f"/2018-06-01/runtime/invocation/{RID}/response", b"42"
        )
        assert (status, body) == (202, ACCEPTED)
        assert target.calls[-1] == ("response", RID, b"42", "application/json")
    finally:
        endpoint.close()


async def test_open_renders_a_refusal_of_the_target() -> None:
    target = FakeTarget()
    target.refuse = InvalidRequestID("Invalid request ID")
    endpoint = await RuntimeApi().open(target)
    try:
        status, _, body = await asyncio.to_thread(
            _http, endpoint.address, "POST", "/2018-06-01/runtime/invocation/nope/response", b"{}"
        )
    finally:
        endpoint.close()
    assert status == 400
    assert orjson.loads(body) == {
        "errorType": "InvalidRequestID",
        "errorMessage": "Invalid request ID",
    }


async def test_open_answers_413_to_a_body_over_the_limit() -> None:
    target = FakeTarget()
    endpoint = await RuntimeApi().open(target)
    try:
        status, _, body = await asyncio.to_thread(
            _http,
            endpoint.address,
            "POST",
            f"/2018-06-01/runtime/invocation/{RID}/response",
            b"x" * (MAX_RUNTIME_PAYLOAD + 1),
        )
    finally:
        endpoint.close()
    assert status == 413
    assert orjson.loads(body) == {
        "errorType": "RequestEntityTooLarge",
        "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
    }
    assert target.calls == [("too_large",)]


async def test_open_accepts_a_body_of_exactly_the_limit() -> None:
    target = FakeTarget()
    endpoint = await RuntimeApi().open(target)
    try:
        status, _, _ = await asyncio.to_thread(
            _http,
            endpoint.address,
            "POST",
            f"/2018-06-01/runtime/invocation/{RID}/response",
            b"x" * MAX_RUNTIME_PAYLOAD,
        )
    finally:
        endpoint.close()
    assert status == 202
    assert [call[0] for call in target.calls] == ["response"]
    assert len(target.calls[0][2]) == MAX_RUNTIME_PAYLOAD  # type: ignore[arg-type]


# Lamina's runtime channel, over a real socket

UPGRADE = (
    b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n"
    b"Connection: Upgrade\r\nUpgrade: lamina-runtime/1\r\n\r\n"
)
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: lamina-runtime/1\r\n\r\n"
)


class Channel:
    """A runtime's end of the channel, on asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, address: str) -> Channel:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(UPGRADE)
        assert await reader.readexactly(len(SWITCHING)) == SWITCHING
        return cls(reader, writer)

    def send(self, kind: bytes, head: bytes = b"", body: bytes = b"") -> None:
        self.writer.write(wire.frame(kind, head, body))

    async def receive(self) -> tuple[bytes, dict[str, str], bytes]:
        kind, head_size, body_size = wire.frame_sizes(await self.reader.readexactly(9))
        head = await self.reader.readexactly(head_size)
        return kind, wire.parse_head(head), await self.reader.readexactly(body_size)

    def close(self) -> None:
        self.writer.close()


def _result_head(request_id: str = RID) -> bytes:
    return f"Lambda-Runtime-Aws-Request-Id: {request_id}\r\nContent-Type: text/plain\r\n".encode()


async def test_the_channel_answers_the_upgraded_next_with_an_invocation() -> None:
    target = FakeTarget()
    endpoint = await RuntimeApi().open(target)
    try:
        channel = await Channel.open(endpoint.address)
        kind, head, body = await channel.receive()
        channel.close()
    finally:
        endpoint.close()
    assert (kind, body) == (wire.INVOCATION, b'{"hello":"world"}')
    assert head == {
        "content-type": "application/json",
        "lambda-runtime-aws-request-id": RID,
        "lambda-runtime-deadline-ms": "1542409706888",
        "lambda-runtime-invoked-function-arn": ARN,
        "lambda-runtime-trace-id": TRACE,
    }
    assert target.calls == [("next",)]


@pytest.mark.parametrize(("kind", "call"), [(wire.RESPONSE, "response"), (wire.ERROR, "error")])
async def test_a_result_on_the_channel_is_posted_and_answered_with_the_next_invocation(
    kind: bytes, call: str
) -> None:
    target = FakeTarget()
    endpoint = await RuntimeApi().open(target)
    try:
        channel = await Channel.open(endpoint.address)
        await channel.receive()
        channel.send(kind, _result_head(), b"42")
        answer, head, _ = await channel.receive()
        channel.close()
    finally:
        endpoint.close()
    assert (answer, head["lambda-runtime-aws-request-id"]) == (wire.INVOCATION, RID)
    assert target.calls == [("next",), (call, RID, b"42", "text/plain"), ("next",)]


async def test_a_refused_result_is_a_failure_and_the_channel_goes_on() -> None:
    target = FakeTarget()
    endpoint = await RuntimeApi().open(target)
    try:
        channel = await Channel.open(endpoint.address)
        await channel.receive()
        target.refuse = InvalidRequestID("Invalid request ID")
        channel.send(wire.RESPONSE, _result_head("nope"), b"{}")
        failure = await channel.receive()
        channel.send(wire.NEXT)
        following, _, _ = await channel.receive()
        channel.close()
    finally:
        endpoint.close()
    assert failure == (
        wire.FAILURE,
        {"status": "400"},
        b'{"errorType":"InvalidRequestID","errorMessage":"Invalid request ID"}',
    )
    assert following == wire.INVOCATION
    assert [c[0] for c in target.calls] == ["next", "response", "next"]


async def test_a_result_over_the_limit_is_a_413_failure_and_the_channel_goes_on() -> None:
    target = FakeTarget()
    endpoint = await RuntimeApi().open(target)
    try:
        channel = await Channel.open(endpoint.address)
        await channel.receive()
        channel.send(wire.RESPONSE, _result_head(), b"x" * (MAX_RUNTIME_PAYLOAD + 1))
        kind, head, body = await channel.receive()
        channel.send(wire.NEXT)
        following, _, _ = await channel.receive()
        channel.close()
    finally:
        endpoint.close()
    assert (kind, head) == (wire.FAILURE, {"status": "413"})
    assert orjson.loads(body) == {
        "errorType": "RequestEntityTooLarge",
        "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
    }
    assert following == wire.INVOCATION
    assert target.calls == [("next",), ("too_large",), ("next",)]


class WaitingTarget(FakeTarget):
    """`wait_next` waits until cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = asyncio.Event()

    async def wait_next(self) -> Invocation:
        self.calls.append(("next",))
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        raise AssertionError("unreachable")


class FutureTarget(FakeTarget):
    """Hands out `next` as a future, as an execution environment does; `hold` keeps it
    pending."""

    def __init__(self, *, hold: bool = False) -> None:
        super().__init__()
        self.hold = hold
        self.cancelled = asyncio.Event()

    def next_invocation(self) -> asyncio.Future[Invocation]:
        self.calls.append(("next",))
        future: asyncio.Future[Invocation] = asyncio.get_running_loop().create_future()
        if self.hold:
            future.add_done_callback(lambda f: f.cancelled() and self.cancelled.set())
        else:
            future.set_result(self.invocation)
        return future


async def test_the_channel_takes_next_as_a_future_when_the_target_offers_one() -> None:
    target = FutureTarget()
    endpoint = await RuntimeApi().open(target)
    try:
        channel = await Channel.open(endpoint.address)
        first, _, _ = await channel.receive()
        channel.send(wire.RESPONSE, _result_head(), b"42")
        second, _, body = await channel.receive()
        channel.close()
    finally:
        endpoint.close()
    assert (first, second, body) == (wire.INVOCATION, wire.INVOCATION, b'{"hello":"world"}')
    assert target.calls == [("next",), ("response", RID, b"42", "text/plain"), ("next",)]


@pytest.mark.parametrize("target_class", [WaitingTarget, FutureTarget])
async def test_a_runtime_going_away_cancels_its_pending_next(target_class: type) -> None:
    target = target_class() if target_class is WaitingTarget else FutureTarget(hold=True)
    endpoint = await RuntimeApi().open(target)
    try:
        channel = await Channel.open(endpoint.address)
        channel.close()
        async with asyncio.timeout(5):
            await target.cancelled.wait()
    finally:
        endpoint.close()


async def test_a_frame_out_of_turn_closes_the_channel() -> None:
    target = WaitingTarget()
    endpoint = await RuntimeApi().open(target)
    try:
        channel = await Channel.open(endpoint.address)
        channel.send(wire.NEXT)  # a second `next` while the first is pending
        async with asyncio.timeout(5):
            assert await channel.reader.read() == b""
            await target.cancelled.wait()
    finally:
        endpoint.close()


async def test_another_upgrade_is_refused() -> None:
    endpoint = await RuntimeApi().open(FakeTarget())
    try:
        host, port = endpoint.address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(UPGRADE.replace(b"lamina-runtime/1", b"websocket"))
        answer = await reader.read()
        writer.close()
    finally:
        endpoint.close()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request")
