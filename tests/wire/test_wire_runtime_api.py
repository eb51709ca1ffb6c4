from __future__ import annotations

import re

import orjson

from lamina.core.invocation import Invocation
from lamina.wire import runtime_api as wire

RID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:app-dev-api:live"
TRACE = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=0"


def _invocation(**extra: str | None) -> Invocation:
    return Invocation(
        request_id=RID,
        payload=b'{"hello":"world"}',
        invoked_arn=ARN,
        deadline_ms=1_542_409_706_888,
        trace_id=TRACE,
        **extra,  # type: ignore[arg-type]
    )


def test_next_headers_without_optional_ones() -> None:
    assert wire.next_headers(_invocation()) == [
        ("Lambda-Runtime-Aws-Request-Id", RID),
        ("Lambda-Runtime-Deadline-Ms", "1542409706888"),
        ("Lambda-Runtime-Invoked-Function-Arn", ARN),
        ("Lambda-Runtime-Trace-Id", TRACE),
    ]


def test_next_headers_with_client_context_and_cognito_identity() -> None:
    context = '{"client":{"app_title":"t"},"custom":{},"env":{}}'
    identity = '{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}'
    headers = wire.next_headers(_invocation(client_context=context, cognito_identity=identity))
    assert headers[4:] == [
        ("Lambda-Runtime-Client-Context", context),
        ("Lambda-Runtime-Cognito-Identity", identity),
    ]


def test_next_headers_skip_empty_optional_values() -> None:
    headers = dict(wire.next_headers(_invocation(client_context="", cognito_identity="")))
    assert "Lambda-Runtime-Client-Context" not in headers
    assert "Lambda-Runtime-Cognito-Identity" not in headers


def test_next_headers_only_cognito_identity() -> None:
    identity = '{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}'
    headers = wire.next_headers(_invocation(cognito_identity=identity))
    assert [name for name, _ in headers][4:] == ["Lambda-Runtime-Cognito-Identity"]


def test_trace_id_shape() -> None:
    random_hex = "0123456789abcdef" * 3  # 48 hex digits, more than needed
    value = wire.trace_id(random_hex, 1_542_409_703.9)
    assert value == ("Root=1-5bef4de7-0123456789abcdef01234567;Parent=89abcdef01234567;Sampled=0")
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", value)


def test_trace_id_time_is_zero_padded() -> None:
    value = wire.trace_id("f" * 40, 255.0)
    assert value.startswith("Root=1-000000ff-")


def test_error_body() -> None:
    body = wire.error_body("InvalidRequestID", "Invalid request ID")
    assert orjson.loads(body) == {
        "errorType": "InvalidRequestID",
        "errorMessage": "Invalid request ID",
    }
    assert body == b'{"errorType":"InvalidRequestID","errorMessage":"Invalid request ID"}'


def test_accepted_body_and_prefix() -> None:
    assert wire.ACCEPTED == b'{"status":"OK"}'
    assert wire.PREFIX == "/2018-06-01/runtime/"


# Lamina's runtime channel


def test_a_frame_is_kind_lengths_head_body() -> None:
    data = wire.frame(wire.RESPONSE, b"A: 1\r\n", b"body")
    assert data == b"R\x00\x00\x00\x06\x00\x00\x00\x04A: 1\r\nbody"
    assert wire.frame_sizes(data) == (b"R", 6, 4)


def test_an_invocation_frame_carries_what_next_answers() -> None:
    data = wire.invocation_frame(_invocation(client_context='{"custom":{}}'))
    kind, head_size, body_size = wire.frame_sizes(data)
    head = data[wire.FRAME_HEAD : wire.FRAME_HEAD + head_size]
    assert kind == wire.INVOCATION
    assert data[wire.FRAME_HEAD + head_size :] == b'{"hello":"world"}'
    assert body_size == len(b'{"hello":"world"}')
    assert wire.parse_head(head) == {
        "content-type": "application/json",
        "lambda-runtime-aws-request-id": RID,
        "lambda-runtime-deadline-ms": "1542409706888",
        "lambda-runtime-invoked-function-arn": ARN,
        "lambda-runtime-trace-id": TRACE,
        "lambda-runtime-client-context": '{"custom":{}}',
    }


def test_a_failure_frame_carries_the_status() -> None:
    data = wire.failure_frame(413, b"{}")
    assert data == b"X\x00\x00\x00\x0d\x00\x00\x00\x02Status: 413\r\n{}"


def test_parse_head_lower_cases_names_and_strips_values() -> None:
    assert wire.parse_head(b"Content-Type:  text/plain \r\nX-A: b: c\r\n") == {
        "content-type": "text/plain",
        "x-a": "b: c",
    }
    assert wire.parse_head(b"") == {}
