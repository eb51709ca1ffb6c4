"""The rules the event formats share, at the edges the golden vectors do not reach."""

from __future__ import annotations

import orjson
import pytest

from lamina.core.routes import Route
from lamina.core.routing import Match
from lamina.wire import alb, apigw_v1, apigw_v2
from lamina.wire.events import (
    Context,
    HttpRequest,
    MalformedResult,
    clf_time,
    encode_body,
    header,
    header_value,
    is_text,
    raw_query_pairs,
    with_forwarding,
)

CONTEXT = Context("rid", 1_700_000_000.0, "123456789012", "eu-west-1", "Root=1-x")
V1_NAMES = ("X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Amzn-Trace-Id")


def _request(headers: tuple[tuple[str, str], ...], body: bytes = b"") -> HttpRequest:
    return HttpRequest("GET", "/", "", headers, body, "192.0.2.1")


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("text/html; charset=utf-8", True),
        ("TEXT/CSV", True),
        ("application/json", True),
        ("Application/JSON ; charset=UTF-8", True),
        ("application/javascript", True),
        ("application/xml", True),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("application/vnd.api+json", False),  # ALB's list is exact
        ("image/png", False),
        (None, False),
    ],
)
def test_text_content_types(content_type: str | None, text: bool) -> None:
    assert is_text(content_type) is text


def test_bodies_without_a_content_type_are_base64_except_on_rest_apis() -> None:
    assert encode_body(b"a=1", None, text_types_only=True) == ("YT0x", True)
    assert encode_body(b"a=1", None, text_types_only=False) == ("a=1", False)
    assert encode_body(b"\xff", "text/plain", text_types_only=False) == ("/w==", True)


@pytest.mark.parametrize(
    ("host", "port"),
    [("example.org", "80"), ("example.org:8443", "8443"), ("[::1]:9000", "9000"), ("[::1]", "80")],
)
def test_forwarded_port_comes_from_the_host_header(host: str, port: str) -> None:
    headers = with_forwarding(_request((("Host", host),)), "trace", V1_NAMES)
    assert header(headers, "x-forwarded-port") == port


def test_forwarding_without_a_host_header() -> None:
    headers = with_forwarding(_request(()), "Root=1-x", V1_NAMES)
    assert headers == (
        ("X-Forwarded-For", "192.0.2.1"),
        ("X-Forwarded-Port", "80"),
        ("X-Forwarded-Proto", "http"),
        ("X-Amzn-Trace-Id", "Root=1-x"),
    )


def test_forwarding_replaces_a_client_supplied_port_and_protocol() -> None:
    sent = (("x-forwarded-proto", "https"), ("X-Forwarded-Port", "443"))
    headers = with_forwarding(_request(sent), "t", V1_NAMES)
    assert header(headers, "x-forwarded-proto") == "http"
    assert [k for k, _ in headers].count("X-Forwarded-Port") == 1


def test_request_time_is_english_whatever_the_locale() -> None:
    assert clf_time(0) == "01/Jan/1970:00:00:00 +0000"
    assert clf_time(1_700_000_000.999) == "14/Nov/2023:22:13:20 +0000"


def test_raw_query_pairs_are_not_decoded() -> None:
    assert raw_query_pairs("a=1&&b&c=%20+&=x&d=1=2") == [
        ("a", "1"),
        ("b", ""),
        ("c", "%20+"),
        ("", "x"),
        ("d", "1=2"),
    ]


def test_header_values_are_sent_as_utf8_bytes() -> None:
    # The server writes header text as latin-1, so UTF-8 goes out byte for byte.
    assert header_value("X-Name", "café").encode("latin-1") == "café".encode()  # type: ignore[union-attr]
    assert header_value("X-Ratio", 0.5) == "0.5"


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("X-A", "one\r\nX-Injected: 1", "line break"),
        ("X-A", "one\nx", "line break"),
        ("Bad Name", "1", "header name"),
        ("", "1", "header name"),
        ("X-A", ["1"], "must be a string"),
        ("X-A", {"a": 1}, "must be a string"),
    ],
)
def test_invalid_response_headers_are_malformed(name: str, value: object, why: str) -> None:
    with pytest.raises(MalformedResult, match=why):
        header_value(name, value)


@pytest.mark.parametrize(
    ("result", "why"),
    [
        ({"statusCode": 200, "body": "%%%", "isBase64Encoded": True}, "base64"),
        ({"statusCode": 99}, "statusCode"),
        ({"statusCode": 600}, "statusCode"),
        ({"statusCode": True}, "statusCode"),
        ({"statusCode": 200.0}, "statusCode"),
        ({"statusCode": 200, "headers": ["a"]}, "headers must be an object"),
        ({"statusCode": 200, "multiValueHeaders": {"a": "b"}}, "must be a list"),
    ],
)
def test_malformed_rest_results(result: object, why: str) -> None:
    with pytest.raises(MalformedResult, match=why):
        apigw_v1.to_reply(orjson.dumps(result))


@pytest.mark.parametrize(
    ("result", "why"),
    [
        ({"statusCode": 200, "cookies": "a=1"}, "cookies must be a list"),
        ({"statusCode": 200, "cookies": [1]}, "cookies must be strings"),
        ({"statusCode": 200, "body": 5}, "body must be a string"),
    ],
)
def test_malformed_http_api_results(result: object, why: str) -> None:
    with pytest.raises(MalformedResult, match=why):
        apigw_v2.to_reply(orjson.dumps(result))


def test_null_body_and_null_headers_are_empty() -> None:
    reply = apigw_v1.to_reply(b'{"statusCode": 200, "headers": null, "body": null}')
    assert (reply.status, reply.body) == (200, b"")


def test_alb_reply_over_one_megabyte_is_malformed() -> None:
    body = "x" * alb.MAX_BODY
    payload = orjson.dumps({"statusCode": 200, "body": body})
    with pytest.raises(MalformedResult, match="over ALB's"):
        alb.to_reply(payload, multi_value_headers=False)
    small = orjson.dumps({"statusCode": 200, "body": body[:1000]})
    assert alb.to_reply(small, multi_value_headers=False).status == 200


def test_alb_multi_value_reply_needs_lists() -> None:
    with pytest.raises(MalformedResult, match="must be a list"):
        alb.to_reply(
            b'{"statusCode": 200, "multiValueHeaders": {"a": "b"}}', multi_value_headers=True
        )


def test_target_group_arn_is_stable_and_short() -> None:
    route = Route("alb", "app", "dev", "a-very-long-service-name-production-handler", priority=3)
    arn = alb.target_group_arn(route, "eu-west-1", "123456789012")
    assert arn == alb.target_group_arn(route, "eu-west-1", "123456789012")
    name = arn.split(":targetgroup/")[1].split("/")[0]
    assert len(name) <= 32
    assert arn.startswith("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/")


def test_events_of_each_format_are_recognised_as_bref_recognises_them() -> None:
    """Reference 2.4: v1/ALB have httpMethod, v2 has version 2.0 and requestContext.http,
    ALB has requestContext.elb; multi-value responses iff the event had multiValueHeaders."""
    request = _request((("Host", "h"),))
    rest = apigw_v1.build_event(
        Match(Route("http", "a", "b", "f", method="GET", path="/"), "/", {}), request, CONTEXT
    )
    v2 = apigw_v2.build_event(Match(Route("httpApi", "a", "b", "f"), "/", {}), request, CONTEXT)
    lb = alb.build_event(Match(Route("alb", "a", "b", "f"), "/", {}), request, CONTEXT)
    lb_multi = alb.build_event(
        Match(Route("alb", "a", "b", "f", multi_value_headers=True), "/", {}), request, CONTEXT
    )
    assert "httpMethod" in rest and "version" not in rest and "elb" not in rest["requestContext"]
    assert "multiValueHeaders" in rest
    assert v2["version"] == "2.0" and v2["requestContext"]["http"]["method"] == "GET"
    assert "httpMethod" not in v2
    assert "elb" in lb["requestContext"] and "multiValueHeaders" not in lb
    assert "multiValueHeaders" in lb_multi and "headers" not in lb_multi
