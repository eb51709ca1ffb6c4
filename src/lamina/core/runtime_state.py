"""The Runtime API state machine of one execution environment.

    STARTING --next--> READY --(invocation delivered)--> INVOKING
    STARTING --init/error--> INIT_FAILED
    INVOKING --response|error(id)--> RESPONDED --next--> READY ...

Rules (reference 1.2): `next` while an invocation is outstanding, `init/error` after init and
`error` after a response are refused with 403 InvalidStateTransition; a response or error for
an id that is not the current invocation, or a second response, is 400 InvalidRequestID.
The default is to refuse: every transition not listed here raises. Checks happen before any
state changes, because transitions are irreversible.
"""

from __future__ import annotations

from enum import StrEnum

from lamina.core.errors import InvalidRequestID, InvalidStateTransition


class RuntimeState(StrEnum):
    STARTING = "STARTING"  # process started, no `next` yet (the init phase)
    READY = "READY"  # asked for work with `next`
    INVOKING = "INVOKING"  # an event was handed out, no result yet
    RESPONDED = "RESPONDED"  # result posted, the runtime will ask for more
    INIT_FAILED = "INIT_FAILED"


class RuntimeStateMachine:
    __slots__ = ("current_id", "state")

    def __init__(self) -> None:
        self.state = RuntimeState.STARTING
        self.current_id: str | None = None

    def __repr__(self) -> str:
        return f"<RuntimeStateMachine {self.state} {self.current_id or ''}>"

    def next(self) -> None:
        if self.state is RuntimeState.INVOKING:
            raise _refused(self.state, "InvocationNext")
        if self.state is RuntimeState.INIT_FAILED:
            raise _refused(self.state, "InvocationNext")
        self.state = RuntimeState.READY

    def deliver(self, request_id: str) -> None:
        if self.state is not RuntimeState.READY:
            raise _refused(self.state, "Invoke")
        self.state = RuntimeState.INVOKING
        self.current_id = request_id

    def respond(self, request_id: str) -> None:
        self._check_id(request_id)
        if self.state is RuntimeState.RESPONDED:
            raise InvalidRequestID("Invalid request ID")
        self.state = RuntimeState.RESPONDED

    def error(self, request_id: str) -> None:
        self._check_id(request_id)
        if self.state is RuntimeState.RESPONDED:
            raise _refused(self.state, "InvocationErrorResponse")
        self.state = RuntimeState.RESPONDED

    def init_error(self) -> None:
        if self.state is not RuntimeState.STARTING:
            raise _refused(self.state, "InitErrorResponse")
        self.state = RuntimeState.INIT_FAILED

    def _check_id(self, request_id: str) -> None:
        if request_id != self.current_id or self.state not in (
            RuntimeState.INVOKING,
            RuntimeState.RESPONDED,
        ):
            raise InvalidRequestID("Invalid request ID")


_AWS_STATE_NAMES = {
    RuntimeState.STARTING: "RuntimeInitState",
    RuntimeState.READY: "RuntimeReadyState",
    RuntimeState.INVOKING: "RuntimeInvocationState",
    RuntimeState.RESPONDED: "RuntimeResponseSentState",
    RuntimeState.INIT_FAILED: "RuntimeInitErrorState",
}


def _refused(state: RuntimeState, target: str) -> InvalidStateTransition:
    return InvalidStateTransition(
        f"State transition from {_AWS_STATE_NAMES[state]} to {target} failed for runtime. "
        "Error: State transition is not allowed"
    )
