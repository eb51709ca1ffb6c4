"""API Gateway HTTP API events (`httpApi`), payload format 2.0 (reference 2.2).

Event: header names lower-cased, repeated headers joined with `,`; every Cookie header split
into `cookies` and left out of `headers`; query strings decoded, repeated keys joined with
`,`; `rawPath` without the base URL and `rawQueryString` as received; path parameters
decoded. `cookies`, `queryStringParameters`, `pathParameters` and `body` are absent when
empty. Unlike AWS, `rawPath` stays percent-encoded: decoding it would lose `%2F` and `%3F`.

Reply: a JSON object with `statusCode` is the full form (`headers` single strings, each
`cookies` entry its own Set-Cookie). Any other JSON is a 200 `application/json` whose body is
the JSON text, except that a JSON string is sent as its contents. A result that is not JSON,
or a full form that is malformed, is an error (API Gateway answers 500).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from lamina.core.routing import Match, route_key
from lamina.wire.apigw_v1 import request_time
from lamina.wire.events import (
    Context,
    HttpReply,
    HttpRequest,
    MalformedResult,
    domain_prefix,
    encode_body,
    has_header,
    header,
    header_map,
    header_value,
    reply_body,
    reply_headers,
    status_code,
    with_forwarding,
)

_FORWARDING = ("x-forwarded-for", "x-forwarded-port", "x-forwarded-proto", "x-amzn-trace-id")
_JSON = ("Content-Type", "application/json")


def build_event(match: Match, request: HttpRequest, context: Context) -> dict[str, Any]:
    route = match.route
    key = route_key(route)
    cookies: list[str] = []
    headers: dict[str, str] = {}
    for name, value in with_forwarding(request, context.trace_id, _FORWARDING):
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        earlier = headers.get(lower)
        headers[lower] = value if earlier is None else f"{earlier},{value}"
    host = headers.get("host", "")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": key,
        "rawPath": match.path,
        "rawQueryString": request.query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if request.query:
        query: dict[str, str] = {}
        for name, value in parse_qsl(request.query, keep_blank_values=True):
            earlier = query.get(name)
            query[name] = value if earlier is None else f"{earlier},{value}"
        if query:
            event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": context.account_id,
        "apiId": route.api_id,
        "domainName": host,
        "domainPrefix": domain_prefix(host),
        "http": {
            "method": request.method,
            "path": match.path,
            "protocol": "HTTP/1.1",
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": context.request_id,
        "routeKey": key,
        "stage": "$default",
        "time": request_time(int(context.time)),
        "timeEpoch": int(context.time * 1000),
    }
    if match.path_parameters:
        event["pathParameters"] = {k: unquote(v) for k, v in match.path_parameters.items()}
    if request.body:
        content_type = header(request.headers, "content-type")
        event["body"], event["isBase64Encoded"] = encode_body(
            request.body, content_type, text_types_only=True
        )
    else:
        event["isBase64Encoded"] = False
    return event


def to_reply(payload: bytes) -> HttpReply:
    try:
        result = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise MalformedResult("the result is not JSON") from None
    if not isinstance(result, dict) or "statusCode" not in result:
        body = result.encode() if isinstance(result, str) else payload
        return HttpReply(200, [_JSON], body)
    status = status_code(result)
    headers = reply_headers(header_map(result.get("headers"), "headers").items())
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        raise MalformedResult(f"cookies must be a list, got {type(cookies).__name__}")
    for cookie in cookies:
        if not isinstance(cookie, str):
            raise MalformedResult(f"cookies must be strings, got {type(cookie).__name__}")
        value = header_value("Set-Cookie", cookie)
        if value is not None:
            headers.append(("Set-Cookie", value))
    if not has_header(headers, "content-type"):
        headers.append(_JSON)
    return HttpReply(status, headers, reply_body(result))
