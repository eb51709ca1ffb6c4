from __future__ import annotations

import logging
import re

import orjson
import pytest

from lamina.core import errors
from lamina.http.errors import render, render_unexpected

RID = "11111111-2222-3333-4444-555555555555"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_render_user_error() -> None:
    response = render(
        errors.ResourceNotFoundException(
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:foo"
        ),
        RID,
    )
    assert response.status == 404
    assert response.content_type == "application/json"
    assert response.headers == [
        ("x-amzn-ErrorType", "ResourceNotFoundException"),
        ("x-amzn-RequestId", RID),
    ]
    assert orjson.loads(response.body) == {
        "Type": "User",
        "Message": "Function not found: arn:aws:lambda:us-east-1:000000000000:function:foo",
    }


@pytest.mark.parametrize(
    ("error", "status", "fault"),
    [
        (errors.InvalidParameterValueException, 400, "User"),
        (errors.InvalidRequestContentException, 400, "User"),
        (errors.ResourceConflictException, 409, "User"),
        (errors.RequestTooLargeException, 413, "User"),
        (errors.UnsupportedMediaTypeException, 415, "User"),
        (errors.InvalidZipFileException, 502, "User"),
        (errors.UnknownOperationException, 404, "User"),
        (errors.ServiceException, 500, "Service"),
    ],
)
def test_render_uses_the_errors_code_status_and_fault(
    error: type[errors.LaminaError], status: int, fault: str
) -> None:
    response = render(error("bad thing"), RID)
    assert response.status == status
    assert dict(response.headers)["x-amzn-ErrorType"] == error.error_type
    assert orjson.loads(response.body) == {"Type": fault, "Message": "bad thing"}
    assert "Retry-After" not in dict(response.headers)


def test_render_base_error_is_a_service_exception() -> None:
    response = render(errors.LaminaError("x"), RID)
    assert response.status == 500
    assert dict(response.headers)["x-amzn-ErrorType"] == "ServiceException"


def test_render_throttle_has_reason_lower_case_message_and_retry_after() -> None:
    error = errors.TooManyRequestsException(
        "Rate Exceeded.", reason="ReservedFunctionConcurrentInvocationLimitExceeded"
    )
    response = render(error, RID)
    assert response.status == 429
    assert response.headers == [
        ("x-amzn-ErrorType", "TooManyRequestsException"),
        ("x-amzn-RequestId", RID),
        ("Retry-After", "1"),
    ]
    assert orjson.loads(response.body) == {
        "Type": "User",
        "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
        "message": "Rate Exceeded.",
    }


def test_render_throttle_wire_bytes() -> None:
    error = errors.TooManyRequestsException(
        "Rate Exceeded.", reason="ConcurrentInvocationLimitExceeded"
    )
    body = (
        b'{"Type":"User","Reason":"ConcurrentInvocationLimitExceeded","message":"Rate Exceeded."}'
    )
    assert render(error, RID).encode(keep_alive=True) == (
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        b"x-amzn-ErrorType: TooManyRequestsException\r\n"
        b"x-amzn-RequestId: " + RID.encode() + b"\r\nRetry-After: 1\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


def test_render_makes_up_a_request_id_when_none_is_given() -> None:
    headers = dict(render(errors.ResourceNotFoundException("x")).headers)
    assert UUID.fullmatch(headers["x-amzn-RequestId"])


def test_render_unexpected_hides_the_details_and_logs_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "password=hunter2 in /srv/app/config.py"
    with caplog.at_level(logging.ERROR, logger="lamina.http.errors"):
        response = render_unexpected(RuntimeError(secret), RID)
    assert response.status == 500
    assert response.headers == [
        ("x-amzn-ErrorType", "ServiceException"),
        ("x-amzn-RequestId", RID),
    ]
    assert orjson.loads(response.body) == {
        "Type": "Service",
        "Message": f"Internal error (request {RID})",
    }
    assert b"hunter2" not in response.encode(keep_alive=True)
    (record,) = caplog.records
    assert RID in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[1] is not None
    assert str(record.exc_info[1]) == secret


def test_render_unexpected_makes_up_a_request_id() -> None:
    response = render_unexpected(ValueError("x"))
    request_id = dict(response.headers)["x-amzn-RequestId"]
    assert UUID.fullmatch(request_id)
    assert request_id.encode() in response.body
