"""HTTP events to FastCGI params and CGI responses to results, against Bref's mapping.

The expected values are those of Bref's own FPM handler tests (`FpmHandlerTest`: the
$_SERVER an event produces) and of reference 3.5, written out in full, in order.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina.wire import alb, apigw_v1, apigw_v2
from lamina.wire.fastcgi import CgiResponse, decode_pairs
from lamina.wire.fpm_params import (
    FpmRequest,
    InvalidLambdaEvent,
    capitalize,
    http_reply,
    invocation_context,
    is_warmer,
    request_from_event,
    result,
)

SCRIPT = "/var/task/public/index.php"
CONTEXT = invocation_context("abc", 1_700_000_000_000, "arn:aws:lambda:us-east-1:1:function:f", "t")
FORM = "application/x-www-form-urlencoded"


def build(event: Any) -> FpmRequest:
    return request_from_event(event, script_filename=SCRIPT, invocation_context=CONTEXT)


def params(event: Any) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in decode_pairs(build(event).params)}


def fixed(
    method: str = "GET",
    uri: str = "/",
    *,
    port: str = "80",
    host: str = "localhost",
    protocol: str = "HTTP/1.1",
    content_type: str = FORM,
    length: int = 0,
) -> dict[str, str]:
    return {
        "GATEWAY_INTERFACE": "FastCGI/1.0",
        "REQUEST_METHOD": method,
        "REQUEST_URI": uri,
        "SCRIPT_FILENAME": SCRIPT,
        "SERVER_SOFTWARE": "bref",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": port,
        "SERVER_ADDR": "127.0.0.1",
        "SERVER_PORT": port,
        "SERVER_NAME": host,
        "SERVER_PROTOCOL": protocol,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(length),
    }


def test_the_invocation_context_is_phps_json() -> None:
    assert CONTEXT == (
        '{"awsRequestId":"abc","deadlineMs":1700000000000,'
        '"invokedFunctionArn":"arn:aws:lambda:us-east-1:1:function:f","traceId":"t"}'
    )


def test_a_simple_v1_request_in_order() -> None:
    event = {
        "version": "1.0",
        "httpMethod": "GET",
        "path": "/hello",
        "requestContext": {"protocol": "HTTP/1.1"},
    }
    got = params(event)
    assert list(got.items()) == [
        ("PATH_INFO", "/hello"),
        ("QUERY_STRING", ""),
        ("LAMBDA_INVOCATION_CONTEXT", CONTEXT),
        ("LAMBDA_REQUEST_CONTEXT", '{"protocol":"HTTP\\/1.1"}'),
        *fixed(uri="/hello").items(),
    ]
    assert build(event).shape == "v1"
    assert build(event).body == b""


def test_v1_query_string_parameters() -> None:
    got = params(
        {
            "httpMethod": "GET",
            "path": "/hello",
            "queryStringParameters": {"foo": "bar", "bim": "baz"},
        }
    )
    assert got["QUERY_STRING"] == "foo=bar&bim=baz"
    assert got["REQUEST_URI"] == "/hello?foo=bar&bim=baz"
    assert got["LAMBDA_REQUEST_CONTEXT"] == "[]"


def test_v1_arrays_in_single_value_query_parameters_stay_flat() -> None:
    got = params(
        {
            "version": "1.0",
            "httpMethod": "GET",
            "queryStringParameters": {"vars[val1]": "foo", "vars[val2][]": "bar"},
        }
    )
    assert got["QUERY_STRING"] == "vars%5Bval1%5D=foo&vars%5Bval2%5D%5B%5D=bar"
    assert (got["PATH_INFO"], got["REQUEST_URI"][:2]) == ("/", "/?")


def test_v1_multi_value_query_parameters() -> None:
    got = params(
        {
            "version": "1.0",
            "httpMethod": "GET",
            "path": "/hello",
            "multiValueQueryStringParameters": {
                "foo[]": ["bar", "baz"],
                "cards[]": ["birthday"],
                "colors[][]": ["red", "blue"],
                "shapes[a][]": ["square", "triangle"],
                "myvar": ["abc"],
            },
            "queryStringParameters": {"foo[]": "baz"},
        }
    )
    assert got["QUERY_STRING"] == (
        "foo%5B0%5D=bar&foo%5B1%5D=baz&cards%5B0%5D=birthday&colors%5B0%5D%5B0%5D=red"
        "&colors%5B1%5D%5B0%5D=blue&shapes%5Ba%5D%5B0%5D=square&shapes%5Ba%5D%5B1%5D=triangle"
        "&myvar=abc"
    )


def test_v1_values_are_decoded_then_encoded_again() -> None:
    got = params(
        {"httpMethod": "GET", "multiValueQueryStringParameters": {"q": ["a b/c~é"], "e": [""]}}
    )
    assert got["QUERY_STRING"] == "q=a+b%2Fc%7E%C3%A9&e="


def test_headers_become_http_variables() -> None:
    got = params(
        {
            "httpMethod": "GET",
            "path": "/",
            "headers": {"X-My-Header": "Hello world", "Host": "www.example.com"},
            "multiValueHeaders": {
                "X-My-Header": ["first", "Hello world"],
                "Host": ["www.example.com"],
                "X-Forwarded-Port": ["8443"],
                "Cookie": ["tz=Europe%2FParis; four=two"],
            },
        }
    )
    assert got["HTTP_X_MY_HEADER"] == "Hello world"  # the last of several values
    assert got["HTTP_HOST"] == got["SERVER_NAME"] == "www.example.com"
    assert got["HTTP_X_FORWARDED_PORT"] == got["SERVER_PORT"] == got["REMOTE_PORT"] == "8443"
    assert got["HTTP_COOKIE"] == "tz=Europe%2FParis; four=two"
    assert "HTTPS" not in got and "SCRIPT_NAME" not in got and "DOCUMENT_ROOT" not in got


def test_a_json_body_with_its_type() -> None:
    body = '"Hello world!"'
    event = {
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", "Content-Length": 14},
        "body": body,
    }
    got = params(event)
    assert got["CONTENT_TYPE"] == got["HTTP_CONTENT_TYPE"] == "application/json"
    assert got["CONTENT_LENGTH"] == got["HTTP_CONTENT_LENGTH"] == "14"
    assert build(event).body == body.encode()


def test_a_body_without_type_or_length_is_a_form() -> None:
    got = params({"httpMethod": "POST", "body": "foo=bar&bim=baz"})
    assert got["CONTENT_TYPE"] == got["HTTP_CONTENT_TYPE"] == FORM
    assert got["CONTENT_LENGTH"] == got["HTTP_CONTENT_LENGTH"] == "15"


def test_the_length_counts_bytes_and_base64_is_decoded() -> None:
    assert params({"httpMethod": "POST", "body": "Hello 🌍"})["CONTENT_LENGTH"] == "10"
    event = {
        "httpMethod": "POST",
        "isBase64Encoded": True,
        "body": base64.b64encode(b"\x89PNG\x00\xff").decode(),
        "headers": {"content-type": "image/png"},
    }
    assert build(event).body == b"\x89PNG\x00\xff"
    assert params(event)["CONTENT_LENGTH"] == "6"


def test_a_v2_request() -> None:
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/my/path",
        "rawQueryString": "parameter1=value1&parameter1=value2&a[]=1&a[]=2&sp=a%20b+c",
        "cookies": ["cookie1=a", "cookie2=b"],
        "headers": {"host": "api.example.com", "x-forwarded-port": "443", "cookie": "old"},
        "requestContext": {"http": {"method": "post", "path": "/my/path", "protocol": "HTTP/2"}},
        "body": "x=1",
        "isBase64Encoded": False,
    }
    got = params(event)
    query = "parameter1=value2&a%5B0%5D=1&a%5B1%5D=2&sp=a+b+c"
    assert list(got.items()) == [
        ("PATH_INFO", "/my/path"),
        ("QUERY_STRING", query),
        ("LAMBDA_INVOCATION_CONTEXT", CONTEXT),
        (
            "LAMBDA_REQUEST_CONTEXT",
            '{"http":{"method":"post","path":"\\/my\\/path","protocol":"HTTP\\/2"}}',
        ),
        ("HTTP_HOST", "api.example.com"),
        ("HTTP_X_FORWARDED_PORT", "443"),
        ("HTTP_COOKIE", "cookie1=a; cookie2=b"),
        ("HTTP_CONTENT_TYPE", FORM),
        ("HTTP_CONTENT_LENGTH", "3"),
        # v2 carries its protocol in requestContext.http: Bref reads requestContext.protocol
        *fixed("POST", f"/my/path?{query}", port="443", host="api.example.com", length=3).items(),
    ]
    assert build(event).shape == "v2"


def test_an_alb_request_keeps_the_raw_query() -> None:
    event = {
        "requestContext": {"elb": {"targetGroupArn": "arn:tg"}},
        "httpMethod": "GET",
        "path": "/lambda",
        "queryStringParameters": {"query": "a%20b", "list[]": "x", "plus": "1+1"},
        "headers": {"host": "lb.example.com", "x-forwarded-port": "80"},
        "body": "",
        "isBase64Encoded": False,
    }
    got = params(event)
    assert got["QUERY_STRING"] == "query=a+b&list%5B0%5D=x&plus=1+1"
    assert got["CONTENT_LENGTH"] == "0" and "HTTP_CONTENT_TYPE" not in got
    assert build(event).shape == "v1"


def test_an_alb_request_with_multi_value_headers() -> None:
    event = {
        "requestContext": {"elb": {"targetGroupArn": "arn:tg"}},
        "httpMethod": "GET",
        "path": "/",
        "multiValueQueryStringParameters": {"myKey": ["val1", "val2"], "k[]": ["1", "2"]},
        "multiValueHeaders": {"accept": ["a", "b"]},
        "body": "",
    }
    got = params(event)
    assert got["QUERY_STRING"] == "myKey=val2&k%5B0%5D=1&k%5B1%5D=2"
    assert got["HTTP_ACCEPT"] == "b"
    assert build(event).shape == "v1-multi"


def test_php_quirks_kept() -> None:
    # An unclosed `[` drops the whole query string, as Bref's parser does.
    assert params({"version": "2.0", "rawQueryString": "a[b=1&c=2", **_V2})["QUERY_STRING"] == ""
    # A body of "0" is empty to PHP: no default content headers.
    assert "HTTP_CONTENT_TYPE" not in params({"httpMethod": "POST", "body": "0"})
    # `(int)` of a port that is not a number.
    assert params({"httpMethod": "GET", "headers": {"X-Forwarded-Port": "x"}})["SERVER_PORT"] == "0"


_V2 = {"requestContext": {"http": {"method": "GET"}}, "rawPath": "/"}


@pytest.mark.parametrize("event", [None, [], {"Records": []}, {"requestContext": {}}, "text"])
def test_events_that_are_not_http(event: Any) -> None:
    with pytest.raises(InvalidLambdaEvent, match="API Gateway or ALB"):
        build(event)


def test_the_warmer() -> None:
    assert is_warmer({"warmer": True}) and not is_warmer({"warmer": 1}) and not is_warmer([])


# responses

CGI = CgiResponse(
    404,
    [
        ("X-Powered-By", "PHP/8.2"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Content-type", "text/html; charset=UTF-8"),
        ("x-multi", "1"),
        ("X-Multi", "2"),
    ],
    b"<h1>gone</h1>",
)


def test_capitalization() -> None:
    assert [capitalize(n) for n in ("content-type", "x-powered-by", "etag", "a  b")] == [
        "Content-Type",
        "X-Powered-By",
        "Etag",
        "A--B",
    ]


def test_a_v1_result_keeps_the_last_value() -> None:
    assert result(CGI, "v1", binary_responses=False) == {
        "isBase64Encoded": False,
        "statusCode": 404,
        "headers": {
            "X-Powered-By": "PHP/8.2",
            "Set-Cookie": "b=2",
            "Content-Type": "text/html; charset=UTF-8",
            "X-Multi": "2",  # `X-Multi` replaced `x-multi`'s values (array_change_key_case)
        },
        "body": "<h1>gone</h1>",
    }


def test_a_multi_value_result() -> None:
    got = result(CGI, "v1-multi", binary_responses=False)
    assert got["multiValueHeaders"] == {
        "X-Powered-By": ["PHP/8.2"],
        "Set-Cookie": ["a=1", "b=2"],
        "Content-Type": ["text/html; charset=UTF-8"],
        "X-Multi": ["2"],
    }


def test_a_v2_result_moves_cookies_out() -> None:
    cgi = CgiResponse(200, [("Vary", "a"), ("Vary", "b"), ("Set-Cookie", "s=1")], b"ok")
    assert result(cgi, "v2", binary_responses=False) == {
        "cookies": ["s=1"],
        "isBase64Encoded": False,
        "statusCode": 200,
        "headers": {"Vary": "a, b"},
        "body": "ok",
    }
    assert result(CgiResponse(200, [], b""), "v2", binary_responses=False)["headers"] == {}


def test_binary_bodies() -> None:
    png = CgiResponse(200, [("Content-Type", "image/png")], b"\x89PNG\r\n\xff")
    got = result(png, "v1", binary_responses=False)
    assert (got["isBase64Encoded"], base64.b64decode(got["body"])) == (True, png.body)
    text = result(CGI, "v2", binary_responses=True)
    assert (text["isBase64Encoded"], base64.b64decode(text["body"])) == (True, CGI.body)


# the gateway's shortcut answers what the JSON result would have answered

header_names = st.sampled_from(
    ["Content-Type", "content-type", "Set-Cookie", "set-cookie", "X-A", "x-a", "Vary", "Connection"]
)
cgi_responses = st.builds(
    CgiResponse,
    st.integers(100, 599),
    st.lists(st.tuples(header_names, st.from_regex(r"[ -~]{0,12}", fullmatch=True)), max_size=8),
    st.binary(max_size=64),
)


@given(cgi_responses, st.sampled_from(["v1", "v1-multi", "v2"]))
def test_http_reply_matches_the_json_path(cgi: CgiResponse, shape: Any) -> None:
    payload = orjson.dumps(result(cgi, shape, binary_responses=False))
    via_json = apigw_v2.to_reply(payload) if shape == "v2" else apigw_v1.to_reply(payload)
    direct = http_reply(cgi, shape, default_content_type=True)
    assert (direct.status, direct.headers, direct.body) == (
        via_json.status,
        via_json.headers,
        via_json.body,
    )
    multi = shape == "v1-multi"
    if shape != "v2":
        via_alb = alb.to_reply(payload, multi_value_headers=multi)
        direct = http_reply(cgi, shape, default_content_type=False)
        assert (direct.headers, direct.body) == (via_alb.headers, via_alb.body)
