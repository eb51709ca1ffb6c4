"""Application Load Balancer events (`alb`) (reference 2.3).

Event: header names lower-cased; query string keys and values exactly as sent (ALB does not
decode them); `body` is `""` when empty. Without multi-value headers the last value of a
header or query key wins (`headers`, `queryStringParameters`); with them every value is kept
in lists (`multiValueHeaders`, `multiValueQueryStringParameters`) instead.

Reply: a JSON object with an integer `statusCode`; `statusDescription` may be left out (Bref
never sends it) and the standard reason phrase is used either way. The function answers with
`multiValueHeaders` in multi-value mode and `headers` otherwise; the other is ignored. A reply
over 1 MB, or a malformed one, is a 502.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from lamina.core.routes import Route
from lamina.core.routing import Match
from lamina.wire.events import (
    Context,
    HttpReply,
    HttpRequest,
    MalformedResult,
    encode_body,
    header,
    header_map,
    multi_values,
    raw_query_pairs,
    reply_body,
    reply_headers,
    status_code,
    with_forwarding,
)

MAX_BODY = 1024 * 1024  # request body, and the function's JSON reply
_FORWARDING = ("x-forwarded-for", "x-forwarded-port", "x-forwarded-proto", "x-amzn-trace-id")


def target_group_arn(route: Route, region: str, account_id: str) -> str:
    """A stable ARN in AWS's shape; target group names are at most 32 characters."""
    name = route.function_name[:32].rstrip("-")
    digest = hashlib.sha256(f"{route.api_id}\0{route.function_name}\0{route.priority}".encode())
    return (
        f"arn:aws:elasticloadbalancing:{region}:{account_id}:"
        f"targetgroup/{name}/{digest.hexdigest()[:16]}"
    )


def build_event(match: Match, request: HttpRequest, context: Context) -> dict[str, Any]:
    route = match.route
    forwarded = with_forwarding(request, context.trace_id, _FORWARDING)
    headers = [(name.lower(), value) for name, value in forwarded]
    query = raw_query_pairs(request.query)
    body, encoded = "", False
    if request.body:
        content_type = header(request.headers, "content-type")
        body, encoded = encode_body(request.body, content_type, text_types_only=True)
    event: dict[str, Any] = {
        "requestContext": {
            "elb": {"targetGroupArn": target_group_arn(route, context.region, context.account_id)}
        },
        "httpMethod": request.method,
        "path": match.path,
    }
    if route.multi_value_headers:
        event["multiValueQueryStringParameters"] = multi_values(query)
        event["multiValueHeaders"] = multi_values(headers)
    else:
        event["queryStringParameters"] = dict(query)
        event["headers"] = dict(headers)
    event["body"] = body
    event["isBase64Encoded"] = encoded
    return event


def to_reply(payload: bytes, *, multi_value_headers: bool) -> HttpReply:
    if len(payload) > MAX_BODY:
        raise MalformedResult(f"the result is {len(payload)} bytes, over ALB's {MAX_BODY}")
    try:
        result = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise MalformedResult("the result is not JSON") from None
    if not isinstance(result, dict):
        raise MalformedResult(f"the result must be an object, got {type(result).__name__}")
    status = status_code(result)
    pairs: list[tuple[str, object]] = []
    if multi_value_headers:
        for name, values in header_map(
            result.get("multiValueHeaders"), "multiValueHeaders"
        ).items():
            if not isinstance(values, list):
                raise MalformedResult(f"multiValueHeaders.{name} must be a list")
            pairs.extend((name, value) for value in values)
    else:
        pairs.extend(header_map(result.get("headers"), "headers").items())
    return HttpReply(status, reply_headers(pairs), reply_body(result))
