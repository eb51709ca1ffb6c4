"""API Gateway REST API events (`http`), Lambda proxy integration; also HTTP API payload 1.0
(reference 2.1).

Event: header names as received, `headers` last value wins, `multiValueHeaders` every value;
query strings decoded (`+` is a space), `queryStringParameters` last value wins, both null
without a query string; `path` without the base URL and `requestContext.path` with it, both
still percent-encoded, as are `pathParameters`; `body` null when empty. An HTTP API with
payload 1.0 sends the same shape plus `"version": "1.0"`, stage `$default`.

Reply: a JSON object with an integer `statusCode`; `headers` and `multiValueHeaders` merged,
`multiValueHeaders` winning for a name in both; `body` a string (base64 when
`isBase64Encoded`). Anything else is malformed (API Gateway answers 502 for a REST API).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from typing import Any
from urllib.parse import parse_qsl

import orjson

from lamina.core.routes import DEFAULT_ROUTE
from lamina.core.routing import Match, resource_path
from lamina.wire.events import (
    Context,
    HttpReply,
    HttpRequest,
    MalformedResult,
    clf_time,
    domain_prefix,
    encode_body,
    has_header,
    header,
    header_map,
    multi_values,
    reply_body,
    reply_headers,
    status_code,
    with_forwarding,
)

_FORWARDING = ("X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Amzn-Trace-Id")


def build_event(match: Match, request: HttpRequest, context: Context) -> dict[str, Any]:
    route = match.route
    http_api = route.kind == "httpApi"
    headers = with_forwarding(request, context.trace_id, _FORWARDING)
    pairs = parse_qsl(request.query, keep_blank_values=True) if request.query else []
    multi_query: dict[str, list[str]] | None = multi_values(pairs) if pairs else None
    body: str | None = None
    encoded = False
    if request.body:
        content_type = header(request.headers, "content-type")
        body, encoded = encode_body(request.body, content_type, text_types_only=http_api)
    host = header(request.headers, "host") or ""
    stage = DEFAULT_ROUTE if http_api else route.stage
    resource = resource_path(route)
    event: dict[str, Any] = {
        "resource": resource,
        "path": match.path,
        "httpMethod": request.method,
        "headers": dict(headers) or None,
        "multiValueHeaders": multi_values(headers) or None,
        "queryStringParameters": dict(pairs) if pairs else None,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": dict(match.path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": _resource_id(resource),
            "resourcePath": resource,
            "httpMethod": request.method,
            "extendedRequestId": extended_request_id(context.request_id),
            "requestTime": request_time(int(context.time)),
            "path": request.path,
            "accountId": context.account_id,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": domain_prefix(host),
            "requestTimeEpoch": int(context.time * 1000),
            "requestId": context.request_id,
            "identity": _identity(request.source_ip, header(request.headers, "user-agent")),
            "domainName": host,
            "apiId": route.api_id,
        },
        "body": body,
        "isBase64Encoded": encoded,
    }
    if http_api:
        event = {"version": "1.0", **event}
    return event


@functools.lru_cache(maxsize=4)
def request_time(epoch_s: int) -> str:
    """`clf_time`, formatted once per second rather than once per request."""
    return clf_time(epoch_s)


@functools.lru_cache(maxsize=1024)
def _resource_id(resource: str) -> str:
    """A hash of the resource path: the same for every request of a route."""
    return hashlib.sha1(resource.encode()).hexdigest()[:6]


def extended_request_id(request_id: str) -> str:
    """A stable stand-in for API Gateway's `extendedRequestId` (`XXXXXX-xxxxxxxx=` style)."""
    digest = hashlib.sha256(request_id.encode()).digest()[:10]
    return base64.b64encode(digest).decode("ascii")


def _identity(source_ip: str, user_agent: str | None) -> dict[str, str | None]:
    return {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "sourceIp": source_ip,
        "principalOrgId": None,
        "accessKey": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": user_agent,
        "user": None,
    }


def to_reply(payload: bytes) -> HttpReply:
    try:
        result = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise MalformedResult("the result is not JSON") from None
    if not isinstance(result, dict):
        raise MalformedResult(f"the result must be an object, got {type(result).__name__}")
    status = status_code(result)
    single = header_map(result.get("headers"), "headers")
    multi = header_map(result.get("multiValueHeaders"), "multiValueHeaders")
    overridden = {name.lower() for name in multi}
    pairs: list[tuple[str, object]] = [
        (name, value) for name, value in single.items() if name.lower() not in overridden
    ]
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedResult(f"multiValueHeaders.{name} must be a list")
        pairs.extend((name, value) for value in values)
    headers = reply_headers(pairs)
    if not has_header(headers, "content-type"):
        headers.append(("Content-Type", "application/json"))
    return HttpReply(status, headers, reply_body(result))
