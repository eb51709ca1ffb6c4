from __future__ import annotations

import pytest

from lamina.core.clock import FakeClock
from lamina.core.errors import TooManyRequestsException
from lamina.core.scheduling import (
    RATE_EXCEEDED,
    Ledger,
    choose_evictions,
    eviction_order,
    expired,
)

RESERVED_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_REASON = "ConcurrentInvocationLimitExceeded"


def _throttled(ledger: Ledger, function: str) -> TooManyRequestsException:
    with pytest.raises(TooManyRequestsException) as caught:
        ledger.admit(function)
    return caught.value


# Ledger: unreserved pool


def test_admit_and_finish_count_in_flight_invocations() -> None:
    ledger = Ledger(account_limit=10, memory_budget_mb=1024)
    ledger.admit("api")
    ledger.admit("api")
    ledger.admit("worker")
    assert ledger.in_flight == {"api": 2, "worker": 1}
    assert ledger.unreserved_in_flight == 3
    ledger.finish("api")
    assert ledger.in_flight == {"api": 1, "worker": 1}
    ledger.finish("api")
    ledger.finish("worker")
    assert ledger.in_flight == {}
    assert ledger.unreserved_in_flight == 0


def test_unreserved_functions_share_the_account_limit() -> None:
    ledger = Ledger(account_limit=2, memory_budget_mb=1024)
    ledger.admit("a")
    ledger.admit("b")
    error = _throttled(ledger, "c")
    assert error.status == 429
    assert error.error_type == "TooManyRequestsException"
    assert error.reason == ACCOUNT_REASON
    assert error.message == RATE_EXCEEDED == "Rate Exceeded."
    assert ledger.in_flight == {"a": 1, "b": 1}
    assert ledger.unreserved_in_flight == 2


def test_finish_frees_room_in_the_unreserved_pool() -> None:
    ledger = Ledger(account_limit=1, memory_budget_mb=1024)
    ledger.admit("a")
    _throttled(ledger, "b")
    ledger.finish("a")
    ledger.admit("b")
    assert ledger.in_flight == {"b": 1}


def test_finish_without_admit_does_not_go_negative() -> None:
    ledger = Ledger(account_limit=1, memory_budget_mb=1024)
    ledger.finish("ghost")
    assert ledger.in_flight == {}
    assert ledger.unreserved_in_flight == 0
    ledger.admit("a")
    _throttled(ledger, "b")


# Ledger: reserved concurrency


def test_reserved_function_is_capped_at_its_reservation() -> None:
    ledger = Ledger(account_limit=10, memory_budget_mb=1024)
    ledger.set_reservation("api", 2)
    ledger.admit("api")
    ledger.admit("api")
    error = _throttled(ledger, "api")
    assert error.reason == RESERVED_REASON
    assert error.message == RATE_EXCEEDED
    assert ledger.in_flight == {"api": 2}


def test_reserved_function_does_not_use_the_unreserved_pool() -> None:
    ledger = Ledger(account_limit=10, memory_budget_mb=1024)
    ledger.set_reservation("api", 3)
    for _ in range(3):
        ledger.admit("api")
    assert ledger.unreserved_in_flight == 0
    ledger.finish("api")
    assert ledger.unreserved_in_flight == 0
    assert ledger.in_flight == {"api": 2}


def test_reserved_function_runs_even_when_the_unreserved_pool_is_full() -> None:
    ledger = Ledger(account_limit=3, memory_budget_mb=1024)
    ledger.set_reservation("api", 1)
    ledger.admit("other")
    ledger.admit("other")
    assert _throttled(ledger, "other").reason == ACCOUNT_REASON
    ledger.admit("api")
    assert ledger.in_flight == {"other": 2, "api": 1}


def test_reservations_shrink_the_unreserved_pool() -> None:
    ledger = Ledger(account_limit=10, memory_budget_mb=1024)
    assert ledger.unreserved_limit == 10
    ledger.set_reservation("a", 4)
    ledger.set_reservation("b", 3)
    assert ledger.unreserved_limit == 3
    for _ in range(3):
        ledger.admit("c")
    assert _throttled(ledger, "d").reason == ACCOUNT_REASON


def test_reserved_zero_disables_the_function() -> None:
    ledger = Ledger(account_limit=10, memory_budget_mb=1024)
    ledger.set_reservation("off", 0)
    assert _throttled(ledger, "off").reason == RESERVED_REASON
    assert ledger.in_flight == {}
    assert ledger.unreserved_limit == 10
    ledger.admit("on")


def test_removing_a_reservation_returns_the_function_to_the_shared_pool() -> None:
    ledger = Ledger(account_limit=5, memory_budget_mb=1024)
    ledger.set_reservation("api", 0)
    assert ledger.unreserved_limit == 5
    ledger.set_reservation("api", 2)
    assert ledger.unreserved_limit == 3
    ledger.set_reservation("api", None)
    assert ledger.reserved == {}
    assert ledger.unreserved_limit == 5
    ledger.admit("api")
    assert ledger.unreserved_in_flight == 1
    ledger.set_reservation("never-set", None)  # removing an absent reservation is harmless
    assert ledger.reserved == {}


def test_changing_a_reservation_replaces_it() -> None:
    ledger = Ledger(account_limit=10, memory_budget_mb=1024)
    ledger.set_reservation("api", 1)
    ledger.admit("api")
    assert _throttled(ledger, "api").reason == RESERVED_REASON
    ledger.set_reservation("api", 2)
    ledger.admit("api")
    assert ledger.in_flight == {"api": 2}
    assert ledger.unreserved_limit == 8


# memory


@pytest.mark.parametrize(
    ("in_use", "wanted", "shortfall"),
    [(0, 512, 0), (512, 512, 0), (768, 512, 256), (1024, 128, 128), (1200, 128, 304)],
)
def test_memory_shortfall(in_use: int, wanted: int, shortfall: int) -> None:
    ledger = Ledger(account_limit=10, memory_budget_mb=1024, memory_in_use_mb=in_use)
    assert ledger.memory_shortfall(wanted) == shortfall


def test_eviction_order_is_least_recently_used_first() -> None:
    assert eviction_order([("b", 20.0), ("a", 10.0), ("c", 30.0)]) == ["a", "b", "c"]
    assert eviction_order([]) == []


def test_choose_evictions_takes_least_recently_used_first() -> None:
    idle = [("new", 30.0, 512), ("old", 10.0, 512), ("mid", 20.0, 512)]
    assert choose_evictions(idle, 256) == ["old"]
    assert choose_evictions(idle, 600) == ["old", "mid"]


def test_choose_evictions_stops_as_soon_as_enough_is_freed() -> None:
    idle = [("a", 1.0, 128), ("b", 2.0, 128), ("c", 3.0, 1024), ("d", 4.0, 128)]
    assert choose_evictions(idle, 256) == ["a", "b"]
    assert choose_evictions(idle, 257) == ["a", "b", "c"]


def test_choose_evictions_with_nothing_to_free_evicts_nothing() -> None:
    assert choose_evictions([("a", 1.0, 128)], 0) == []
    assert choose_evictions([], 0) == []


def test_choose_evictions_is_none_when_all_idle_memory_is_not_enough() -> None:
    idle = [("a", 1.0, 128), ("b", 2.0, 256)]
    assert choose_evictions(idle, 385) is None
    assert choose_evictions(idle, 384) == ["a", "b"]
    assert choose_evictions([], 1) is None


def test_expired_with_explicit_times() -> None:
    idle = [("old", 100.0), ("edge", 400.0), ("fresh", 450.0)]
    assert expired(idle, now=1000.0, keep_alive=600.0) == ["old", "edge"]
    assert expired(idle, now=399.0, keep_alive=600.0) == []
    assert expired([], now=1000.0, keep_alive=600.0) == []


def test_expired_follows_a_fake_clock() -> None:
    clock = FakeClock()
    keep_alive = 600.0
    idle = [("a", clock.monotonic())]
    clock.advance(300)
    idle.append(("b", clock.monotonic()))
    clock.advance(299.5)
    assert expired(idle, clock.monotonic(), keep_alive) == []
    clock.advance(0.5)
    assert expired(idle, clock.monotonic(), keep_alive) == ["a"]
    clock.advance(300)
    assert expired(idle, clock.monotonic(), keep_alive) == ["a", "b"]


# the pool is settled by how an invocation was admitted, not by the reservation at finish


def test_reserving_while_in_flight_does_not_leak_the_unreserved_pool() -> None:
    ledger = Ledger(account_limit=5, memory_budget_mb=1024)
    ledger.admit("api")  # admitted from the unreserved pool
    ledger.set_reservation("api", 2)  # PutFunctionConcurrency during the invocation
    ledger.finish("api")
    assert ledger.in_flight == {}
    assert ledger.unreserved_in_flight == 0


def test_unreserving_while_in_flight_does_not_free_another_functions_slot() -> None:
    ledger = Ledger(account_limit=102, memory_budget_mb=1024)
    ledger.set_reservation("api", 2)
    ledger.admit("api")  # admitted against its reservation
    for _ in range(100):
        ledger.admit("other")  # the unreserved pool (102 - 2) is now full
    ledger.set_reservation("api", None)  # DeleteFunctionConcurrency during the invocation
    ledger.finish("api")
    assert ledger.in_flight == {"other": 100}
    assert ledger.unreserved_in_flight == 100
