"""The Runtime API (`/2018-06-01/runtime/...`): one endpoint per execution environment.

Each environment gets its own listening socket on the loopback interface, so its runtime
finds the API at `AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>` exactly as on Lambda, and a
request can only ever concern that environment. The handlers translate HTTP to calls on the
environment (`RuntimeTarget`) and render the Runtime API's own errors.
"""

from __future__ import annotations

import asyncio

from lamina.core.errors import InvalidFunctionResponseMode, LaminaError, RequestEntityTooLarge
from lamina.core.invocation import MAX_RUNTIME_PAYLOAD
from lamina.core.ports import RuntimeTarget
from lamina.http.server import Request, Response, serve
from lamina.wire import runtime_api as wire

_ACCEPTED = Response(202, wire.ACCEPTED)
_NOT_FOUND = Response(404, wire.error_body("NotFound", "Not Found"))


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
            return render_error(
                RequestEntityTooLarge(f"Exceeded maximum allowed payload size ({limit} bytes).")
            )

        server = await serve(
            handle, self._host, 0, max_body=MAX_RUNTIME_PAYLOAD, too_large=too_large
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
