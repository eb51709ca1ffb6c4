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


# Lamina's runtime channel
#
# Lamina's built-in runtimes ask to switch their Runtime API connection to a leaner framing
# with their first `next` (`Upgrade: lamina-runtime/1`, answered `101 Switching Protocols`).
# A frame is a kind byte, the lengths of its head and body (4 bytes each, big-endian), a head
# of `Name: value\r\n` lines and the body. The runtime sends NEXT, or RESPONSE / ERROR (head:
# request id and content type), each of which asks for the next invocation as well; Lamina
# answers with INVOCATION (head: the headers of a `next` answer) or FAILURE (head: the
# status of the HTTP answer it stands for, body: its body). One exchange per invocation and
# no HTTP to parse: custom runtimes never ask and see the Runtime API as it is.

CHANNEL = "lamina-runtime/1"
FRAME_HEAD = 9
NEXT, RESPONSE, ERROR = b"N", b"R", b"E"  # from the runtime
INVOCATION, FAILURE = b"I", b"X"  # from Lamina
CHANNEL_REQUEST_ID = "lambda-runtime-aws-request-id"  # the head of RESPONSE / ERROR, parsed
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "
    + CHANNEL.encode()
    + b"\r\n\r\n"
)


def frame(kind: bytes, head: bytes, body: bytes) -> bytes:
    return kind + len(head).to_bytes(4, "big") + len(body).to_bytes(4, "big") + head + body


def frame_sizes(data: bytes | bytearray) -> tuple[bytes, int, int]:
    """Kind, head length and body length of the frame `data` starts with (>= 9 bytes)."""
    return bytes(data[:1]), int.from_bytes(data[1:5], "big"), int.from_bytes(data[5:9], "big")


def invocation_frame(invocation: Invocation) -> bytes:
    """What `next` answers, as a frame: the same headers, Content-Type included."""
    lines = [("Content-Type", "application/json"), *next_headers(invocation)]
    head = "".join(f"{name}: {value}\r\n" for name, value in lines).encode("latin-1")
    return frame(INVOCATION, head, invocation.payload)


def failure_frame(status: int, body: bytes) -> bytes:
    return frame(FAILURE, b"Status: %d\r\n" % status, body)


def parse_head(head: bytes) -> dict[str, str]:
    """`Name: value` lines (latin-1, as HTTP headers are read) with lower-case names."""
    fields = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name:
            fields[name.strip().lower()] = value.strip()
    return fields
