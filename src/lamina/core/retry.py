"""Lambda's retry contract for asynchronous invocations (reference 6), as pure decisions.

| What happened                  | An attempt | Next                                       |
|--------------------------------|------------|--------------------------------------------|
| success                        | yes        | done: the on-success destination           |
| function error, timeout, crash | yes        | retry after base, then 2 x base (base 60 s,|
|                                |            | `LAMINA_ASYNC_RETRY_DELAY`)                |
| ... after maximumRetryAttempts | -          | give up: RetriesExhausted                  |
| throttle, platform error       | no         | retry after 1, 2, 4 ... 300 s (capped)     |
| reserved concurrency 0         | no         | give up at once: RetriesExhausted          |
| next try past maximumEventAge  | -          | give up: EventAgeExceeded                  |

Giving up means the on-failure destination, the dead-letter queue, or both; an event with
neither is kept as dead (it can be re-driven). A retry that could only start after the
event's maximum age gives up at once rather than waiting to expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

RETRY_ATTEMPTS = (0, 2)
EVENT_AGE = (60, 21_600)  # seconds
DEFAULT_RETRY_ATTEMPTS = 2
DEFAULT_EVENT_AGE = 21_600
DEFAULT_RETRY_DELAY = 60.0  # Lambda: about a minute, then about two
THROTTLE_BACKOFF = (1.0, 300.0)  # Lambda: exponential from 1 s up to 5 minutes


class Condition(StrEnum):
    """`requestContext.condition` of the invocation record."""

    SUCCESS = "Success"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    EVENT_AGE_EXCEEDED = "EventAgeExceeded"


@dataclass(frozen=True, slots=True)
class EventInvokeConfig:
    """A function's `FunctionEventInvokeConfig` (serverless.yml `maximumRetryAttempts`,
    `maximumEventAge`, `destinations`, `onError`). Targets are function names or ARNs, or
    queue ARNs (`arn:aws:sqs:...`); see `core.destinations`."""

    maximum_retry_attempts: int = DEFAULT_RETRY_ATTEMPTS
    maximum_event_age: int = DEFAULT_EVENT_AGE
    on_success: str | None = None
    on_failure: str | None = None
    dead_letter: str | None = None

    def problems(self) -> list[str]:
        found: list[str] = []
        retries = self.maximum_retry_attempts
        if not isinstance(retries, int) or not RETRY_ATTEMPTS[0] <= retries <= RETRY_ATTEMPTS[1]:
            found.append(f"MaximumRetryAttempts = {retries!r}: must be between 0 and 2")
        age = self.maximum_event_age
        if not isinstance(age, int) or not EVENT_AGE[0] <= age <= EVENT_AGE[1]:
            found.append(f"MaximumEventAgeInSeconds = {age!r}: must be between 60 and 21600")
        return found


@dataclass(frozen=True, slots=True)
class Retry:
    at: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class GiveUp:
    condition: Condition


Decision = Retry | GiveUp


def retry_delay(base: float, retries_done: int) -> float:
    """The wait before retry number `retries_done + 1`: base, then twice base."""
    return base * 2.0**retries_done


def throttle_delay(throttles: int) -> float:
    """The wait after the `throttles`-th throttle in a row (1-based): 1 s, 2 s, 4 s ... 300 s."""
    low, high = THROTTLE_BACKOFF
    return min(high, low * 2.0 ** max(0, min(throttles - 1, 16)))


def expired(config: EventInvokeConfig, enqueued_at: float, now: float) -> bool:
    return now - enqueued_at > config.maximum_event_age


def after_error(
    config: EventInvokeConfig, attempts: int, enqueued_at: float, now: float, base_delay: float
) -> Decision:
    """The function failed its `attempts`-th invocation (timeout and crash included)."""
    if attempts > config.maximum_retry_attempts:
        return GiveUp(Condition.RETRIES_EXHAUSTED)
    at = now + retry_delay(base_delay, attempts - 1)
    return _unless_too_old(config, enqueued_at, at)


def after_throttle(
    config: EventInvokeConfig, throttles: int, enqueued_at: float, now: float
) -> Decision:
    """The `throttles`-th throttle or platform error in a row (not an attempt)."""
    return _unless_too_old(config, enqueued_at, now + throttle_delay(throttles))


def _unless_too_old(config: EventInvokeConfig, enqueued_at: float, at: float) -> Decision:
    if expired(config, enqueued_at, at):
        return GiveUp(Condition.EVENT_AGE_EXCEEDED)
    return Retry(at)
