from __future__ import annotations

import pytest

from lamina.core.errors import InvalidRequestID, InvalidStateTransition
from lamina.core.runtime_state import RuntimeState, RuntimeStateMachine

RID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
OTHER = "00000000-0000-0000-0000-000000000000"


def _machine(state: RuntimeState) -> RuntimeStateMachine:
    """A machine driven to `state` through allowed transitions only."""
    machine = RuntimeStateMachine()
    if state is RuntimeState.INIT_FAILED:
        machine.init_error()
    if state in (RuntimeState.READY, RuntimeState.INVOKING, RuntimeState.RESPONDED):
        machine.next()
    if state in (RuntimeState.INVOKING, RuntimeState.RESPONDED):
        machine.deliver(RID)
    if state is RuntimeState.RESPONDED:
        machine.respond(RID)
    assert machine.state is state
    return machine


def _refusal(source: str, target: str) -> str:
    return (
        f"State transition from {source} to {target} failed for runtime. "
        "Error: State transition is not allowed"
    )


def test_a_new_machine_is_starting_without_an_invocation() -> None:
    machine = RuntimeStateMachine()
    assert machine.state is RuntimeState.STARTING
    assert machine.current_id is None


def test_repr_shows_state_and_request_id() -> None:
    assert repr(RuntimeStateMachine()) == "<RuntimeStateMachine STARTING >"
    assert repr(_machine(RuntimeState.INVOKING)) == f"<RuntimeStateMachine INVOKING {RID}>"


# allowed transitions


def test_next_during_init_makes_the_runtime_ready() -> None:
    machine = RuntimeStateMachine()
    machine.next()
    assert machine.state is RuntimeState.READY


def test_next_while_ready_is_allowed_again() -> None:
    machine = _machine(RuntimeState.READY)
    machine.next()
    assert machine.state is RuntimeState.READY


def test_delivering_an_invocation_records_its_request_id() -> None:
    machine = _machine(RuntimeState.READY)
    machine.deliver(RID)
    assert machine.state is RuntimeState.INVOKING
    assert machine.current_id == RID


def test_response_for_the_current_invocation() -> None:
    machine = _machine(RuntimeState.INVOKING)
    machine.respond(RID)
    assert machine.state is RuntimeState.RESPONDED


def test_error_for_the_current_invocation() -> None:
    machine = _machine(RuntimeState.INVOKING)
    machine.error(RID)
    assert machine.state is RuntimeState.RESPONDED


def test_next_after_a_response_asks_for_more_work() -> None:
    machine = _machine(RuntimeState.RESPONDED)
    machine.next()
    assert machine.state is RuntimeState.READY
    machine.deliver(OTHER)
    assert machine.current_id == OTHER


def test_init_error_during_init() -> None:
    machine = RuntimeStateMachine()
    machine.init_error()
    assert machine.state is RuntimeState.INIT_FAILED


# refused transitions: 403 InvalidStateTransition


@pytest.mark.parametrize(
    ("state", "aws_name"),
    [
        (RuntimeState.INVOKING, "RuntimeInvocationState"),
        (RuntimeState.INIT_FAILED, "RuntimeInitErrorState"),
    ],
)
def test_next_is_refused_while_invoking_or_after_init_failed(
    state: RuntimeState, aws_name: str
) -> None:
    machine = _machine(state)
    with pytest.raises(InvalidStateTransition) as caught:
        machine.next()
    assert caught.value.status == 403
    assert caught.value.error_type == "InvalidStateTransition"
    assert caught.value.message == _refusal(aws_name, "InvocationNext")
    assert machine.state is state


@pytest.mark.parametrize(
    ("state", "aws_name"),
    [
        (RuntimeState.STARTING, "RuntimeInitState"),
        (RuntimeState.INVOKING, "RuntimeInvocationState"),
        (RuntimeState.RESPONDED, "RuntimeResponseSentState"),
        (RuntimeState.INIT_FAILED, "RuntimeInitErrorState"),
    ],
)
def test_deliver_is_refused_unless_ready(state: RuntimeState, aws_name: str) -> None:
    machine = _machine(state)
    before = machine.current_id
    with pytest.raises(InvalidStateTransition) as caught:
        machine.deliver(OTHER)
    assert caught.value.message == _refusal(aws_name, "Invoke")
    assert machine.state is state
    assert machine.current_id == before


@pytest.mark.parametrize(
    ("state", "aws_name"),
    [
        (RuntimeState.READY, "RuntimeReadyState"),
        (RuntimeState.INVOKING, "RuntimeInvocationState"),
        (RuntimeState.RESPONDED, "RuntimeResponseSentState"),
        (RuntimeState.INIT_FAILED, "RuntimeInitErrorState"),
    ],
)
def test_init_error_is_refused_after_init(state: RuntimeState, aws_name: str) -> None:
    machine = _machine(state)
    with pytest.raises(InvalidStateTransition) as caught:
        machine.init_error()
    assert caught.value.status == 403
    assert caught.value.message == _refusal(aws_name, "InitErrorResponse")
    assert machine.state is state


def test_error_after_a_response_is_an_invalid_state_transition() -> None:
    machine = _machine(RuntimeState.RESPONDED)
    with pytest.raises(InvalidStateTransition) as caught:
        machine.error(RID)
    assert caught.value.status == 403
    assert caught.value.message == _refusal("RuntimeResponseSentState", "InvocationErrorResponse")
    assert machine.state is RuntimeState.RESPONDED


# refused transitions: 400 InvalidRequestID


def test_a_second_response_is_an_invalid_request_id() -> None:
    machine = _machine(RuntimeState.RESPONDED)
    with pytest.raises(InvalidRequestID) as caught:
        machine.respond(RID)
    assert caught.value.status == 400
    assert caught.value.error_type == "InvalidRequestID"
    assert caught.value.message == "Invalid request ID"
    assert machine.state is RuntimeState.RESPONDED


@pytest.mark.parametrize("action", ["respond", "error"])
def test_result_for_another_request_id_is_invalid(action: str) -> None:
    machine = _machine(RuntimeState.INVOKING)
    with pytest.raises(InvalidRequestID, match=r"^Invalid request ID$"):
        getattr(machine, action)(OTHER)
    assert machine.state is RuntimeState.INVOKING
    assert machine.current_id == RID


@pytest.mark.parametrize("action", ["respond", "error"])
@pytest.mark.parametrize("state", [RuntimeState.STARTING, RuntimeState.INIT_FAILED])
def test_result_before_any_invocation_is_invalid(action: str, state: RuntimeState) -> None:
    machine = _machine(state)
    with pytest.raises(InvalidRequestID):
        getattr(machine, action)(RID)
    assert machine.state is state


@pytest.mark.parametrize("action", ["respond", "error"])
def test_result_for_the_previous_invocation_after_next_is_invalid(action: str) -> None:
    machine = _machine(RuntimeState.RESPONDED)
    machine.next()
    with pytest.raises(InvalidRequestID):
        getattr(machine, action)(RID)
    assert machine.state is RuntimeState.READY


def test_error_for_an_unknown_id_after_a_response_is_an_invalid_request_id() -> None:
    # The id is checked first: a stranger's id is 400 even where the same id would be 403.
    machine = _machine(RuntimeState.RESPONDED)
    with pytest.raises(InvalidRequestID):
        machine.error(OTHER)
