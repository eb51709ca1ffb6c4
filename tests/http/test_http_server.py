from __future__ import annotations

import asyncio

import orjson
import pytest

from lamina.http.server import HttpProtocol, Request, Response, serve


class FakeTransport:
    """Records what the protocol writes; `wait_writes` waits without sleeping."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self._changed = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    async def wait_writes(self, count: int) -> list[bytes]:
        """Until `count` writes happened or the connection was closed (nothing follows a close)."""
        async with asyncio.timeout(5):
            while len(self.writes) < count and not self.closed:
                self._changed.clear()
                await self._changed.wait()
        return self.writes


class Recorder:
    """A handler that echoes the request; paths under /gate/ wait for their gate."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        self.started.set()
        if request.path == "/boom":
            raise RuntimeError("secret detail")
        if request.path == "/forever":
            try:
                await asyncio.get_running_loop().create_future()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        if request.path.startswith("/gate/"):
            await self.gates.setdefault(request.path, asyncio.Event()).wait()
        body = orjson.dumps(
            {"method": request.method, "path": request.path, "body": len(request.body)}
        )
        return Response(200, body)


TOO_LARGE_BODY = b'{"errorType":"TooLarge"}'


class TooLarge:
    def __init__(self) -> None:
        self.limits: list[int] = []

    def __call__(self, limit: int) -> Response:
        self.limits.append(limit)
        return Response(413, TOO_LARGE_BODY)


def _connect(handler: Recorder, max_body: int = 64) -> tuple[HttpProtocol, FakeTransport, TooLarge]:
    too_large = TooLarge()
    protocol = HttpProtocol(handler, max_body, too_large)
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport, too_large


def _response(status: int, body: bytes, *, close: bool = False) -> bytes:
    reason = {
        200: b"OK",
        400: b"Bad Request",
        413: b"Request Entity Too Large",
        500: b"Internal Server Error",
    }[status]
    lines = [
        b"HTTP/1.1 %d %s" % (status, reason),
        b"Content-Type: application/json",
        b"Content-Length: %d" % len(body),
    ]
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _echo(method: str, path: str, body_length: int = 0) -> bytes:
    return orjson.dumps({"method": method, "path": path, "body": body_length})


async def test_simple_get() -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(b"GET /hello?x=1&y=2 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    writes = await transport.wait_writes(1)
    assert writes == [_response(200, _echo("GET", "/hello"))]
    assert not transport.closed
    (request,) = handler.requests
    assert request.path == "/hello"
    assert request.query == "x=1&y=2"
    assert request.headers == {"host": "localhost"}
    assert request.body == b""


async def test_post_with_body_in_several_chunks() -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(b"POST /2018-06-01/runtime/invocation/a%3Ab/response HTTP/1.1\r\n")
    protocol.data_received(b"Content-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello")
    protocol.data_received(b" world")
    await transport.wait_writes(1)
    (request,) = handler.requests
    assert request.method == "POST"
    assert request.path == "/2018-06-01/runtime/invocation/a%3Ab/response"  # still encoded
    assert request.body == b"hello world"
    assert request.header("content-type") == "text/plain"
    assert request.header("x-missing", "none") == "none"


async def test_chunked_body_is_joined() -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    await transport.wait_writes(1)
    assert handler.requests[0].body == b"hello world"


async def test_repeated_headers_are_joined_and_names_lower_cased() -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(b"GET / HTTP/1.1\r\nX-Tag: a\r\nx-tag: b\r\nX-ONE: 1\r\n\r\n")
    await transport.wait_writes(1)
    assert handler.requests[0].headers == {"x-tag": "a, b", "x-one": "1"}


async def test_keep_alive_pipelined_requests_are_answered_in_order() -> None:
    handler = Recorder()
    handler.gates["/gate/first"] = gate = asyncio.Event()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(
        b"GET /gate/first HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /second HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    )
    await handler.started.wait()
    # One request at a time: the second is not started while the first runs.
    assert [r.path for r in handler.requests] == ["/gate/first"]
    assert transport.writes == []
    gate.set()
    writes = await transport.wait_writes(2)
    assert writes == [
        _response(200, _echo("GET", "/gate/first")),
        _response(200, _echo("POST", "/second", 3)),
    ]
    assert not transport.closed


async def test_keep_alive_connection_serves_a_later_request() -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(b"GET /one HTTP/1.1\r\n\r\n")
    await transport.wait_writes(1)
    protocol.data_received(b"GET /two HTTP/1.1\r\n\r\n")
    writes = await transport.wait_writes(2)
    assert writes[1] == _response(200, _echo("GET", "/two"))
    assert not transport.closed


async def test_connection_close_answers_then_closes() -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n")
    writes = await transport.wait_writes(1)
    assert writes == [_response(200, _echo("GET", "/last"), close=True)]
    assert transport.closed


async def test_data_after_connection_close_is_ignored() -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(
        b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n"
    )
    writes = await transport.wait_writes(1)
    assert writes == [_response(200, _echo("GET", "/last"), close=True)]
    assert transport.closed
    assert [r.path for r in handler.requests] == ["/last"]


async def test_http_1_0_without_keep_alive_closes() -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(b"GET /old HTTP/1.0\r\n\r\n")
    writes = await transport.wait_writes(1)
    assert writes[0].endswith(b"Connection: close\r\n\r\n" + _echo("GET", "/old"))
    assert transport.closed


async def test_body_over_max_body_gets_the_too_large_response() -> None:
    handler = Recorder()
    protocol, transport, too_large = _connect(handler, max_body=10)
    protocol.data_received(
        b"POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n"
    )
    writes = await transport.wait_writes(1)
    assert writes == [_response(413, TOO_LARGE_BODY)]
    assert too_large.limits == [10]
    assert handler.requests == []


async def test_body_of_exactly_max_body_is_accepted() -> None:
    handler = Recorder()
    protocol, transport, too_large = _connect(handler, max_body=10)
    protocol.data_received(b"POST /fits HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789")
    writes = await transport.wait_writes(1)
    assert writes == [_response(200, _echo("POST", "/fits", 10))]
    assert too_large.limits == []


async def test_content_length_over_max_body_gets_the_too_large_response() -> None:
    handler = Recorder()
    protocol, transport, too_large = _connect(handler, max_body=10)
    protocol.data_received(b"POST /big HTTP/1.1\r\nContent-Length: 20\r\n\r\n")
    protocol.data_received(b"x" * 20)
    writes = await transport.wait_writes(1)
    assert writes == [_response(413, TOO_LARGE_BODY)]
    assert too_large.limits == [10]
    assert handler.requests == []
    # The connection stays usable: the oversized body was read and discarded.
    protocol.data_received(b"GET /after HTTP/1.1\r\n\r\n")
    writes = await transport.wait_writes(2)
    assert writes[1] == _response(200, _echo("GET", "/after"))


async def test_too_large_response_keeps_its_place_in_the_pipeline() -> None:
    handler = Recorder()
    handler.gates["/gate/first"] = gate = asyncio.Event()
    protocol, transport, _ = _connect(handler, max_body=4)
    protocol.data_received(
        b"GET /gate/first HTTP/1.1\r\n\r\n"
        b"POST /big HTTP/1.1\r\nContent-Length: 5\r\n\r\n12345"
        b"GET /third HTTP/1.1\r\n\r\n"
    )
    await handler.started.wait()
    assert transport.writes == []
    gate.set()
    writes = await transport.wait_writes(3)
    assert writes == [
        _response(200, _echo("GET", "/gate/first")),
        _response(413, TOO_LARGE_BODY),
        _response(200, _echo("GET", "/third")),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GET / HTTP/9.9 extra\r\n\r\n",
    ],
)
async def test_malformed_request_is_400_and_closes(data: bytes) -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(data)
    assert transport.writes == [
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 22\r\n"
        b"Connection: close\r\n\r\nmalformed HTTP request"
    ]
    assert transport.closed
    assert handler.requests == []


async def test_malformed_request_after_a_pipelined_one_is_answered_after_it() -> None:
    handler = Recorder()
    handler.gates["/gate/first"] = gate = asyncio.Event()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(b"GET /gate/first HTTP/1.1\r\n\r\n")
    await handler.started.wait()
    protocol.data_received(b"\x00garbage\r\n\r\n")
    gate.set()
    writes = await transport.wait_writes(2)
    assert writes[0] == _response(200, _echo("GET", "/gate/first"))
    assert writes[1].startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert transport.closed


async def _one_loop_turn() -> None:
    """Let every callback that is already scheduled run once (no timed sleep)."""
    loop = asyncio.get_running_loop()
    turned = loop.create_future()
    loop.call_soon(turned.set_result, None)
    await turned


async def test_upgrade_is_refused_without_running_the_handler() -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    assert transport.writes == [
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 26\r\n"
        b"Connection: close\r\n\r\nupgrades are not supported"
    ]
    assert transport.closed
    await _one_loop_turn()
    assert handler.requests == []


class Switched(asyncio.Protocol):
    """What an accepted upgrade hands the connection to."""

    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None
        self.received: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received.append(data)


class SwitchingTransport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.protocol: asyncio.BaseProtocol | None = None

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol


SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x/1\r\n\r\n"


def _upgrading(seen: list[Request]) -> tuple[HttpProtocol, SwitchingTransport, Switched]:
    switched = Switched()

    def upgrade(request: Request) -> tuple[bytes, asyncio.Protocol] | None:
        seen.append(request)
        return (SWITCHING, switched) if request.header("upgrade") == "x/1" else None

    protocol = HttpProtocol(Recorder(), 64, TooLarge(), upgrade)
    transport = SwitchingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport, switched


async def test_an_accepted_upgrade_hands_the_connection_over() -> None:
    seen: list[Request] = []
    protocol, transport, switched = _upgrading(seen)
    protocol.data_received(
        b"GET /next HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: x/1\r\n\r\nframe"
    )
    assert [(r.method, r.path) for r in seen] == [("GET", "/next")]
    assert transport.writes == [SWITCHING]
    assert transport.protocol is switched and switched.transport is transport
    assert switched.received == [b"frame"]  # what followed the request is the new protocol's
    assert not transport.closed
    protocol.data_received(b"GET /late HTTP/1.1\r\n\r\n")  # nothing reaches the old one
    assert transport.writes == [SWITCHING]


async def test_an_upgrade_the_handler_declines_is_refused() -> None:
    seen: list[Request] = []
    protocol, transport, _ = _upgrading(seen)
    protocol.data_received(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    assert transport.writes[0].startswith(b"HTTP/1.1 400 Bad Request")
    assert transport.closed
    assert transport.protocol is None


async def test_an_upgrade_behind_a_request_in_flight_is_refused() -> None:
    seen: list[Request] = []
    protocol, transport, _ = _upgrading(seen)
    protocol.data_received(
        b"GET /one HTTP/1.1\r\n\r\n"
        b"GET /next HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x/1\r\n\r\n"
    )
    writes = await transport.wait_writes(2)
    assert writes[0] == _response(200, _echo("GET", "/one"))
    assert writes[1].startswith(b"HTTP/1.1 400 Bad Request")
    assert seen == []
    assert transport.protocol is None


async def test_handler_exception_is_a_500_without_details() -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(b"GET /boom HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n")
    writes = await transport.wait_writes(2)
    assert writes[0] == _response(500, b'{"Type":"Service","Message":"internal error"}')
    assert b"secret detail" not in writes[0]
    assert writes[1] == _response(200, _echo("GET", "/next"))


async def test_a_handler_answering_with_a_future_is_answered_when_it_resolves() -> None:
    futures: list[asyncio.Future[Response]] = []

    def handler(request: Request) -> asyncio.Future[Response]:
        if request.path == "/boom":
            raise RuntimeError("secret detail")
        futures.append(asyncio.get_running_loop().create_future())
        return futures[-1]

    protocol = HttpProtocol(handler, 64, TooLarge())
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(b"GET /boom HTTP/1.1\r\n\r\nGET /one HTTP/1.1\r\n\r\n")
    assert transport.writes == [_response(500, b'{"Type":"Service","Message":"internal error"}')]
    futures[0].set_result(Response(200, b"{}"))
    writes = await transport.wait_writes(2)
    assert writes[1] == _response(200, b"{}")
    protocol.data_received(b"GET /two HTTP/1.1\r\n\r\n")
    protocol.connection_lost(None)
    assert futures[1].cancelled()  # the connection is gone: so is the wait for its answer


async def test_connection_lost_cancels_the_running_handler() -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.data_received(b"GET /forever HTTP/1.1\r\n\r\nGET /never HTTP/1.1\r\n\r\n")
    await handler.started.wait()
    protocol.connection_lost(None)
    async with asyncio.timeout(5):
        await handler.cancelled.wait()
    assert [r.path for r in handler.requests] == ["/forever"]
    assert transport.writes == []


async def test_data_after_connection_lost_is_not_answered() -> None:
    handler = Recorder()
    protocol, transport, _ = _connect(handler)
    protocol.connection_lost(ConnectionResetError())
    protocol.data_received(b"GET /late HTTP/1.1\r\n\r\n")
    assert handler.requests == []
    assert transport.writes == []


def test_response_encoding() -> None:
    response = Response(202, b"{}", [("X-Amz-Function-Error", "Unhandled")])
    assert response.encode(keep_alive=True) == (
        b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
        b"X-Amz-Function-Error: Unhandled\r\nContent-Length: 2\r\n\r\n{}"
    )


def test_response_without_content_type_and_no_content() -> None:
    assert Response(204, content_type=None).encode(keep_alive=False) == (
        b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
    )
    assert Response(200, b"x", content_type=None).encode(keep_alive=True) == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
    )


def test_response_with_an_unknown_status() -> None:
    assert Response(599).encode(True).startswith(b"HTTP/1.1 599 Unknown\r\n")


async def test_serve_over_a_real_socket() -> None:
    handler = Recorder()
    server = await serve(handler, "127.0.0.1", 0, max_body=64, too_large=TooLarge())
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
            b"GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        async with asyncio.timeout(5):
            data = await reader.read()  # until the server closes
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    assert data == _response(200, _echo("POST", "/first", 2)) + _response(
        200, _echo("GET", "/second"), close=True
    )
