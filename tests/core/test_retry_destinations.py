"""The invocation record destinations receive, the dead-letter message's attributes, and
how destination targets are read (reference 6)."""

from __future__ import annotations

import pytest

from lamina.core.destinations import (
    FunctionTarget,
    InvalidTarget,
    Outcome,
    QueueTarget,
    dead_letter_attributes,
    invocation_record,
    iso_millis,
    parse_target,
)
from lamina.core.retry import Condition

ERROR = b'{"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []}'
ARN = "arn:aws:lambda:us-east-1:000000000000:function:app-dev-worker:$LATEST"


def test_a_failure_record_has_aws_s_exact_shape() -> None:
    record = invocation_record(
        request_id="e4b46cbf-b738-xmpl-8880-a18cdf61200e",
        function_arn=ARN,
        condition=Condition.RETRIES_EXHAUSTED,
        invoke_count=3,
        request_payload=b'{"ORDER_IDS": ["9e07af03-ce31-4ff3-xmpl-36dce652cb4f"]}',
        outcome=Outcome(
            status_code=200, executed_version="$LATEST", function_error="Unhandled", payload=ERROR
        ),
        timestamp=1_573_755_365.568,
    )
    assert record == {
        "version": "1.0",
        "timestamp": "2019-11-14T18:16:05.568Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
            "functionArn": ARN,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": {"ORDER_IDS": ["9e07af03-ce31-4ff3-xmpl-36dce652cb4f"]},
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []},
    }
    assert list(record) == [
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    ]


def test_a_success_record_has_no_function_error_and_the_result() -> None:
    record = invocation_record(
        request_id="r",
        function_arn=ARN.replace("$LATEST", "3"),
        condition=Condition.SUCCESS,
        invoke_count=1,
        request_payload=b"{}",
        outcome=Outcome(status_code=200, executed_version="3", payload=b'"done"'),
        timestamp=0.0,
    )
    assert record["requestContext"]["condition"] == "Success"
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "3"}
    assert record["responsePayload"] == "done"
    assert record["timestamp"] == "1970-01-01T00:00:00.000Z"


def test_a_record_of_an_event_that_never_ran_says_why() -> None:
    record = invocation_record(
        request_id="r",
        function_arn=ARN,
        condition=Condition.EVENT_AGE_EXCEEDED,
        invoke_count=0,
        request_payload=b"not json",
        outcome=Outcome(
            status_code=429, error_type="TooManyRequestsException", error_message="Rate Exceeded."
        ),
        timestamp=0.0,
    )
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == "not json"
    assert record["responseContext"] == {"statusCode": 429, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {
        "errorType": "TooManyRequestsException",
        "errorMessage": "Rate Exceeded.",
    }


def test_a_null_result_is_null() -> None:
    record = invocation_record(
        request_id="r",
        function_arn=ARN,
        condition=Condition.SUCCESS,
        invoke_count=1,
        request_payload=b"{}",
        outcome=Outcome(payload=b"null"),
        timestamp=0.0,
    )
    assert record["responsePayload"] is None


def test_dead_letter_attributes_carry_the_request_id_status_and_first_kb_of_the_message() -> None:
    long_message = "é" * 1000  # 2000 bytes of UTF-8
    payload = b'{"errorType": "ValueError", "errorMessage": "' + long_message.encode() + b'"}'
    attributes = dead_letter_attributes("r-1", Outcome(function_error="Unhandled", payload=payload))
    assert attributes["RequestID"] == "r-1"
    assert attributes["ErrorCode"] == "200"
    assert attributes["ErrorMessage"] == "é" * 512
    throttled = Outcome(status_code=429, error_type="TooManyRequestsException", error_message="x")
    assert dead_letter_attributes("r-2", throttled) == {
        "RequestID": "r-2",
        "ErrorCode": "429",
        "ErrorMessage": "x",
    }


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("app-dev-audit", FunctionTarget("app-dev-audit")),
        ("app-dev-audit:live", FunctionTarget("app-dev-audit", "live")),
        (
            "arn:aws:lambda:us-east-1:000000000000:function:audit",
            FunctionTarget("audit"),
        ),
        (
            "arn:aws:lambda:us-east-1:000000000000:function:audit:$LATEST",
            FunctionTarget("audit", "$LATEST"),
        ),
        (
            "arn:aws:sqs:us-east-1:000000000000:app-dev-dlq",
            QueueTarget("arn:aws:sqs:us-east-1:000000000000:app-dev-dlq"),
        ),
    ],
)
def test_targets_are_functions_or_queues(text: str, target: object) -> None:
    assert parse_target(text) == target


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must be a function name or ARN, or a queue ARN"),
        ("arn:aws:sns:us-east-1:0:topic", "SNS destinations are not available in Lamina"),
        ("arn:aws:events:us-east-1:0:event-bus/default", "EVENTS destinations are not available"),
        ("arn:aws:s3:::bucket", "must be a function ARN or a queue ARN"),
        ("bad name!", "is not a valid function name"),
        ("fn:bad qualifier", "is not a valid qualifier"),
    ],
)
def test_other_targets_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidTarget, match=message):
        parse_target(text)


def test_iso_millis_rounds_down_to_the_millisecond() -> None:
    assert iso_millis(1_573_755_365.5689) == "2019-11-14T18:16:05.568Z"
