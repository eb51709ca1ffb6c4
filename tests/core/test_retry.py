"""Lambda's async retry policy as pure decisions, walked through with a fake clock (plain
numbers: epoch seconds)."""

from __future__ import annotations

import pytest

from lamina.core.retry import (
    Condition,
    EventInvokeConfig,
    GiveUp,
    Retry,
    after_error,
    after_throttle,
    expired,
    retry_delay,
    throttle_delay,
)

T0 = 1_700_000_000.0
DEFAULT = EventInvokeConfig()


def test_the_defaults_are_lambda_s() -> None:
    assert (
        EventInvokeConfig(
            maximum_retry_attempts=2,
            maximum_event_age=21_600,
            on_success=None,
            on_failure=None,
            dead_letter=None,
        )
        == DEFAULT
    )
    assert DEFAULT.problems() == []


def test_retries_wait_about_one_then_two_minutes() -> None:
    assert [retry_delay(60.0, n) for n in range(2)] == [60.0, 120.0]
    assert [retry_delay(0.2, n) for n in range(2)] == [0.2, 0.4]


def test_throttles_back_off_exponentially_from_one_second_to_five_minutes() -> None:
    assert [throttle_delay(n) for n in range(1, 12)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        64.0,
        128.0,
        256.0,
        300.0,
        300.0,
    ]
    assert throttle_delay(10_000) == 300.0


def test_a_failing_event_is_tried_three_times_then_retries_are_exhausted() -> None:
    clock = T0
    tries = [clock]
    attempts = 0
    while True:
        attempts += 1
        decision = after_error(DEFAULT, attempts, T0, clock, 60.0)
        if isinstance(decision, GiveUp):
            break
        clock = decision.at
        tries.append(clock)
    assert tries == [T0, T0 + 60, T0 + 180]
    assert decision == GiveUp(Condition.RETRIES_EXHAUSTED)
    assert attempts == 3


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_maximum_retry_attempts_counts_the_retries_after_the_first_try(retries: int) -> None:
    config = EventInvokeConfig(maximum_retry_attempts=retries)
    decisions = [after_error(config, n, T0, T0, 60.0) for n in range(1, 4)]
    assert [isinstance(d, Retry) for d in decisions] == [n <= retries for n in range(1, 4)]


def test_a_retry_that_would_start_past_the_maximum_age_gives_up_at_once() -> None:
    config = EventInvokeConfig(maximum_event_age=100)
    assert after_error(config, 1, T0, T0 + 30, 60.0) == Retry(T0 + 90)
    # The second retry would wait 120 s more: past 100 s of age.
    assert after_error(config, 2, T0, T0 + 90, 60.0) == GiveUp(Condition.EVENT_AGE_EXCEEDED)


def test_throttles_are_retried_until_the_maximum_age() -> None:
    config = EventInvokeConfig(maximum_event_age=60)
    clock, throttles = T0, 0
    waits: list[float] = []
    while True:
        throttles += 1
        decision = after_throttle(config, throttles, T0, clock)
        if isinstance(decision, GiveUp):
            break
        waits.append(decision.at - clock)
        clock = decision.at
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]  # 31 s; the next 32 s would pass 60 s
    assert decision == GiveUp(Condition.EVENT_AGE_EXCEEDED)


def test_with_the_default_age_throttles_are_retried_for_six_hours() -> None:
    clock, throttles = T0, 0
    while True:
        throttles += 1
        decision = after_throttle(DEFAULT, throttles, T0, clock)
        if isinstance(decision, GiveUp):
            break
        clock = decision.at
    assert 21_600 - 300 < clock - T0 <= 21_600
    assert throttles == 80  # 9 growing waits (511 s), then 5-minute waits


def test_expired_is_strictly_past_the_maximum_age() -> None:
    config = EventInvokeConfig(maximum_event_age=60)
    assert not expired(config, T0, T0 + 60)
    assert expired(config, T0, T0 + 60.001)


@pytest.mark.parametrize(
    ("config", "problems"),
    [
        (
            EventInvokeConfig(maximum_retry_attempts=3),
            ["MaximumRetryAttempts = 3: must be between 0 and 2"],
        ),
        (
            EventInvokeConfig(maximum_retry_attempts=-1, maximum_event_age=59),
            [
                "MaximumRetryAttempts = -1: must be between 0 and 2",
                "MaximumEventAgeInSeconds = 59: must be between 60 and 21600",
            ],
        ),
        (
            EventInvokeConfig(maximum_event_age=21_601),
            ["MaximumEventAgeInSeconds = 21601: must be between 60 and 21600"],
        ),
        (EventInvokeConfig(maximum_retry_attempts=0, maximum_event_age=60), []),
    ],
)
def test_config_bounds(config: EventInvokeConfig, problems: list[str]) -> None:
    assert config.problems() == problems
