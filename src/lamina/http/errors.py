"""The one place where Lamina's errors become control API responses, in the protocols its
clients speak: the Lambda REST API (`render`), the SSM JSON 1.1 API (`render_json_protocol`)
and SQS's query-compatible JSON 1.0 API (`render_query_compatible`). The gateway answers as
API Gateway/ALB do (`http/gateway.py`) and the Runtime API with its own error bodies
(`http/runtime_api.py`).

For the Lambda API, botocore reads the error code from `x-amzn-ErrorType` and the message
from `Message` or `message`. Platform faults never leak details: the message is generic
and the error is logged with its request id.
"""

from __future__ import annotations

import logging
import uuid

import orjson

from lamina.core.errors import LaminaError
from lamina.core.queues import SqsError
from lamina.http.server import Response

log = logging.getLogger(__name__)


def render(exc: LaminaError, request_id: str | None = None) -> Response:
    request_id = request_id or str(uuid.uuid4())
    body: dict[str, object] = {"Type": exc.fault}
    if exc.reason is not None:
        body["Reason"] = exc.reason
        body["message"] = exc.message
    else:
        body["Message"] = exc.message
    headers = [("x-amzn-ErrorType", exc.error_type), ("x-amzn-RequestId", request_id)]
    if exc.status == 429:
        headers.append(("Retry-After", "1"))
    return Response(exc.status, orjson.dumps(body), headers)


def render_unexpected(exc: BaseException, request_id: str | None = None) -> Response:
    request_id = request_id or str(uuid.uuid4())
    log.error("internal error (request %s)", request_id, exc_info=exc)
    body = orjson.dumps({"Type": "Service", "Message": f"Internal error (request {request_id})"})
    headers = [("x-amzn-ErrorType", "ServiceException"), ("x-amzn-RequestId", request_id)]
    return Response(500, body, headers)


# AWS's JSON protocol (the SSM API): botocore reads the code from the body's `__type` and the
# message from `message`; every caller fault is a 400, a platform fault a 500.
JSON_1_1 = "application/x-amz-json-1.1"


def render_json_protocol(exc: LaminaError, request_id: str) -> Response:
    if exc.fault == "Service":
        code, status = "InternalServerError", 500
    else:
        code, status = exc.error_type, 400
    body = orjson.dumps({"__type": code, "message": exc.message})
    return Response(status, body, [("x-amzn-RequestId", request_id)], content_type=JSON_1_1)


def render_json_protocol_unexpected(exc: BaseException, request_id: str) -> Response:
    log.error("internal error (request %s)", request_id, exc_info=exc)
    body = {"__type": "InternalServerError", "message": f"Internal error (request {request_id})"}
    return Response(
        500, orjson.dumps(body), [("x-amzn-RequestId", request_id)], content_type=JSON_1_1
    )


# SQS: AWS's JSON 1.0 protocol in "query compatible" mode. botocore takes the modelled
# exception from `__type` (after the `#`) and the code it shows, SQS's old Query code, from
# `x-amzn-query-error: <code>;<Sender|Receiver>`.
JSON_1_0 = "application/x-amz-json-1.0"


def render_query_compatible(exc: LaminaError, request_id: str) -> Response:
    if exc.fault == "Service":
        return _query_compatible(500, "InternalError", "InternalError", exc.message, request_id)
    if isinstance(exc, SqsError):
        return _query_compatible(exc.status, exc.error_type, exc.code, exc.message, request_id)
    return _query_compatible(400, exc.error_type, exc.error_type, exc.message, request_id)


def render_query_compatible_unexpected(exc: BaseException, request_id: str) -> Response:
    log.error("internal error (request %s)", request_id, exc_info=exc)
    message = f"Internal error (request {request_id})"
    return _query_compatible(500, "InternalError", "InternalError", message, request_id)


def _query_compatible(
    status: int, error_type: str, query_code: str, message: str, request_id: str
) -> Response:
    fault = "Receiver" if status >= 500 else "Sender"
    body = orjson.dumps({"__type": f"com.amazonaws.sqs#{error_type}", "message": message})
    headers = [("x-amzn-RequestId", request_id), ("x-amzn-query-error", f"{query_code};{fault}")]
    return Response(status, body, headers, content_type=JSON_1_0)
