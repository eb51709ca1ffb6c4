"""A thin HTTP/1.1 server: httptools parses, an `asyncio.Protocol` moves bytes.

Every edge of Lamina (control API, Runtime API endpoints, the gateway) sits on this. It is
deliberately small: keep-alive, pipelined requests answered in order, a body limit enforced
while reading (413 before buffering more), and cancellation of the request's task when the
peer goes away, which is how a runtime's long-polling `next` learns its process died. A
handler is a coroutine function, or returns a future it resolves from tasks of its own (the
gateway); an upgrade request is refused unless the server was given an `Upgrade` handler
(the Runtime API's channel for Lamina's own runtimes).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast

import httptools

log = logging.getLogger(__name__)

_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}


@dataclass(slots=True)
class Request:
    method: str
    path: str  # percent-encoded, without the query string
    query: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes = b""
    client: str = ""  # the peer's IP address, when the transport has one
    # As received: original case and order, repeated headers apart (API Gateway's
    # multiValueHeaders need them; `headers` is for looking one up).
    raw_headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = "application/json"

    def encode(self, keep_alive: bool) -> bytes:
        status = self.status
        head = _STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status
        has_body = status != 204 and status != 304
        if self.content_type is not None and has_body:
            head += b"Content-Type: " + self.content_type.encode() + b"\r\n"
        for name, value in self.headers:
            head += name.encode() + b": " + value.encode("latin-1") + b"\r\n"
        if has_body:
            head += b"Content-Length: %d\r\n" % len(self.body)
        if not keep_alive:
            head += b"Connection: close\r\n"
        return head + b"\r\n" + self.body


Handler = Callable[[Request], Awaitable[Response]]
TooLarge = Callable[[int], Response]


# An upgrade request's handler: the bytes of the `101 Switching Protocols` answer and the
# protocol the connection then speaks, or None to refuse the upgrade (400).
Upgrade = Callable[[Request], tuple[bytes, asyncio.Protocol] | None]


class HttpProtocol(asyncio.Protocol):
    __slots__ = (
        "_body",
        "_client",
        "_closed",
        "_done_reading",
        "_handler",
        "_headers",
        "_loop",
        "_max_body",
        "_parser",
        "_pending",
        "_raw_headers",
        "_task",
        "_too_large",
        "_too_large_response",
        "_transport",
        "_upgrade",
        "_upgraded",
        "_url",
    )

    def __init__(
        self, handler: Handler, max_body: int, too_large: TooLarge, upgrade: Upgrade | None = None
    ) -> None:
        self._handler = handler
        self._max_body = max_body
        self._too_large_response = too_large
        self._upgrade = upgrade
        self._upgraded: asyncio.Protocol | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._raw_headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._too_large = False
        self._pending: deque[tuple[Request | Response, bool]] = deque()
        self._task: asyncio.Future[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._done_reading = False
        self._client = ""

    # transport callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        # Kept: asyncio.ensure_future() and friends look the loop up (a getpid() each).
        self._loop = asyncio.get_running_loop()
        # A transport that cannot say (a Unix socket, a test's fake) leaves the client unknown.
        get_extra_info = getattr(transport, "get_extra_info", None)
        peer = get_extra_info("peername") if get_extra_info is not None else None
        self._client = peer[0] if isinstance(peer, tuple) else ""

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        if self._done_reading:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # Refused in on_message_complete, in order with earlier requests; or accepted, and
            # what followed the request belongs to the new protocol.
            rest = data[upgrade.args[0] :]
            if self._upgraded is not None and rest:
                self._upgraded.data_received(rest)
        except httptools.HttpParserError:
            if not self._done_reading:
                # Answered after the requests before it, then the connection closes.
                self._done_reading = True
                bad = Response(400, b"malformed HTTP request", content_type="text/plain")
                self._pending.append((bad, False))
                if self._task is None:
                    self._next()

    # parser callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._raw_headers = []
        self._body = []
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        original = name.decode("latin-1")
        key = original.lower()
        text = value.decode("latin-1")
        self._raw_headers.append((original, text))
        old = self._headers.get(key)
        self._headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        length = self._headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            self._too_large = True

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._body.append(body)
        if sum(map(len, self._body)) > self._max_body:
            self._too_large = True
            self._body = []

    def on_message_complete(self) -> None:
        keep_alive = self._parser.should_keep_alive()
        item: Request | Response
        if self._parser.should_upgrade():
            if self._switch():
                return
            item = Response(400, b"upgrades are not supported", content_type="text/plain")
            keep_alive = False
        elif self._too_large:
            item = self._too_large_response(self._max_body)
        else:
            item = self._request()
        if not keep_alive:
            self._done_reading = True  # nothing after this request is read
        self._pending.append((item, keep_alive))
        if self._task is None:
            self._next()

    def _request(self) -> Request:
        url = httptools.parse_url(self._url)
        return Request(
            method=self._parser.get_method().decode(),
            path=url.path.decode("latin-1"),
            query=(url.query or b"").decode("latin-1"),
            headers=self._headers,
            body=b"".join(self._body),
            client=self._client,
            raw_headers=self._raw_headers,
        )

    def _switch(self) -> bool:
        """Hand the connection to the protocol the upgrade handler gives, if it gives one.
        Only a connection with nothing in flight switches."""
        transport = self._transport
        if self._upgrade is None or transport is None or self._pending or self._task is not None:
            return False
        switch = self._upgrade(self._request())
        if switch is None:
            return False
        answer, protocol = switch
        self._done_reading = True
        self._upgraded = protocol
        transport.write(answer)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        return True

    # dispatch, one request at a time per connection

    def _next(self) -> None:
        while self._pending and not self._closed:
            item, keep_alive = self._pending.popleft()
            if isinstance(item, Response):
                self._write(item, keep_alive)
                continue
            try:
                answer = self._handler(item)
            except Exception as exc:  # failed before it had anything to await
                self._write(_internal_error(exc), keep_alive)
                continue
            if isinstance(answer, asyncio.Future):
                # The handler's work runs in tasks of its own (the gateway's invocations).
                self._task = answer
                answer.add_done_callback(functools.partial(self._answered, keep_alive))
            else:
                assert self._loop is not None
                self._task = self._loop.create_task(self._respond(answer, keep_alive))
            return

    async def _respond(self, answer: Awaitable[Response], keep_alive: bool) -> None:
        """Await a coroutine handler and write its response from the same task: a done
        callback would cost another turn of the loop per request."""
        try:
            response = await answer
        except asyncio.CancelledError:
            raise  # the connection is gone: nothing to answer
        except Exception as exc:
            response = _internal_error(exc)
        self._task = None
        self._write(response, keep_alive)
        self._next()

    def _answered(self, keep_alive: bool, answer: asyncio.Future[Response]) -> None:
        self._task = None
        if answer.cancelled():
            return  # the connection is gone
        exc = answer.exception()
        response = answer.result() if exc is None else _internal_error(exc)
        self._write(response, keep_alive)
        self._next()

    def _write(self, response: Response, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or self._closed:
            return
        transport.write(response.encode(keep_alive))
        if not keep_alive:
            self._closed = True
            transport.close()


def _internal_error(exc: BaseException) -> Response:
    log.error("unhandled error in HTTP handler", exc_info=exc)
    return Response(500, b'{"Type":"Service","Message":"internal error"}')


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    max_body: int,
    too_large: TooLarge,
    upgrade: Upgrade | None = None,
) -> asyncio.Server:
    """Listen on host:port. A body over `max_body` bytes is answered with `too_large(max_body)`;
    an upgrade request with what `upgrade` says (refused without it)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HttpProtocol(handler, max_body, too_large, upgrade),
        host,
        port,
        reuse_address=True,
        backlog=1024,
    )
