"""The control API: the Lambda REST API subset boto3 and the aws CLI use, plus Lamina's own
routes (`/health`, `/lamina/v1/...`). Handlers parse the wire shape, call a service and
render the answer; errors are rendered by `lamina.http.errors` only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

import orjson

from lamina.core.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    LaminaError,
    RequestTooLargeException,
    UnknownOperationException,
)
from lamina.core.invocation import MAX_PAYLOAD
from lamina.core.models import Account
from lamina.core.ports import Store
from lamina.http import errors
from lamina.http.server import Request, Response
from lamina.services.async_invoke import AsyncInvoker
from lamina.services.functions import FunctionService
from lamina.services.invoke import InvokeService
from lamina.services.pool import Pool
from lamina.wire import lambda_api as wire

Route = Callable[[Request, re.Match[str], str], Awaitable[Response]]
RouteEntry = tuple[str, re.Pattern[str], Route]


class Router(Protocol):
    """More control API routes (SSM, versions, deployments...), mounted by `app.py`."""

    def routes(self) -> list[RouteEntry]: ...


MAX_CONTROL_BODY = 80 * 1024 * 1024  # base64 of Lambda's 50 MB zipped upload, and then some
INVOCATION_TYPES = frozenset({"RequestResponse", "Event", "DryRun"})


@dataclass
class ControlApi:
    functions: FunctionService
    invoke: InvokeService
    events: AsyncInvoker
    pool: Pool
    store: Store
    account: Account
    routers: list[Router] = field(default_factory=list)
    ready: bool = False

    def __post_init__(self) -> None:
        fn = r"/(?P<name>[^/]+)"
        extra = [entry for router in self.routers for entry in router.routes()]
        builtin: list[RouteEntry] = [
            ("GET", re.compile(r"/health"), self.health),
            ("POST", re.compile(r"/2015-03-31/functions/?"), self.create_function),
            ("GET", re.compile(r"/2015-03-31/functions/?"), self.list_functions),
            ("POST", re.compile(rf"/2015-03-31/functions{fn}/invocations"), self.invoke_function),
            ("POST", re.compile(rf"/2014-11-13/functions{fn}/invoke-async/?"), self.invoke_async),
            ("GET", re.compile(rf"/2015-03-31/functions{fn}/?"), self.get_function),
            ("DELETE", re.compile(rf"/2015-03-31/functions{fn}/?"), self.delete_function),
            ("GET", re.compile(rf"/2015-03-31/functions{fn}/configuration"), self.get_config),
            ("PUT", re.compile(rf"/2015-03-31/functions{fn}/configuration"), self.update_config),
            ("PUT", re.compile(rf"/2015-03-31/functions{fn}/code"), self.update_code),
            ("PUT", re.compile(rf"/2017-10-31/functions{fn}/concurrency"), self.put_concurrency),
            ("DELETE", re.compile(rf"/2017-10-31/functions{fn}/concurrency"), self.del_concurrency),
            ("GET", re.compile(rf"/2019-09-30/functions{fn}/concurrency"), self.get_concurrency),
            (
                "POST",
                re.compile(r"/2018-10-31/layers/(?P<layer>[^/]+)/versions"),
                self.publish_layer,
            ),
            ("GET", re.compile(r"/2018-10-31/layers/(?P<layer>[^/]+)/versions"), self.list_layer),
            (
                "GET",
                re.compile(r"/2018-10-31/layers/(?P<layer>[^/]+)/versions/(?P<version>\d+)"),
                self.get_layer,
            ),
            ("GET", re.compile(r"/2016-08-19/account-settings/?"), self.account_settings),
            ("GET", re.compile(r"/lamina/v1/logs"), self.logs),
            ("GET", re.compile(r"/lamina/v1/status"), self.status),
        ]
        self._routes = [*extra, *builtin]

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            for method, pattern, route in self._routes:
                match = pattern.fullmatch(request.path)
                if match is not None and method == request.method:
                    return await route(request, match, request_id)
            raise UnknownOperationException(f"No operation for {request.method} {request.path}")
        except LaminaError as exc:
            return errors.render(exc, request_id)
        except Exception as exc:
            return errors.render_unexpected(exc, request_id)

    # Lamina's own

    async def health(self, request: Request, match: re.Match[str], rid: str) -> Response:
        if not self.ready:
            return Response(503, b'{"status":"starting"}')
        return Response(200, b'{"status":"ok"}')

    async def status(self, request: Request, match: re.Match[str], rid: str) -> Response:
        body = {
            "pool": self.pool.statistics(),
            "environments": [e.statistics() for e in self.pool.environments()],
        }
        return json_response(body, rid)

    async def logs(self, request: Request, match: re.Match[str], rid: str) -> Response:
        query = parse_qs(request.query)
        name = _first(query, "function")
        if not name:
            raise InvalidParameterValueException("function is required")
        since = _int(query, "since", int(time.time() * 1000) - 600_000)
        after = _int(query, "after", 0)
        rows = await asyncio.to_thread(self.store.query_logs, name, since, after)
        events = [
            {"id": i, "timestamp": e.timestamp_ms, "stream": e.stream, "message": e.message}
            for i, e in rows
        ]
        return json_response({"events": events, "last": rows[-1][0] if rows else after}, rid)

    # functions

    async def create_function(self, request: Request, match: re.Match[str], rid: str) -> Response:
        body = json_body(request)
        name = body.get("FunctionName")
        if not isinstance(name, str):
            raise InvalidParameterValueException("FunctionName is required")
        name, _ = wire.parse_function_name(name)
        code = body.get("Code") or {}
        config = self.functions.create(name, wire.zip_file(code), wire.function_settings(body))
        return json_response(wire.function_configuration(config, self.account), rid, 201)

    async def list_functions(self, request: Request, match: re.Match[str], rid: str) -> Response:
        configs = self.functions.list_functions()
        items = [wire.function_configuration(c, self.account) for c in configs]
        return json_response({"Functions": items}, rid)

    async def get_function(self, request: Request, match: re.Match[str], rid: str) -> Response:
        config = self.functions.get(_name(match))
        location = f"lamina://code/{config.code_sha256}.zip"
        return json_response(wire.get_function(config, self.account, location), rid)

    async def delete_function(self, request: Request, match: re.Match[str], rid: str) -> Response:
        self.functions.delete(_name(match))
        return Response(204, headers=[("x-amzn-RequestId", rid)])

    async def get_config(self, request: Request, match: re.Match[str], rid: str) -> Response:
        config = self.functions.get(_name(match))
        return json_response(wire.function_configuration(config, self.account), rid)

    async def update_config(self, request: Request, match: re.Match[str], rid: str) -> Response:
        settings = wire.function_settings(json_body(request))
        config = self.functions.update_configuration(_name(match), settings)
        return json_response(wire.function_configuration(config, self.account), rid)

    async def update_code(self, request: Request, match: re.Match[str], rid: str) -> Response:
        config = self.functions.update_code(_name(match), wire.zip_file(json_body(request)))
        return json_response(wire.function_configuration(config, self.account), rid)

    async def put_concurrency(self, request: Request, match: re.Match[str], rid: str) -> Response:
        value = json_body(request).get("ReservedConcurrentExecutions")
        config = self.functions.put_concurrency(_name(match), value)
        return json_response({"ReservedConcurrentExecutions": config.reserved_concurrency}, rid)

    async def del_concurrency(self, request: Request, match: re.Match[str], rid: str) -> Response:
        self.functions.delete_concurrency(_name(match))
        return Response(204, headers=[("x-amzn-RequestId", rid)])

    async def get_concurrency(self, request: Request, match: re.Match[str], rid: str) -> Response:
        config = self.functions.get(_name(match))
        if config.reserved_concurrency is None:
            return json_response({}, rid)
        return json_response({"ReservedConcurrentExecutions": config.reserved_concurrency}, rid)

    async def account_settings(self, request: Request, match: re.Match[str], rid: str) -> Response:
        limit = self.pool.ledger.account_limit
        body = {
            "AccountLimit": {
                "TotalCodeSize": 80_530_636_800,
                "CodeSizeUnzipped": 262_144_000,
                "CodeSizeZipped": 52_428_800,
                "ConcurrentExecutions": limit,
                "UnreservedConcurrentExecutions": self.pool.ledger.unreserved_limit,
            },
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": len(self.invoke_names())},
        }
        return json_response(body, rid)

    def invoke_names(self) -> list[str]:
        return [c.name for c in self.functions.list_functions()]

    # layers

    async def publish_layer(self, request: Request, match: re.Match[str], rid: str) -> Response:
        body = json_body(request)
        layer = self.functions.publish_layer_version(
            match["layer"],
            wire.zip_file(body.get("Content") or {}),
            body.get("Description", ""),
            tuple(body.get("CompatibleRuntimes") or ()),
        )
        location = f"lamina://code/{layer.code_sha256}.zip"
        return json_response(wire.layer_version(layer, self.account, location), rid, 201)

    async def list_layer(self, request: Request, match: re.Match[str], rid: str) -> Response:
        layers = self.functions.list_layer_versions(match["layer"])
        items = []
        for layer in layers:
            item = wire.layer_version(layer, self.account, "")
            del item["Content"]
            items.append(item)
        return json_response({"LayerVersions": items}, rid)

    async def get_layer(self, request: Request, match: re.Match[str], rid: str) -> Response:
        layer = self.functions.get_layer_version(match["layer"], int(match["version"]))
        location = f"lamina://code/{layer.code_sha256}.zip"
        return json_response(wire.layer_version(layer, self.account, location), rid)

    # invoking

    async def invoke_function(self, request: Request, match: re.Match[str], rid: str) -> Response:
        name, qualifier = qualified_name(match, request)
        kind = request.header("x-amz-invocation-type", "RequestResponse")
        if kind not in INVOCATION_TYPES:
            raise InvalidParameterValueException(
                f"X-Amz-Invocation-Type = {kind!r}: must be RequestResponse, Event or DryRun"
            )
        payload = request.body or b"{}"
        if len(payload) > MAX_PAYLOAD:
            raise RequestTooLargeException(
                f"Request must be smaller than {MAX_PAYLOAD} bytes for the Invoke operation"
            )
        _checkjson_response(payload)
        if kind == "DryRun":
            self.invoke.resolve(name, qualifier)
            return Response(204, headers=[("x-amzn-RequestId", rid)])
        if kind == "Event":
            event_id = self.events.submit(name, qualifier, payload)
            return Response(202, headers=[("x-amzn-RequestId", event_id)])
        response = await self.invoke.invoke(
            name, qualifier, payload, client_context=_client_context(request)
        )
        result = response.result
        headers = [
            ("x-amzn-RequestId", response.request_id),
            ("X-Amz-Executed-Version", response.executed_version),
        ]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        if request.header("x-amz-log-type") == "Tail":
            headers.append(("X-Amz-Log-Result", base64.b64encode(response.log_tail).decode()))
        return Response(200, result.payload, headers, content_type=result.content_type)

    async def invoke_async(self, request: Request, match: re.Match[str], rid: str) -> Response:
        name, qualifier = qualified_name(match, request)
        _checkjson_response(request.body or b"{}")
        event_id = self.events.submit(name, qualifier, request.body or b"{}")
        return Response(202, b'{"Status":202}', [("x-amzn-RequestId", event_id)])


def json_response(body: Any, request_id: str, status: int = 200) -> Response:
    return Response(status, orjson.dumps(body), [("x-amzn-RequestId", request_id)])


def json_body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestContentException(
            f"Could not parse request body into json: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestContentException("Request body must be a JSON object")
    return body


def _name(match: re.Match[str]) -> str:
    name, _ = wire.parse_function_name(match["name"])
    return name


def qualified_name(match: re.Match[str], request: Request) -> tuple[str, str | None]:
    """The function name and qualifier of a `{name}` path (ARN, partial ARN or name, maybe
    `name:qualifier`) and its `?Qualifier=`, which must agree when both are given."""
    name, qualifier = wire.parse_function_name(match["name"])
    query = query_value(request, "Qualifier")
    if query and qualifier and query != qualifier:
        raise InvalidParameterValueException(
            f"Qualifier = {query!r} differs from the qualifier in the function name ({qualifier!r})"
        )
    return name, qualifier or query or None


def _checkjson_response(payload: bytes) -> None:
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestContentException(
            f"Could not parse request body into json: Could not parse payload into json: {exc}"
        ) from None


def _client_context(request: Request) -> str | None:
    raw = request.header("x-amz-client-context")
    if not raw:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidRequestContentException(
            "X-Amz-Client-Context must be base64-encoded JSON"
        ) from None


def query_value(request: Request, key: str, blank: bool = False) -> str | None:
    """The first value of `key` in the request's query string (`blank`: "" for `key=`,
    else None as for a missing key)."""
    return _first(parse_qs(request.query, keep_blank_values=blank), key)


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _int(query: dict[str, list[str]], key: str, default: int) -> int:
    value = _first(query, key)
    if value is None:
        return default
    if not value.lstrip("-").isdigit():
        raise InvalidParameterValueException(f"{key} = {value!r}: must be an integer")
    return int(value)
