"""The Runtime API (`/2018-06-01/runtime/...`): one endpoint per execution environment.

Each environment gets its own listening socket on the loopback interface, so its runtime
finds the API at `AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>` exactly as on Lambda, and a
request can only ever concern that environment. The handlers translate HTTP to calls on the
environment (`RuntimeTarget`) and render the Runtime API's own errors.

Lamina's built-in runtimes switch their connection to Lamina's runtime channel with their
first `next` (`wire.runtime_api`, `RuntimeChannel`): the same calls on the environment, one
exchange per invocation, no HTTP to parse or render. Measured on 2 cores, that is ~55 µs of
Lamina's CPU less per invocation than a response and a `next` over HTTP (a quarter of its
warm path), and one wake-up of each process less.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, cast, runtime_checkable

from lamina.core.errors import InvalidFunctionResponseMode, LaminaError, RequestEntityTooLarge
from lamina.core.invocation import MAX_RUNTIME_PAYLOAD, Invocation
from lamina.core.ports import RuntimeTarget
from lamina.http.server import Request, Response, serve
from lamina.wire import runtime_api as wire

log = logging.getLogger(__name__)

_ACCEPTED = Response(202, wire.ACCEPTED)
_NOT_FOUND = Response(404, wire.error_body("NotFound", "Not Found"))
_NEXT_PATH = wire.PREFIX + "invocation/next"
_INTERNAL_ERROR = b'{"Type":"Service","Message":"internal error"}'  # as the HTTP server's


class RuntimeEndpointServer:
    __slots__ = ("_host", "_server")

    def __init__(self, server: asyncio.Server, host: str) -> None:
        self._server = server
        self._host = host

    @property
    def address(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return f"{self._host}:{port}"

    def close(self) -> None:
        self._server.close()


class RuntimeApi:
    """Opens Runtime API endpoints on `host` (the loopback interface by default)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host

    async def open(self, target: RuntimeTarget) -> RuntimeEndpointServer:
        async def handle(request: Request) -> Response:
            try:
                return await route(target, request)
            except LaminaError as exc:
                return render_error(exc)

        def too_large(limit: int) -> Response:
            target.post_too_large()
            return render_error(_too_large(limit))

        def upgrade(request: Request) -> tuple[bytes, asyncio.Protocol] | None:
            if (
                request.method != "GET"
                or request.path != _NEXT_PATH
                or request.header("upgrade").lower() != wire.CHANNEL
            ):
                return None
            return wire.SWITCHING, RuntimeChannel(target)

        server = await serve(
            handle,
            self._host,
            0,
            max_body=MAX_RUNTIME_PAYLOAD,
            too_large=too_large,
            upgrade=upgrade,
        )
        return RuntimeEndpointServer(server, self._host)


async def route(target: RuntimeTarget, request: Request) -> Response:
    path = request.path
    if not path.startswith(wire.PREFIX):
        return _NOT_FOUND
    rest = path[len(wire.PREFIX) :]
    method = request.method
    content_type = request.header("content-type", "application/json")
    if rest == "invocation/next" and method == "GET":
        invocation = await target.wait_next()
        return Response(200, invocation.payload, wire.next_headers(invocation))
    if rest == "init/error" and method == "POST":
        target.post_init_error(request.body, content_type)
        return _ACCEPTED
    if rest.startswith("invocation/") and method == "POST":
        request_id, _, action = rest[len("invocation/") :].partition("/")
        if action == "response":
            mode = request.header(wire.RESPONSE_MODE)
            if mode and mode != "streaming":
                raise InvalidFunctionResponseMode("Invalid function response mode")
            target.post_response(request_id, request.body, content_type)
            return _ACCEPTED
        if action == "error":
            target.post_error(request_id, request.body, content_type)
            return _ACCEPTED
    return _NOT_FOUND


def render_error(exc: LaminaError) -> Response:
    return Response(exc.status, wire.error_body(exc.error_type, exc.message))


@runtime_checkable
class NextAsFuture(Protocol):
    """A target that hands out `next` as a future (`ExecutionEnvironment`): the channel then
    waits on it with a callback, where `wait_next` would take a task per invocation."""

    def next_invocation(self) -> asyncio.Future[Invocation]: ...


class RuntimeChannel(asyncio.Protocol):
    """The Runtime API on Lamina's runtime channel, after the upgrade of a `next` request.

    Strictly one exchange at a time: the runtime's frame, then Lamina's answer (the next
    invocation, or a FAILURE frame carrying the HTTP status and body `route` would answer).
    """

    __slots__ = ("_buffer", "_futures", "_loop", "_next_wait", "_skip", "_target", "_transport")

    def __init__(self, target: RuntimeTarget) -> None:
        self._target = target
        self._futures = target if isinstance(target, NextAsFuture) else None
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer = bytearray()
        self._skip = 0  # bytes of an oversized frame still to drop
        self._next_wait: asyncio.Future[Invocation] | None = None

    def __repr__(self) -> str:
        state = "waiting" if self._next_wait is not None else "idle"
        return f"<RuntimeChannel {state} open={self._transport is not None}>"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._loop = asyncio.get_running_loop()
        self._next()  # the request that asked for the channel was a `next`

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._next_wait is not None:
            self._next_wait.cancel()  # as the HTTP server does with a pending `next`

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while self._transport is not None:
            if self._skip:
                dropped = min(self._skip, len(buffer))
                del buffer[:dropped]
                self._skip -= dropped
                if self._skip:
                    return
                self._too_large()
            if len(buffer) < wire.FRAME_HEAD:
                return
            kind, head_size, body_size = wire.frame_sizes(buffer)
            if body_size > MAX_RUNTIME_PAYLOAD:
                del buffer[: wire.FRAME_HEAD]
                self._skip = head_size + body_size
                continue
            end = wire.FRAME_HEAD + head_size + body_size
            if len(buffer) < end:
                return
            head = bytes(buffer[wire.FRAME_HEAD : wire.FRAME_HEAD + head_size])
            body = bytes(buffer[wire.FRAME_HEAD + head_size : end])
            del buffer[:end]
            self._received(kind, head, body)

    def _received(self, kind: bytes, head: bytes, body: bytes) -> None:
        if self._next_wait is not None or kind not in (wire.NEXT, wire.RESPONSE, wire.ERROR):
            log.warning("runtime channel: unexpected frame %r: closing it", kind)
            self._close()
            return
        if kind != wire.NEXT:
            fields = wire.parse_head(head)
            request_id = fields.get(wire.CHANNEL_REQUEST_ID, "")
            content_type = fields.get("content-type", "application/json")
            try:
                if kind == wire.RESPONSE:
                    self._target.post_response(request_id, body, content_type)
                else:
                    self._target.post_error(request_id, body, content_type)
            except Exception as exc:
                self._write(_error_frame(exc))
                return
        self._next()

    def _next(self) -> None:
        """Ask the target for the next invocation; it is sent when it comes."""
        assert self._loop is not None
        try:
            if self._futures is not None:
                wait = self._futures.next_invocation()
            else:
                wait = self._loop.create_task(self._target.wait_next())
        except Exception as exc:  # refused at once
            self._write(_error_frame(exc))
            return
        self._next_wait = wait
        wait.add_done_callback(self._send_next)

    def _send_next(self, wait: asyncio.Future[Invocation]) -> None:
        self._next_wait = None
        if wait.cancelled():
            return  # the runtime went away
        exc = wait.exception()
        if exc is not None:
            self._write(_error_frame(exc))
            return
        try:
            answer = wire.invocation_frame(wait.result())
        except Exception as error:
            answer = _internal_error(error)
        self._write(answer)

    def _too_large(self) -> None:
        self._target.post_too_large()
        self._write(_failure(_too_large(MAX_RUNTIME_PAYLOAD)))

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


def _too_large(limit: int) -> RequestEntityTooLarge:
    return RequestEntityTooLarge(f"Exceeded maximum allowed payload size ({limit} bytes).")


def _error_frame(exc: BaseException) -> bytes:
    """What the HTTP side would answer for `exc`: its own error, or a 500 for a bug."""
    return _failure(exc) if isinstance(exc, LaminaError) else _internal_error(exc)


def _failure(exc: LaminaError) -> bytes:
    return wire.failure_frame(exc.status, wire.error_body(exc.error_type, exc.message))


def _internal_error(exc: BaseException) -> bytes:
    log.error("unhandled error in the runtime channel", exc_info=exc)
    return wire.failure_frame(500, _INTERNAL_ERROR)
