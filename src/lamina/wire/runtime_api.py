"""Wire shapes of the Runtime API (`/2018-06-01/runtime/...`, reference 1.2)."""

from __future__ import annotations

import orjson

from lamina.core.invocation import Invocation

PREFIX = "/2018-06-01/runtime/"
ACCEPTED = b'{"status":"OK"}'

REQUEST_ID = "Lambda-Runtime-Aws-Request-Id"
DEADLINE_MS = "Lambda-Runtime-Deadline-Ms"
FUNCTION_ARN = "Lambda-Runtime-Invoked-Function-Arn"
TRACE_ID = "Lambda-Runtime-Trace-Id"
CLIENT_CONTEXT = "Lambda-Runtime-Client-Context"
COGNITO_IDENTITY = "Lambda-Runtime-Cognito-Identity"
ERROR_TYPE = "lambda-runtime-function-error-type"  # request header, as parsed (lower case)
RESPONSE_MODE = "lambda-runtime-function-response-mode"


def next_headers(invocation: Invocation) -> list[tuple[str, str]]:
    """Headers of a `next` answer; optional ones only when they have a value (as RIE does)."""
    headers = [
        (REQUEST_ID, invocation.request_id),
        (DEADLINE_MS, str(invocation.deadline_ms)),
        (FUNCTION_ARN, invocation.invoked_arn),
        (TRACE_ID, invocation.trace_id),
    ]
    if invocation.client_context:
        headers.append((CLIENT_CONTEXT, invocation.client_context))
    if invocation.cognito_identity:
        headers.append((COGNITO_IDENTITY, invocation.cognito_identity))
    return headers


def error_body(error_type: str, message: str) -> bytes:
    return orjson.dumps({"errorType": error_type, "errorMessage": message})


def trace_id(random_hex: str, epoch_s: float) -> str:
    """An X-Ray trace header: `Root=1-<8 hex time>-<24 hex>;Parent=<16 hex>;Sampled=0`."""
    return f"Root=1-{int(epoch_s):08x}-{random_hex[:24]};Parent={random_hex[24:40]};Sampled=0"
