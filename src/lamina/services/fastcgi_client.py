"""An asyncio FastCGI client: one Unix-socket connection to one php-fpm, kept open.

It lives in `services/`, beside the execution environment that owns it, because services
may not import `http/` (the edges depend on services, not the other way round); the codec
is `wire.fastcgi` and the `asyncio.Protocol` here only moves bytes.

Requests are sent with FCGI_KEEP_CONN, so php-fpm leaves the connection open and the next
request skips connect() and accept(). If php-fpm closes it anyway, the next request after
the close has arrived connects again; a request written into a connection php-fpm has
already closed fails like a crash, and is not sent again (it may have run). Lamina's
php-fpm.conf gives php-fpm no reason to close one (no `pm.max_requests`). One at a time:
php-fpm does not multiplex, and an execution environment serves one invocation at a time.
"""

from __future__ import annotations

import asyncio
from typing import cast

from lamina.wire.fastcgi import (
    ProtocolError,
    Response,
    ResponseParser,
    abort_request,
    encode_request,
)


class FastCgiClosed(ConnectionError):
    """php-fpm closed the connection (or never accepted it) before ending the request."""


class _Protocol(asyncio.Protocol):
    __slots__ = ("_parser", "_waiter", "closed", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = ResponseParser()
        self._waiter: asyncio.Future[Response] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def expect(self, request_id: int, waiter: asyncio.Future[Response]) -> None:
        self._parser.begin(request_id)
        self._waiter = waiter

    def stderr_so_far(self, request_id: int) -> bytes:
        return self._parser.stderr_so_far(request_id)

    def data_received(self, data: bytes) -> None:
        try:
            done = self._parser.feed(data)
        except ProtocolError as exc:
            self.fail(FastCgiClosed(f"php-fpm sent bytes that are not FastCGI: {exc}"))
            if self.transport is not None:
                self.transport.abort()
            return
        for item in done:
            waiter = self._waiter
            if isinstance(item, Response) and waiter is not None and not waiter.done():
                self._waiter = None
                waiter.set_result(item)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.fail(FastCgiClosed("php-fpm closed the FastCGI connection mid-request"))

    def fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class FastCgiClient:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._protocol: _Protocol | None = None
        self._request_id = 0
        self.connections = 0  # how many times it connected (1 when keep-alive holds)
        self.requests = 0

    def __repr__(self) -> str:
        state = "connected" if self.connected else "idle"
        return f"<FastCgiClient {self.socket_path} {state} requests={self.requests}>"

    def statistics(self) -> dict[str, object]:
        return {"connections": self.connections, "requests": self.requests}

    @property
    def connected(self) -> bool:
        protocol = self._protocol
        return protocol is not None and not protocol.closed

    async def connect(self) -> None:
        """Open the connection (raises OSError when nothing listens on the socket)."""
        if self.connected:
            return
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_unix_connection(_Protocol, self.socket_path)
        self._protocol = protocol
        self.connections += 1

    async def request(self, params: bytes, stdin: bytes) -> Response:
        """Send one request and wait for its END_REQUEST. Cancelling the wait leaves the
        connection unusable: call `abort()`."""
        if not self.connected:
            await self.connect()
        protocol = self._protocol
        assert protocol is not None and protocol.transport is not None
        self._request_id = self._request_id % 0xFFFF + 1
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        protocol.expect(self._request_id, waiter)
        protocol.transport.writelines(encode_request(self._request_id, params, stdin))
        self.requests += 1
        return await waiter

    def stderr_so_far(self) -> bytes:
        """What the running request wrote to FastCGI stderr (for a timed-out request)."""
        protocol = self._protocol
        return protocol.stderr_so_far(self._request_id) if protocol is not None else b""

    def abort(self, *, tell: bool = False) -> None:
        """Drop the connection: its request, if any, is abandoned. With `tell`, php-fpm is
        sent an ABORT_REQUEST for it first (and the connection closes once that is out)."""
        protocol, self._protocol = self._protocol, None
        if protocol is None or protocol.transport is None:
            return
        if tell and not protocol.closed:
            protocol.transport.write(abort_request(self._request_id))
            protocol.transport.close()
            protocol.fail(FastCgiClosed("the request was aborted"))
        else:
            protocol.transport.abort()

    def close(self) -> None:
        self.abort()
