"""Where an asynchronous invocation's outcome goes, and in what shape (reference 6).

Destinations (`onSuccess`, `onFailure`) receive the invocation record; the legacy dead-letter
queue (`onError`) receives the original event with the message attributes `RequestID`,
`ErrorCode` and `ErrorMessage`. A target is another function (invoked asynchronously with
the record as its event) or a Lamina queue (sent as one message). Lamina has one account, so
a queue ARN is matched by its name alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

import orjson

from lamina.core.retry import Condition
from lamina.core.validation import FUNCTION_NAME

RECORD_VERSION = "1.0"
DLQ_MESSAGE_BYTES = 1024  # ErrorMessage is cut to its first 1 KB

_QUALIFIER = re.compile(r"\$LATEST|[0-9]+|[a-zA-Z0-9_-]{1,128}")


@dataclass(frozen=True, slots=True)
class FunctionTarget:
    name: str
    qualifier: str | None = None


@dataclass(frozen=True, slots=True)
class QueueTarget:
    queue: str  # a name or an ARN, as written


Target = FunctionTarget | QueueTarget
Kind = Literal["on_success", "on_failure", "dead_letter"]


class InvalidTarget(ValueError):
    pass


def parse_target(text: str) -> Target:
    """A function name, `name:qualifier` or function ARN; or a queue ARN."""
    if not isinstance(text, str) or not text:
        raise InvalidTarget(f"{text!r}: must be a function name or ARN, or a queue ARN")
    if text.startswith("arn:"):
        parts = text.split(":")
        service = parts[2] if len(parts) > 2 else ""
        if service == "sqs" and len(parts) == 6 and parts[5]:
            return QueueTarget(text)
        if service == "lambda" and len(parts) in (7, 8) and parts[5] == "function":
            return _function(text, parts[6], parts[7] if len(parts) == 8 else None)
        if service in ("sns", "events"):
            raise InvalidTarget(
                f"{text!r}: {service.upper()} destinations are not available in Lamina; "
                "use a function or a queue (arn:aws:sqs:<region>:<account>:<name>)"
            )
        raise InvalidTarget(f"{text!r}: must be a function ARN or a queue ARN")
    name, _, qualifier = text.partition(":")
    return _function(text, name, qualifier or None)


def _function(text: str, name: str, qualifier: str | None) -> FunctionTarget:
    if not FUNCTION_NAME.fullmatch(name):
        raise InvalidTarget(f"{text!r}: {name!r} is not a valid function name")
    if qualifier is not None and not _QUALIFIER.fullmatch(qualifier):
        raise InvalidTarget(f"{text!r}: {qualifier!r} is not a valid qualifier")
    return FunctionTarget(name, qualifier)


class RequestContext(TypedDict):
    requestId: str
    functionArn: str
    condition: str
    approximateInvokeCount: int


class ResponseContext(TypedDict, total=False):
    statusCode: int
    executedVersion: str
    functionError: str


class InvocationRecord(TypedDict):
    version: str
    timestamp: str
    requestContext: RequestContext
    requestPayload: Any
    responseContext: ResponseContext
    responsePayload: Any


@dataclass(frozen=True, slots=True)
class Outcome:
    """The last attempt of an event, as the record reports it."""

    status_code: int = 200
    executed_version: str = "$LATEST"
    function_error: str | None = None  # "Unhandled" when the function failed
    payload: bytes | None = None  # the function's response or error payload
    error_type: str | None = None  # a platform error (throttled, not found) when no payload
    error_message: str | None = None


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: Condition,
    invoke_count: int,
    request_payload: bytes,
    outcome: Outcome,
    timestamp: float,
) -> InvocationRecord:
    response: ResponseContext = {
        "statusCode": outcome.status_code,
        "executedVersion": outcome.executed_version,
    }
    if outcome.function_error:
        response["functionError"] = outcome.function_error
    if outcome.payload is not None:
        response_payload = _json_or_text(outcome.payload)
    elif outcome.error_type is not None:
        response_payload = {"errorType": outcome.error_type, "errorMessage": outcome.error_message}
    else:
        response_payload = None
    return {
        "version": RECORD_VERSION,
        "timestamp": iso_millis(timestamp),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition.value,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(request_payload),
        "responseContext": response,
        "responsePayload": response_payload,
    }


def dead_letter_attributes(request_id: str, outcome: Outcome) -> dict[str, str]:
    """The message attributes of a dead-letter message (reference 6)."""
    message = outcome.error_message or ""
    if outcome.payload is not None:
        parsed = _json_or_text(outcome.payload)
        if isinstance(parsed, dict) and isinstance(parsed.get("errorMessage"), str):
            message = parsed["errorMessage"]
        elif not message:
            message = outcome.payload.decode(errors="replace")
    cut = message.encode()[:DLQ_MESSAGE_BYTES].decode(errors="ignore")
    return {"RequestID": request_id, "ErrorCode": str(outcome.status_code), "ErrorMessage": cut}


def iso_millis(epoch: float) -> str:
    """`2019-11-14T18:16:05.568Z`, the record's timestamp form."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _json_or_text(data: bytes) -> Any:
    if not data:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data.decode(errors="replace")
