"""An invocation and its outcome, and the error payloads Lambda itself produces.

The payloads below are what the caller of `Invoke` receives (with `X-Amz-Function-Error:
Unhandled`) when the platform, not the function, ended the invocation. The wording is
Lambda's own (reference 1.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import orjson

MAX_PAYLOAD = 6 * 1024 * 1024  # sync request and response limit (Invoke API)
MAX_RUNTIME_PAYLOAD = MAX_PAYLOAD + 100  # what the Runtime API accepts (RIE's interop limit)
MAX_ASYNC_PAYLOAD = 1024 * 1024


class Outcome(StrEnum):
    SUCCESS = "success"
    ERROR = "error"  # the function reported an error (or init failed)
    TIMEOUT = "timeout"
    CRASH = "crash"  # the runtime process exited or never started


@dataclass(slots=True)
class Invocation:
    request_id: str
    payload: bytes
    invoked_arn: str
    deadline_ms: int  # epoch milliseconds
    trace_id: str
    client_context: str | None = None  # decoded JSON text
    cognito_identity: str | None = None


@dataclass(frozen=True, slots=True)
class InvocationResult:
    outcome: Outcome
    payload: bytes
    content_type: str = "application/json"

    @property
    def function_error(self) -> str | None:
        return None if self.outcome is Outcome.SUCCESS else "Unhandled"


def error_payload(error_type: str, message: str) -> bytes:
    return orjson.dumps({"errorType": error_type, "errorMessage": message})


def timed_out(request_id: str, timeout_s: float) -> InvocationResult:
    message = f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"
    return InvocationResult(Outcome.TIMEOUT, error_payload("Sandbox.Timedout", message))


def exit_description(returncode: int) -> str:
    """How Lambda words a runtime's exit: `exit status 1`, `signal: killed`."""
    if returncode < 0:
        names = {9: "killed", 15: "terminated", 6: "aborted", 11: "segmentation fault"}
        return f"signal: {names.get(-returncode, str(-returncode))}"
    return f"exit status {returncode}"


def runtime_exited(request_id: str, returncode: int | None) -> InvocationResult:
    if returncode is None or returncode == 0:
        detail = "Runtime exited without providing a reason"
    else:
        detail = f"Runtime exited with error: {exit_description(returncode)}"
    message = f"RequestId: {request_id} Error: {detail}"
    return InvocationResult(Outcome.CRASH, error_payload("Runtime.ExitError", message))


def invalid_entrypoint(request_id: str, looked_at: list[str]) -> InvocationResult:
    message = (
        f"RequestId: {request_id} Error: Couldn't find valid bootstrap(s): [{' '.join(looked_at)}]"
    )
    return InvocationResult(Outcome.CRASH, error_payload("Runtime.InvalidEntrypoint", message))


def response_too_large() -> InvocationResult:
    message = (
        "Response payload size exceeded maximum allowed payload size "
        f"({MAX_RUNTIME_PAYLOAD} bytes)."
    )
    return InvocationResult(Outcome.ERROR, error_payload("Function.ResponseSizeTooLarge", message))
