"""HTTP events to FastCGI params, and php-fpm's answer back, as Bref's FPM runtime does it.

Request (Bref `HttpRequestEvent` + `FpmHandler::eventToFastCgiRequest`, sent through
hollodotme/fast-cgi-client, whose fixed params come last and win):

| param                       | value                                                          |
|-----------------------------|----------------------------------------------------------------|
| PATH_INFO                   | v2 `rawPath`; v1/ALB `path` (the stage is not in it); else `/` |
| QUERY_STRING                | rebuilt: see `query_string`                                    |
| LAMBDA_INVOCATION_CONTEXT   | json_encode {awsRequestId, deadlineMs, invokedFunctionArn,     |
|                             | traceId}                                                       |
| LAMBDA_REQUEST_CONTEXT      | json_encode of the event's `requestContext` (`[]` if none)     |
| HTTP_<NAME>                 | per header (`-` to `_`, upper case); repeated: the last value  |
| GATEWAY_INTERFACE           | FastCGI/1.0                                                    |
| REQUEST_METHOD              | `httpMethod` or `requestContext.http.method`, upper case       |
| REQUEST_URI                 | PATH_INFO, plus `?` QUERY_STRING when there is one             |
| SCRIPT_FILENAME             | `$LAMBDA_TASK_ROOT/$_HANDLER`                                  |
| SERVER_SOFTWARE             | bref                                                           |
| REMOTE_ADDR / SERVER_ADDR   | 127.0.0.1 (the client's address is only in X-Forwarded-For)    |
| REMOTE_PORT / SERVER_PORT   | the `x-forwarded-port` header as an integer, else 80           |
| SERVER_NAME                 | the `host` header, else localhost                              |
| SERVER_PROTOCOL             | `requestContext.protocol`, else HTTP/1.1 (so always, for v2)   |
| CONTENT_TYPE                | the `content-type` header, else application/x-www-form-urlencoded |
| CONTENT_LENGTH              | the body's length in bytes (0 without one)                     |

Headers come from `multiValueHeaders` when present, else `headers`, names lower-cased; a
request with a body gets `content-type: application/x-www-form-urlencoded` and
`content-length` when it lacks them; v2 `cookies` become one `cookie: a=b; c=d` header.
The body is base64-decoded when `isBase64Encoded`. Bref sets no SCRIPT_NAME, DOCUMENT_ROOT
or HTTPS: php-fpm derives PHP_SELF and SCRIPT_NAME from what it is given.

Response (Bref `HttpResponse`): header names lower-cased then capitalised (`Content-Type`);
`Status:` gives the status code (default 200; a `Location` without it is a 302, per CGI).
v2 results carry every `Set-Cookie` in `cookies` and join other repeated headers with
`", "`; v1/ALB results carry `multiValueHeaders` when the event had them, else `headers`
with the last value of each. Deliberate difference: a body that is not UTF-8 is sent as
base64 (Bref fails such a response unless `BREF_BINARY_RESPONSES=1`, which base64-encodes
every body; that variable is honoured too).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from lamina.wire.events import HttpReply, MalformedResult, has_header, reply_headers
from lamina.wire.fastcgi import CgiResponse, encode_pairs
from lamina.wire.fpm_php import (
    http_build_query,
    json_encode,
    json_string,
    latin1,
    query_to_array,
    to_int,
    urlencode,
)

ReplyShape = Literal["v1", "v1-multi", "v2"]
FORM = "application/x-www-form-urlencoded"
INVALID_EVENT = "Bref\\Event\\InvalidLambdaEvent"


class InvalidLambdaEvent(ValueError):
    """Not an HTTP event: Bref's FPM runtime fails such an invocation."""


@dataclass(frozen=True, slots=True)
class FpmRequest:
    params: bytes  # encoded name-value pairs, ready for PARAMS records
    body: bytes
    shape: ReplyShape  # the result format the event calls for


def invocation_context(request_id: str, deadline_ms: int, invoked_arn: str, trace_id: str) -> str:
    """LAMBDA_INVOCATION_CONTEXT: Bref's `json_encode($context)`."""
    return (
        f'{{"awsRequestId":{json_string(request_id)},"deadlineMs":{int(deadline_ms)},'
        f'"invokedFunctionArn":{json_string(invoked_arn)},"traceId":{json_string(trace_id)}}}'
    )


def is_warmer(event: object) -> bool:
    """Bref answers `{"warmer": true}` itself, before looking at the event."""
    return isinstance(event, Mapping) and event.get("warmer") is True


def request_from_event(
    event: object, *, script_filename: str, invocation_context: str
) -> FpmRequest:
    if not isinstance(event, Mapping):
        raise InvalidLambdaEvent(_invalid(event))
    context = event.get("requestContext")
    method = event.get("httpMethod")
    if method is None and isinstance(context, Mapping):
        http = context.get("http")
        method = http.get("method") if isinstance(http, Mapping) else None
    if method is None:
        raise InvalidLambdaEvent(_invalid(event))
    v2 = _php_float(event.get("version", "1.0")) == 2.0
    body = _body(event)
    headers = _headers(event, body, v2=v2)
    path = _text(event.get("rawPath" if v2 else "path", "/"), "/")
    query = query_string(event, v2=v2)
    uri = f"{path}?{query}" if query and query != "0" else path
    port = str(to_int(_first(headers, "x-forwarded-port", "80")))
    protocol = context.get("protocol") if isinstance(context, Mapping) else None
    content_type = _first(headers, "content-type", "")

    params: dict[str, str] = {
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "LAMBDA_INVOCATION_CONTEXT": invocation_context,
        "LAMBDA_REQUEST_CONTEXT": json_encode(context if context is not None else []),
    }
    for name, values in headers.items():
        if values:  # one variable per header: a repeated header's last value wins
            params["HTTP_" + name.replace("-", "_").upper()] = values[-1]
    params.update(
        {
            "GATEWAY_INTERFACE": "FastCGI/1.0",
            "REQUEST_METHOD": _text(method, "").upper(),
            "REQUEST_URI": uri,
            "SCRIPT_FILENAME": script_filename,
            "SERVER_SOFTWARE": "bref",
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": port,
            "SERVER_ADDR": "127.0.0.1",
            "SERVER_PORT": port,
            "SERVER_NAME": _first(headers, "host", "localhost"),
            "SERVER_PROTOCOL": _text(protocol, "HTTP/1.1") if protocol is not None else "HTTP/1.1",
            "CONTENT_TYPE": content_type if content_type and content_type != "0" else FORM,
            "CONTENT_LENGTH": str(len(body)),
        }
    )
    shape: ReplyShape = (
        "v2" if v2 else ("v1-multi" if _present(event, "multiValueHeaders") else "v1")
    )
    encoded = [(k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in params.items()]
    return FpmRequest(encode_pairs(encoded), body, shape)


def _invalid(event: object) -> str:
    shown = orjson.dumps(event, default=str).decode()
    return (
        "This handler expected to be invoked with a API Gateway or ALB event. "
        f"Instead, the handler was invoked with invalid event data: {shown}"
    )


def _present(event: Mapping[str, Any], key: str) -> bool:
    return event.get(key) is not None  # PHP's isset


def _text(value: object, default: str) -> str:
    """A JSON scalar as PHP's string cast writes it."""
    if value is None:
        return default
    if value is True:
        return "1"
    if value is False:
        return ""
    if isinstance(value, float):
        return json_encode(value)
    return str(value)


def _php_float(value: object) -> float:
    try:
        return float(value) if isinstance(value, int | float | str) else 0.0
    except ValueError:
        return float(to_int(str(value)))


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    text = _text(body, "")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(text)
        except (binascii.Error, ValueError):
            return b""  # PHP's base64_decode gives false, then an empty string
    return text.encode("utf-8", "surrogateescape")


def _values(value: object) -> list[str]:
    if isinstance(value, list):
        return [_text(v, "") for v in value]
    return [_text(value, "")]


def _headers(event: Mapping[str, Any], body: bytes, *, v2: bool) -> dict[str, list[str]]:
    source = event.get("multiValueHeaders")
    multi = source is not None
    if not multi:
        source = event.get("headers")
    headers: dict[str, list[str]] = {}
    if isinstance(source, Mapping):
        for name, value in source.items():
            headers[str(name).lower()] = _values(value) if multi else [_text(value, "")]
    raw_body = event.get("body")
    if raw_body is not None and raw_body != "" and raw_body != "0" and raw_body is not False:
        headers.setdefault("content-type", [FORM])
        headers.setdefault("content-length", [str(len(body))])
    cookies = event.get("cookies")
    if v2 and cookies:
        headers["cookie"] = ["; ".join(_values(cookies))]
    return headers


def _first(headers: Mapping[str, list[str]], name: str, default: str) -> str:
    values = headers.get(name)
    return values[0] if values else default


def query_string(event: Mapping[str, Any], *, v2: bool) -> str:
    """Bref's `rebuildQueryString`: the query string PHP sees, re-encoded by PHP."""
    if v2:
        return http_build_query(query_to_array(latin1(_text(event.get("rawQueryString"), ""))))
    context = event.get("requestContext")
    if isinstance(context, Mapping) and context.get("elb") is not None:
        # ALB sends keys and values as received: rebuild the raw query and parse it.
        source = event.get("multiValueQueryStringParameters")
        if source is None:
            source = event.get("queryStringParameters") or {}
        raw = ""
        for key, values in _items(source):
            for value in [] if values is None else _values(values):
                raw += f"{latin1(str(key))}={latin1(value)}&"
        return http_build_query(query_to_array(raw))
    multi = event.get("multiValueQueryStringParameters")
    if multi:
        raw = "&".join(
            f"{latin1(str(key))}={urlencode(latin1(value))}"
            for key, values in _items(multi)
            for value in _values(values)
        )
        return http_build_query(query_to_array(raw))
    single = event.get("queryStringParameters")
    if not single:
        return ""
    return http_build_query(
        {latin1(str(k)): latin1(_text(v, "")) for k, v in _items(single) if v is not None}
    )


def _items(value: object) -> Sequence[tuple[object, object]]:
    return list(value.items()) if isinstance(value, Mapping) else []


# the response


def grouped_headers(cgi: CgiResponse) -> dict[str, list[str]]:
    """The response headers as Bref holds them: lower-case names, values in order. A name
    sent in two spellings keeps the later spelling's values (PHP's array_change_key_case)."""
    by_spelling: dict[str, list[str]] = {}
    for name, value in cgi.headers:
        by_spelling.setdefault(name, []).append(value)
    lowered: dict[str, list[str]] = {}
    for name, values in by_spelling.items():
        lowered[name.lower()] = values
    return lowered


def capitalize(name: str) -> str:
    """`content-type` -> `Content-Type` (Bref's capitalizeHeaderName)."""
    return "-".join(word[:1].upper() + word[1:] for word in name.replace("-", " ").split(" "))


def _encoded_body(body: bytes, binary_responses: bool) -> tuple[str, bool]:
    if not binary_responses:
        try:
            return body.decode(), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def result(cgi: CgiResponse, shape: ReplyShape, *, binary_responses: bool) -> dict[str, Any]:
    """The API Gateway / ALB result Bref's FPM runtime returns for this response."""
    headers = grouped_headers(cgi)
    body, encoded = _encoded_body(cgi.body, binary_responses)
    if shape == "v2":
        cookies: list[str] = []
        single: dict[str, str] = {}
        for name, values in headers.items():
            capitalized = capitalize(name)
            if capitalized == "Set-Cookie":
                cookies = values
            else:
                single[capitalized] = ", ".join(values)
        return {
            "cookies": cookies,
            "isBase64Encoded": encoded,
            "statusCode": cgi.status,
            "headers": single,
            "body": body,
        }
    key = "multiValueHeaders" if shape == "v1-multi" else "headers"
    mapped: dict[str, Any] = {}
    for name, values in headers.items():
        mapped[capitalize(name)] = values if shape == "v1-multi" else values[-1]
    return {"isBase64Encoded": encoded, "statusCode": cgi.status, key: mapped, "body": body}


def http_reply(cgi: CgiResponse, shape: ReplyShape, *, default_content_type: bool) -> HttpReply:
    """What the front door sends for `result(cgi, shape)`, without the JSON in between:
    the same headers in the same order, the body as bytes. API Gateway adds a JSON content
    type when there is none (`default_content_type`); an ALB does not."""
    if not 100 <= cgi.status <= 599:
        raise MalformedResult(f"statusCode must be an integer from 100 to 599, got {cgi.status}")
    headers = grouped_headers(cgi)
    pairs: list[tuple[str, object]] = []
    if shape == "v2":
        cookies: list[str] = []
        for name, values in headers.items():
            capitalized = capitalize(name)
            if capitalized == "Set-Cookie":
                cookies = values
            else:
                pairs.append((capitalized, ", ".join(values)))
        pairs.extend(("Set-Cookie", cookie) for cookie in cookies)
    elif shape == "v1-multi":
        pairs.extend((capitalize(name), v) for name, values in headers.items() for v in values)
    else:
        pairs.extend((capitalize(name), values[-1]) for name, values in headers.items())
    sent = reply_headers(pairs)
    if default_content_type and not has_header(sent, "content-type"):
        sent.append(("Content-Type", "application/json"))
    return HttpReply(cgi.status, sent, cgi.body)
