"""What the HTTP event formats share: the request a gateway received, the reply it sends,
and the rules for bodies, headers and query strings (reference 2.1-2.3).

The formats themselves are `apigw_v1` (REST `http` events, and HTTP API payload 1.0),
`apigw_v2` (HTTP API payload 2.0) and `alb`. Each has a `build_event` (request -> event
JSON) and a `to_reply` (the function's result -> HTTP reply, or `MalformedResult`).

Request bodies: an empty body is no body. A body that is not UTF-8 is always base64 with
`isBase64Encoded: true`. HTTP APIs and ALB also base64 any body whose content type is not
text (`text/*`, `application/json`, `application/javascript`, `application/xml`). REST APIs
send every UTF-8 body as text, as they do without `binaryMediaTypes`; a non-UTF-8 body, which
AWS would mangle, is base64 instead.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TEXT_TYPES = frozenset({"application/json", "application/javascript", "application/xml"})
# Connection-level headers of a function's response; Content-Length is recomputed.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "content-length",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request as the gateway received it."""

    method: str
    path: str  # as requested, base URL included; percent-encoded
    query: str  # raw, without `?`
    headers: Headers  # in order received, names as sent
    body: bytes
    source_ip: str


@dataclass(frozen=True, slots=True)
class Context:
    """What the gateway adds: identity of this request and of the account."""

    request_id: str
    time: float  # epoch seconds
    account_id: str
    region: str
    trace_id: str  # X-Amzn-Trace-Id for requests that arrive without one


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: list[tuple[str, str]]  # Content-Type included when the function gave one
    body: bytes


class MalformedResult(ValueError):
    """The function's result is not a valid response for its front door."""


# requests


def header(headers: Headers, name: str) -> str | None:
    """The last value of header `name` (case-insensitive)."""
    found = None
    for key, value in headers:
        if key.lower() == name:
            found = value
    return found


def is_text(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media.startswith("text/") or media in TEXT_TYPES


def encode_body(
    body: bytes, content_type: str | None, *, text_types_only: bool
) -> tuple[str, bool]:
    """(body, isBase64Encoded) for a non-empty body."""
    if not text_types_only or is_text(content_type):
        try:
            return body.decode(), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def with_forwarding(
    request: HttpRequest, trace_id: str, names: tuple[str, str, str, str]
) -> Headers:
    """The headers plus what API Gateway and ALB add: the client's address appended to
    X-Forwarded-For, the port and protocol it used, and a trace id unless one came in.
    `names` spells X-Forwarded-For, -Port, -Proto and X-Amzn-Trace-Id for the format."""
    headers = request.headers
    forwarded_for, forwarded_port, forwarded_proto, trace = names
    replaced = {forwarded_for.lower(), forwarded_port.lower(), forwarded_proto.lower()}
    kept = tuple((k, v) for k, v in headers if k.lower() not in replaced)
    earlier = header(headers, "x-forwarded-for")
    host = header(headers, "host") or ""
    port = host.rpartition(":")[2] if ":" in host.rpartition("]")[2] else "80"
    added = [
        (forwarded_for, f"{earlier}, {request.source_ip}" if earlier else request.source_ip),
        (forwarded_port, port),
        (forwarded_proto, "http"),
    ]
    if header(headers, "x-amzn-trace-id") is None:
        added.append((trace, trace_id))
    return kept + tuple(added)


def multi_values(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for key, value in headers:
        result.setdefault(key, []).append(value)
    return result


def raw_query_pairs(query: str) -> list[tuple[str, str]]:
    """`a=1&b&c=%20` -> [("a", "1"), ("b", ""), ("c", "%20")]: split, not decoded."""
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((key, value))
    return pairs


def clf_time(epoch_s: float) -> str:
    """`24/Nov/2019:18:55:08 +0000`, API Gateway's requestTime (locale-independent)."""
    t = time.gmtime(epoch_s)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def domain_prefix(host: str) -> str:
    return host.partition(":")[0].partition(".")[0]


# replies


def status_code(result: Mapping[str, Any]) -> int:
    value = result.get("statusCode")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 599:
        raise MalformedResult(f"statusCode must be an integer from 100 to 599, got {value!r}")
    return value


def reply_body(result: Mapping[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedResult(f"body must be a string, got {type(body).__name__}")
    if result.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedResult("body is not valid base64 but isBase64Encoded is true") from None
    return body.encode()


def header_map(value: object, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedResult(f"{field} must be an object, got {type(value).__name__}")
    return value


def header_value(name: str, value: object) -> str | None:
    """A response header value as text (numbers and booleans as JSON writes them), or None
    to leave the header out."""
    if not name or not _TOKEN.issuperset(name):
        raise MalformedResult(f"{name!r} is not a valid header name")
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise MalformedResult(f"header {name} must be a string, got {type(value).__name__}")
    if "\r" in text or "\n" in text:
        raise MalformedResult(f"header {name} contains a line break")
    # The wire carries bytes; the server writes header text as latin-1.
    return text.encode().decode("latin-1")


def reply_headers(pairs: Iterable[tuple[str, object]]) -> list[tuple[str, str]]:
    headers = []
    for name, value in pairs:
        text = header_value(name, value)
        if text is not None and name.lower() not in HOP_BY_HOP:
            headers.append((name, text))
    return headers


def has_header(headers: Iterable[tuple[str, str]], name: str) -> bool:
    return any(key.lower() == name for key, _ in headers)
