"""Keep-alive policies on synthetic timelines: the fixed window, and the hybrid histogram
policy's rules (Shahrad et al., ATC 2020) with their margins and fallbacks."""

from __future__ import annotations

import pytest

from lamina.core.keepalive import (
    Decision,
    FixedKeepAlive,
    HybridKeepAlive,
    IdleTimeHistogram,
    make_policy,
)

MINUTE = 60.0


def replay(policy: HybridKeepAlive, idle_times: list[float], key: str = "fn") -> Decision:
    """Invocations of `key` (each instantaneous) separated by `idle_times`; returns the
    decision taken at the end of the last one."""
    now = 1000.0
    policy.invocation_started(key, now)
    decision = policy.invocation_ended(key, now)
    for idle in idle_times:
        now += idle
        policy.invocation_started(key, now)
        decision = policy.invocation_ended(key, now)
    return decision


# fixed


def test_fixed_keeps_every_environment_for_the_same_window() -> None:
    policy = FixedKeepAlive(600.0)
    policy.invocation_started("fn", 0.0)
    decision = policy.invocation_ended("fn", 5.0)

    assert decision == Decision(600.0, 0.0, "fixed")
    assert (decision.keep_this(), decision.pre_warm_at(5.0), decision.unload_at(5.0)) == (
        600.0,
        None,
        605.0,
    )
    assert make_policy("fixed", 30.0).invocation_ended("x", 0.0).keep_alive == 30.0


def test_unknown_policy_names_are_refused_with_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"'lru': must be one of fixed, hybrid"):
        make_policy("lru", 600.0)
    with pytest.raises(ValueError, match="keep_alive = -1"):
        FixedKeepAlive(-1)


# the histogram


def test_histogram_bins_idle_times_and_counts_those_beyond_its_range() -> None:
    histogram = IdleTimeHistogram(bin_width=60.0, bins=4)
    for idle in (0.0, 59.9, 60.0, 239.9, 240.0, 10_000.0, -3.0):
        histogram.add(idle)

    assert histogram.counts == [3, 1, 0, 1]  # a negative idle time is 0
    assert (histogram.in_range, histogram.out_of_bounds, histogram.samples) == (5, 2, 7)
    assert histogram.out_of_bounds_rate() == pytest.approx(2 / 7)
    assert histogram.percentile_bin(0.05) == 0
    assert histogram.percentile_bin(0.60) == 0
    assert histogram.percentile_bin(0.61) == 1
    assert histogram.percentile_bin(0.99) == 3


def test_cv_of_bin_counts_is_high_for_concentrated_idle_times_and_low_for_spread_ones() -> None:
    concentrated = IdleTimeHistogram(60.0, 240)
    spread = IdleTimeHistogram(60.0, 240)
    for _ in range(50):
        concentrated.add(600.0)
    for minute in range(240):
        spread.add(minute * 60.0 + 1)

    assert concentrated.cv() == pytest.approx(239**0.5)  # all in one of 240 bins
    assert spread.cv() == 0.0  # one in every bin
    assert IdleTimeHistogram(60.0, 240).cv() == 0.0


# hybrid: the representative case


def test_a_periodic_function_is_unloaded_and_pre_warmed_just_before_its_next_invocation() -> None:
    policy = HybridKeepAlive(600.0)
    decision = replay(policy, [10 * MINUTE] * 12)

    # Every idle time is in the 10-minute bin: head = its lower edge less 10 %, tail = its
    # upper edge plus 10 %; the keep-alive window runs from the pre-warm to the tail.
    assert decision.rule == "histogram"
    assert decision.pre_warm == pytest.approx(600 * 0.9)
    assert decision.unload_at(0.0) == pytest.approx(660 * 1.1)
    assert decision.keep_alive == pytest.approx(660 * 1.1 - 540)
    assert decision.keep_this() == 0.0  # this environment is unloaded now
    assert decision.pre_warm_at(100.0) == pytest.approx(640.0)


def test_head_and_tail_are_the_5th_and_99th_percentiles() -> None:
    policy = HybridKeepAlive(600.0)
    # 1 of 20 idle times at 2 minutes, the rest at 10: the 5th percentile is the 2-minute bin.
    decision = replay(policy, [2 * MINUTE + 5] + [10 * MINUTE + 5] * 19)

    assert decision.rule == "histogram"
    assert decision.pre_warm == pytest.approx(120 * 0.9)
    assert decision.unload_at(0.0) == pytest.approx(660 * 1.1)


def test_a_frequently_invoked_function_stays_loaded_for_its_tail_without_pre_warming() -> None:
    policy = HybridKeepAlive(600.0)
    decision = replay(policy, [20.0, 35.0, 50.0, 10.0] * 5)

    assert decision.rule == "histogram"
    assert decision.pre_warm == 0.0
    assert decision.keep_this() == pytest.approx(60 * 1.1)  # the first bin's end, + 10 %
    assert decision.pre_warm_at(0.0) is None


def test_bin_width_and_range_are_parameters() -> None:
    policy = HybridKeepAlive(600.0, bin_width=10.0, histogram_range=600.0, min_samples=3)
    decision = replay(policy, [95.0, 95.0, 95.0])

    assert policy.bins == 60
    assert decision.pre_warm == pytest.approx(90 * 0.9)
    assert decision.unload_at(0.0) == pytest.approx(100 * 1.1)


# hybrid: the fallbacks


def test_too_few_idle_times_fall_back_to_the_fixed_keep_alive() -> None:
    policy = HybridKeepAlive(600.0, min_samples=10)
    decision = replay(policy, [10 * MINUTE] * 9)

    assert decision == Decision(600.0, 0.0, "few-samples")
    assert replay(policy, [10 * MINUTE]).rule == "histogram"  # the tenth


def test_idle_times_spread_over_the_range_keep_the_environment_for_the_whole_range() -> None:
    policy = HybridKeepAlive(600.0)
    decision = replay(policy, [m * 4 * MINUTE + 1 for m in range(60)])

    assert policy.histogram("fn") is not None
    assert policy.histogram("fn").cv() < 2.0  # type: ignore[union-attr]
    assert decision == Decision(4 * 3600.0, 0.0, "uncertain")
    custom = HybridKeepAlive(600.0, uncertain_keep_alive=900.0)
    assert replay(custom, [m * 4 * MINUTE + 1 for m in range(60)]).keep_alive == 900.0


def test_mostly_out_of_bounds_idle_times_fall_back_to_the_fixed_keep_alive() -> None:
    policy = HybridKeepAlive(600.0)
    decision = replay(policy, [5 * 3600.0] * 6 + [10 * MINUTE] * 5)

    assert decision == Decision(600.0, 0.0, "out-of-bounds")
    assert policy.statistics()["decisions"] == {"few-samples": 10, "out-of-bounds": 2}


# hybrid: what counts as an idle time


def test_only_gaps_between_an_end_and_the_next_start_are_idle_times() -> None:
    policy = HybridKeepAlive(600.0)
    policy.invocation_started("fn", 0.0)
    policy.invocation_started("fn", 1.0)  # concurrent with the first: no idle time
    policy.invocation_ended("fn", 5.0)
    policy.invocation_ended("fn", 6.0)  # the last end counts
    policy.invocation_started("fn", 126.0)  # 120 s after it
    policy.invocation_started("fn", 127.0)  # a second start in the same gap records nothing
    policy.invocation_ended("fn", 130.0)

    histogram = policy.histogram("fn")
    assert histogram is not None
    assert (histogram.samples, histogram.counts[2]) == (1, 1)


def test_keys_are_independent_and_forget_drops_one() -> None:
    policy = HybridKeepAlive(600.0, min_samples=2)
    replay(policy, [10 * MINUTE] * 3, key="a")
    replay(policy, [30.0] * 3, key="b")

    assert policy.invocation_ended("a", 0.0).pre_warm == pytest.approx(540.0)
    assert policy.invocation_ended("b", 0.0).pre_warm == 0.0
    policy.forget("a")
    assert policy.histogram("a") is None
    assert policy.statistics()["functions"] == 1


def test_bad_parameters_are_refused_naming_each() -> None:
    with pytest.raises(ValueError) as caught:
        HybridKeepAlive(-1.0, bin_width=0.0, head=0.5, tail=0.4, margin=1.0, min_samples=0)
    message = str(caught.value)
    for part in ("fallback_keep_alive = -1.0", "bin_width = 0.0", "head = 0.5", "margin = 1.0"):
        assert part in message
    assert "min_samples = 0" in message
