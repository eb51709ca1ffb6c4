"""The data plane's HTTP front door: routes from `http`, `httpApi` and `alb` events.

A request is matched against the compiled route table (`core.routing`, which also describes
the URL scheme), turned into the event of its route's front door (`wire.apigw_v1`,
`wire.apigw_v2`, `wire.alb`), run through the invoke service with the route's qualifier, and
the result is turned back into HTTP. What each front door answers when that fails is what
AWS answers (reference 2, 6):

| situation                   | REST API (`http`)   | HTTP API (`httpApi`) | ALB (`alb`)       |
|-----------------------------|---------------------|----------------------|-------------------|
| no route                    | 403 Missing Auth... | 404 Not Found        | 404 Not Found     |
| function error / bad result | 502                 | 500                  | 502               |
| no answer within            | 29 s: 504           | 30 s: 503            | (function's own)  |
| throttled                   | 429                 | 429                  | 503               |
| request body over           | 10 MB: 413          | 10 MB: 413           | 1 MB: 413         |
| invoke failed (no function) | 500                 | 500                  | 502               |

A PHP-FPM function is invoked without JSON on either side (`InvokeService.invoke_http`):
the event is built as for any function, handed over as it is, and php-fpm's CGI response is
written back with the headers the JSON result would have produced (`wire.fpm_params`).

A throttle is a 429 on both API Gateway kinds (AWS's REST APIs answer 500): clients retry
a 429. When the gateway stops waiting, the invocation goes on until the function's own
timeout, as on AWS; so it does when the client goes away.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson

from lamina.core.clock import Clock, SystemClock
from lamina.core.errors import LaminaError, TooManyRequestsException
from lamina.core.invocation import MAX_PAYLOAD
from lamina.core.models import Account
from lamina.core.routes import DEFAULT_ROUTE, Route
from lamina.core.routing import CompiledRoutes, Match, Miss, compile_routes, normalize_path
from lamina.http.server import Request, Response
from lamina.services.ids import IDS
from lamina.services.invoke import InvokeResponse
from lamina.wire import alb, apigw_v1, apigw_v2
from lamina.wire.events import Context, HttpReply, HttpRequest, MalformedResult, has_header
from lamina.wire.fpm_params import http_reply

log = logging.getLogger(__name__)

MAX_BODY = 10 * 1024 * 1024  # API Gateway's request limit; the data plane's server enforces it
REST_TIMEOUT = 29.0
HTTP_API_TIMEOUT = 30.0
CORS_HEADERS = (
    "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token,"
    "X-Amz-User-Agent,X-Amzn-Trace-Id"
)  # what Serverless allows with `cors: true`


class Invoker(Protocol):
    async def invoke(self, name: str, qualifier: str | None, payload: bytes) -> InvokeResponse: ...


@runtime_checkable
class HttpInvoker(Protocol):
    """An invoker that takes events unencoded (`InvokeService`)."""

    def serves_http(self, name: str, qualifier: str | None) -> bool: ...

    async def invoke_http(
        self, name: str, qualifier: str | None, event: dict[str, Any]
    ) -> InvokeResponse: ...


def _json(status: int, body: bytes, error_type: str | None = None) -> Response:
    headers = [("x-amzn-ErrorType", error_type)] if error_type else []
    return Response(status, body, headers)


def _html(status: int, reason: str) -> Response:
    title = f"{status} {reason}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(status, body.encode(), content_type="text/html")


_REST_ERROR = b'{"message": "Internal server error"}'
_HTTP_API_ERROR = b'{"message":"Internal Server Error"}'
_THROTTLED = b'{"message":"Too Many Requests"}'
NOT_FOUND = _json(404, b'{"message":"Not Found"}', "NotFoundException")
MISSING_TOKEN = _json(
    403, b'{"message":"Missing Authentication Token"}', "MissingAuthenticationTokenException"
)
REQUEST_TOO_LONG = _json(413, b'{"message":"Request Too Long"}')


@dataclass(frozen=True, slots=True)
class _Front:
    """How one kind of front door builds events and answers failures."""

    name: str
    build: Callable[[Match, HttpRequest, Context], dict[str, Any]]
    reply: Callable[[bytes, Route], HttpReply]
    timeout: float | None
    max_body: int
    new_id: Callable[[], str]
    id_header: str | None
    function_error: Response
    integration_error: Response
    timed_out: Response
    throttled: Response
    too_large: Response


def _uuid() -> str:
    return IDS.request_id()


def _http_api_id() -> str:
    return base64.b64encode(IDS.take(11)).decode("ascii")  # `JTHoQgr2oAMEPMg=`


_REST = _Front(
    name="REST API",
    build=apigw_v1.build_event,
    reply=lambda payload, route: apigw_v1.to_reply(payload),
    timeout=REST_TIMEOUT,
    max_body=MAX_BODY,
    new_id=_uuid,
    id_header="x-amzn-RequestId",
    function_error=_json(502, _REST_ERROR, "InternalServerErrorException"),
    integration_error=_json(500, _REST_ERROR, "InternalServerErrorException"),
    timed_out=_json(504, b'{"message": "Endpoint request timed out"}', "IntegrationTimeout"),
    throttled=_json(429, _THROTTLED, "TooManyRequestsException"),
    too_large=REQUEST_TOO_LONG,
)
_HTTP_API_V2 = _Front(
    name="HTTP API",
    build=apigw_v2.build_event,
    reply=lambda payload, route: apigw_v2.to_reply(payload),
    timeout=HTTP_API_TIMEOUT,
    max_body=MAX_BODY,
    new_id=_http_api_id,
    id_header="Apigw-Requestid",
    function_error=_json(500, _HTTP_API_ERROR),
    integration_error=_json(500, _HTTP_API_ERROR),
    timed_out=_json(503, b'{"message":"Service Unavailable"}'),
    throttled=_json(429, _THROTTLED),
    too_large=_json(413, b'{"message":"Request Entity Too Large"}'),
)
_HTTP_API_V1 = _Front(
    name="HTTP API",
    build=apigw_v1.build_event,
    reply=_REST.reply,
    timeout=HTTP_API_TIMEOUT,
    max_body=MAX_BODY,
    new_id=_http_api_id,
    id_header="Apigw-Requestid",
    function_error=_HTTP_API_V2.function_error,
    integration_error=_HTTP_API_V2.integration_error,
    timed_out=_HTTP_API_V2.timed_out,
    throttled=_HTTP_API_V2.throttled,
    too_large=_HTTP_API_V2.too_large,
)
_ALB = _Front(
    name="ALB",
    build=alb.build_event,
    reply=lambda payload, route: alb.to_reply(
        payload, multi_value_headers=route.multi_value_headers
    ),
    timeout=None,
    max_body=alb.MAX_BODY,
    new_id=_uuid,
    id_header=None,
    function_error=_html(502, "Bad Gateway"),
    integration_error=_html(502, "Bad Gateway"),
    timed_out=_html(504, "Gateway Time-out"),  # not used: ALB waits for the function
    throttled=_html(503, "Service Temporarily Unavailable"),
    too_large=_html(413, "Request Entity Too Large"),
)


def _front(route: Route) -> _Front:
    if route.kind == "http":
        return _REST
    if route.kind == "alb":
        return _ALB
    return _HTTP_API_V2 if route.payload_version == "2.0" else _HTTP_API_V1


def too_large_response(limit: int) -> Response:
    """The data plane server's answer to a body over `MAX_BODY`, before any route is known."""
    return REQUEST_TOO_LONG


@dataclass(slots=True)
class _Exchange:
    """A request on its way through an invocation: what answering it takes."""

    request: Request
    route: Route
    front: _Front
    context: Context
    answer: asyncio.Future[Response]
    timer: asyncio.TimerHandle | None = None  # the front door's timeout

    def resolve(self, response: Response) -> None:
        """Answer, unless the front door's timeout did already or the client went away."""
        if not self.answer.done():
            self.answer.set_result(_for_method(self.request, response))


class Gateway:
    def __init__(self, *, invoke: Invoker, account: Account, clock: Clock | None = None) -> None:
        self._invoke = invoke
        self._http = invoke if isinstance(invoke, HttpInvoker) else None
        self._account = account
        self._clock = clock or SystemClock()
        self._table = compile_routes(())
        self._running: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stats = dict.fromkeys(
            ("requests", "misses", "function_errors", "malformed", "timeouts", "throttles"), 0
        )

    def __repr__(self) -> str:
        return f"<Gateway routes={len(self._table.routes)} in_flight={len(self._running)}>"

    def statistics(self) -> dict[str, int]:
        return {**self._stats, "routes": len(self._table.routes), "in_flight": len(self._running)}

    # the route table

    def set_routes(self, routes: Sequence[Route]) -> None:
        """Replace every route at once. Raises `InvalidParameterValueException` naming each
        conflict; the routes in use are then unchanged."""
        self._table = compile_routes(routes)

    def routes(self) -> list[Route]:
        return list(self._table.routes)

    def endpoints(self, base_url: str) -> list[tuple[Route, str]]:
        """Each route with its URL on the data plane at `base_url`, e.g. (GET /users/{id},
        `http://127.0.0.1:8080/app/dev/users/{id}`); an `alb` route once per path."""
        table = self._table
        base = base_url.rstrip("/")
        found: list[tuple[Route, str]] = []
        for route in table.routes:
            prefix = f"{base}/{route.service}/{route.stage}"
            if route.kind == "alb":
                if table.alb_root == (route.service, route.stage):
                    prefix = base
                found.extend((route, prefix + p) for p in route.conditions.paths or ("/",))
            elif route.path == DEFAULT_ROUTE:
                found.append((route, prefix + "/"))
            else:
                found.append((route, prefix + normalize_path(route.path)))
        return sorted(found, key=lambda item: (item[0].service, item[0].stage, item[1]))

    # requests

    def __call__(self, request: Request) -> asyncio.Future[Response]:
        """The answer to `request`: a future, where most handlers are coroutines.

        The invocation runs in a task of its own, so that neither the front door's timeout
        nor a client going away (the server then cancels the answer) can cancel it: its
        environment would be handed out again while still busy. That task resolves the
        answer, or the timeout does first. A coroutine here, awaiting that task under a
        timeout and a shield, costs a second task and three more turns of the loop per
        request (~25 µs measured on 2 cores).
        """
        self._stats["requests"] += 1
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        answer: asyncio.Future[Response] = loop.create_future()
        response = self._dispatch(request, answer, loop)
        if response is not None:
            answer.set_result(_for_method(request, response))
        return answer

    def _dispatch(
        self, request: Request, answer: asyncio.Future[Response], loop: asyncio.AbstractEventLoop
    ) -> Response | None:
        """Start the invocation that will resolve `answer`, or answer at once (no route, a
        CORS preflight, a body over a limit)."""
        table = self._table
        source_ip = request.client or "127.0.0.1"
        if (
            request.method == "OPTIONS"
            and "origin" in request.headers
            and "access-control-request-method" in request.headers
        ):
            preflight = _preflight(table, request, source_ip)
            if preflight is not None:
                return preflight
        lookup = table.match(
            request.method,
            request.path,
            host=request.header("host"),
            headers=request.headers,
            query=request.query,
            source_ip=source_ip,
        )
        if isinstance(lookup, Miss):
            self._stats["misses"] += 1
            return MISSING_TOKEN if lookup.kinds == {"http"} else NOT_FOUND
        route = lookup.route
        front = _front(route)
        if len(request.body) > front.max_body:
            return front.too_large
        now = self._clock.time()
        context = Context(
            request_id=front.new_id(),
            time=now,
            account_id=self._account.account_id,
            region=self._account.region,
            trace_id=f"Root=1-{int(now):08x}-{IDS.hex(24)}",
        )
        incoming = HttpRequest(
            method=request.method,
            path=request.path,
            query=request.query,
            headers=tuple(request.raw_headers or request.headers.items()),
            body=request.body,
            source_ip=source_ip,
        )
        call = self._call(route, front.build(lookup, incoming, context))
        if call is None:  # over Lambda's payload limit
            return _with_id(front.too_large, front, context)
        exchange = _Exchange(request, route, front, context, answer)
        if front.timeout is not None:
            exchange.timer = loop.call_later(front.timeout, self._timed_out, exchange)
        task = loop.create_task(self._run(exchange, call))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return None

    def _call(self, route: Route, event: dict[str, Any]) -> Awaitable[InvokeResponse] | None:
        """The invocation of the route's function with `event` (not started), or None when
        the event is over Lambda's payload limit."""
        name, qualifier = route.function_name, route.qualifier
        if self._http is not None and self._http.serves_http(name, qualifier):
            body = event.get("body") or ""
            if len(body) > MAX_PAYLOAD:  # the event's body alone is over Lambda's limit
                return None
            return self._http.invoke_http(name, qualifier, event)
        payload = orjson.dumps(event)
        if len(payload) > MAX_PAYLOAD:  # Lambda's own limit on a synchronous invoke
            return None
        return self._invoke.invoke(name, qualifier, payload)

    def _timed_out(self, exchange: _Exchange) -> None:
        if not exchange.answer.done():
            self._stats["timeouts"] += 1
            exchange.resolve(_with_id(exchange.front.timed_out, exchange.front, exchange.context))

    async def _run(self, exchange: _Exchange, call: Awaitable[InvokeResponse]) -> None:
        """The invocation's own task: run it, then answer (unless that was done already)."""
        answer = exchange.answer
        try:
            try:
                response = await call
            finally:
                if exchange.timer is not None:
                    exchange.timer.cancel()
        except Exception as exc:
            if answer.done():
                # Abandoned by the timeout or the client: no one else sees this error.
                log.debug("an invocation nobody waited for failed: %r", exc)
            else:
                exchange.resolve(self._failed(exchange, exc))
            return
        if answer.done():
            return
        try:
            exchange.resolve(self._reply(exchange, response))
        except Exception as exc:  # a bug of ours: the server logs it and answers 500
            answer.set_exception(exc)

    def _failed(self, exchange: _Exchange, exc: Exception) -> Response:
        front, context = exchange.front, exchange.context
        if isinstance(exc, TooManyRequestsException):
            self._stats["throttles"] += 1
            return _with_id(front.throttled, front, context)
        if isinstance(exc, LaminaError):
            log.warning(
                "%s %s: invoking %s failed: %s",
                front.name,
                context.request_id,
                exchange.route.function_name,
                exc.message,
            )
        else:
            log.error(
                "%s %s: invoking %s failed",
                front.name,
                context.request_id,
                exchange.route,
                exc_info=exc,
            )
        return _with_id(front.integration_error, front, context)

    def _reply(self, exchange: _Exchange, response: InvokeResponse) -> Response:
        """The HTTP answer to a finished invocation, as the front door gives it."""
        front, context, route = exchange.front, exchange.context, exchange.route
        result = response.result
        if result.function_error is not None:
            self._stats["function_errors"] += 1
            return _with_id(front.function_error, front, context)
        try:
            if response.http is not None:
                reply = _fpm_reply(response, front)
            else:
                reply = front.reply(result.payload, route)
        except MalformedResult as exc:
            self._stats["malformed"] += 1
            # AWS logs this as "Malformed Lambda proxy response"; it is the user's to fix.
            log.warning(
                "%s %s: malformed response from %s (request %s): %s",
                front.name,
                context.request_id,
                route.function_name,
                response.request_id,
                exc,
            )
            return _with_id(front.function_error, front, context)
        headers = reply.headers
        if front.id_header is not None:
            headers.append((front.id_header, context.request_id))
        if (
            route.cors
            and front is not _REST
            and "origin" in exchange.request.headers
            and not has_header(headers, "access-control-allow-origin")
        ):
            # HTTP APIs add CORS headers themselves; REST APIs leave it to the function.
            headers.append(("Access-Control-Allow-Origin", "*"))
        return Response(reply.status, reply.body, headers, content_type=None)


def _for_method(request: Request, response: Response) -> Response:
    if request.method == "HEAD" and response.body:
        # A body after a HEAD response would be read as the start of the next response.
        return Response(response.status, b"", response.headers, response.content_type)
    return response


def _fpm_reply(response: InvokeResponse, front: _Front) -> HttpReply:
    assert response.http is not None
    cgi, shape = response.http
    if front is _ALB and len(cgi.body) > alb.MAX_BODY:
        raise MalformedResult(f"the body is {len(cgi.body)} bytes, over ALB's {alb.MAX_BODY}")
    # API Gateway gives a result without a content type a JSON one; an ALB does not.
    return http_reply(cgi, shape, default_content_type=front is not _ALB)


def _with_id(response: Response, front: _Front, context: Context) -> Response:
    if front.id_header is None:
        return response
    headers = [*response.headers, (front.id_header, context.request_id)]
    return Response(response.status, response.body, headers, response.content_type)


def _preflight(table: CompiledRoutes, request: Request, source_ip: str) -> Response | None:
    """Answer a CORS preflight for a route with `cors`, unless a function takes OPTIONS."""
    host = request.header("host")
    own = table.match("OPTIONS", request.path, host=host, source_ip=source_ip)
    if isinstance(own, Match) and own.route.method == "OPTIONS":
        return None
    wanted = request.header("access-control-request-method").upper()
    lookup = table.match(wanted, request.path, host=host, source_ip=source_ip)
    if not isinstance(lookup, Match) or not lookup.route.cors or lookup.route.kind == "alb":
        return None
    headers = [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Headers", CORS_HEADERS),
        ("Access-Control-Allow-Methods", f"OPTIONS,{wanted}"),
    ]
    # REST APIs answer from Serverless's mock integration; HTTP APIs themselves, with 204.
    return Response(200 if lookup.route.kind == "http" else 204, b"", headers)
