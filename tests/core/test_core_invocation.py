from __future__ import annotations

import orjson
import pytest

from lamina.core.invocation import (
    MAX_ASYNC_PAYLOAD,
    MAX_PAYLOAD,
    MAX_RUNTIME_PAYLOAD,
    InvocationResult,
    Outcome,
    error_payload,
    exit_description,
    invalid_entrypoint,
    response_too_large,
    runtime_exited,
    timed_out,
)

RID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def _body(result: InvocationResult) -> dict[str, object]:
    body = orjson.loads(result.payload)
    assert isinstance(body, dict)
    return body


def test_payload_limits() -> None:
    assert MAX_PAYLOAD == 6 * 1024 * 1024
    assert MAX_RUNTIME_PAYLOAD == 6_291_556
    assert MAX_ASYNC_PAYLOAD == 1024 * 1024


def test_error_payload_is_lambdas_json_shape() -> None:
    assert error_payload("Runtime.Unknown", 'say "hi"') == (
        b'{"errorType":"Runtime.Unknown","errorMessage":"say \\"hi\\""}'
    )


@pytest.mark.parametrize(
    ("timeout", "wording"),
    [(3, "3.00"), (900, "900.00"), (1.5, "1.50"), (0.5, "0.50"), (2.999, "3.00")],
)
def test_timeout_payload_uses_two_decimals(timeout: float, wording: str) -> None:
    result = timed_out(RID, timeout)
    assert result.outcome is Outcome.TIMEOUT
    assert result.content_type == "application/json"
    assert _body(result) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {RID} Error: Task timed out after {wording} seconds",
    }


def test_runtime_exit_with_status_1() -> None:
    result = runtime_exited(RID, 1)
    assert result.outcome is Outcome.CRASH
    assert _body(result) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {RID} Error: Runtime exited with error: exit status 1",
    }


def test_runtime_exit_with_status_0_gives_no_reason() -> None:
    assert _body(runtime_exited(RID, 0)) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {RID} Error: Runtime exited without providing a reason",
    }


def test_runtime_killed_by_sigkill() -> None:
    assert _body(runtime_exited(RID, -9)) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {RID} Error: Runtime exited with error: signal: killed",
    }


@pytest.mark.parametrize(
    ("returncode", "description"),
    [
        (1, "exit status 1"),
        (2, "exit status 2"),
        (255, "exit status 255"),
        (-9, "signal: killed"),
        (-15, "signal: terminated"),
        (-6, "signal: aborted"),
        (-11, "signal: segmentation fault"),
        (-7, "signal: 7"),
    ],
)
def test_exit_description_words_it_as_go_does(returncode: int, description: str) -> None:
    assert exit_description(returncode) == description


def test_invalid_entrypoint_lists_where_it_looked() -> None:
    result = invalid_entrypoint(RID, ["/var/task/bootstrap", "/opt/bootstrap"])
    assert result.outcome is Outcome.CRASH
    assert _body(result) == {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": (
            f"RequestId: {RID} Error: Couldn't find valid bootstrap(s): "
            "[/var/task/bootstrap /opt/bootstrap]"
        ),
    }


def test_response_too_large() -> None:
    result = response_too_large()
    assert result.outcome is Outcome.ERROR
    assert _body(result) == {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": (
            "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
        ),
    }


def test_function_error_is_unhandled_for_every_failure() -> None:
    assert InvocationResult(Outcome.SUCCESS, b"{}").function_error is None
    for outcome in (Outcome.ERROR, Outcome.TIMEOUT, Outcome.CRASH):
        assert InvocationResult(outcome, b"{}").function_error == "Unhandled"
    assert timed_out(RID, 3).function_error == "Unhandled"
    assert runtime_exited(RID, 1).function_error == "Unhandled"
    assert response_too_large().function_error == "Unhandled"


def test_result_keeps_the_content_type_it_was_given() -> None:
    result = InvocationResult(Outcome.SUCCESS, b"\x00\x01", "application/unknown")
    assert result.content_type == "application/unknown"
    assert result.payload == b"\x00\x01"
