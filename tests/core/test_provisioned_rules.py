"""Provisioned concurrency's rules (pure) and how the ledger counts it: a function's own
share of the unreserved pool, the per-environment keep-alive windows of the reaper."""

from __future__ import annotations

import pytest

from lamina.core import provisioned as rules
from lamina.core.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    TooManyRequestsException,
)
from lamina.core.scheduling import Ledger, expired_each
from lamina.core.versions import Alias

# the ledger


def test_provisioned_concurrency_is_carved_out_of_the_unreserved_pool() -> None:
    ledger = Ledger(account_limit=10, memory_budget_mb=1024)
    ledger.set_reservation("reserved", 3)
    ledger.set_provisioned("warm", 2)
    ledger.set_provisioned("reserved", 1)  # inside its reservation: not carved again

    assert ledger.unreserved_limit == 10 - 3 - 2
    assert ledger.carved_out() == 2
    assert ledger.carved_out(excluding="warm") == 0
    ledger.set_provisioned("warm", 0)
    assert ledger.provisioned == {"reserved": 1}
    assert ledger.unreserved_limit == 7


def test_a_function_runs_on_its_own_share_first_then_on_the_shared_pool() -> None:
    ledger = Ledger(account_limit=4, memory_budget_mb=1024)
    ledger.set_provisioned("warm", 2)  # unreserved pool: 2

    ledger.admit("warm")
    ledger.admit("warm")
    assert ledger.unreserved_in_flight == 0  # both on its own share
    ledger.admit("other")
    ledger.admit("warm")  # spills over into the shared pool
    assert ledger.unreserved_in_flight == 2
    with pytest.raises(TooManyRequestsException) as caught:
        ledger.admit("other")
    assert caught.value.reason == "ConcurrentInvocationLimitExceeded"

    ledger.finish("warm")  # gives the shared slot back first
    assert ledger.unreserved_in_flight == 1
    ledger.admit("other")
    for name in ("warm", "warm", "other", "other"):
        ledger.finish(name)
    assert (ledger.in_flight, ledger.unreserved_in_flight) == ({}, 0)


def test_expired_each_uses_every_environment_s_own_window() -> None:
    idle = [("a", 100.0, 60.0), ("b", 100.0, 600.0), ("c", 150.0, 10.0)]

    assert expired_each(idle, 159.9) == []
    assert expired_each(idle, 160.0) == ["a", "c"]
    assert expired_each(idle, 700.0) == ["a", "b", "c"]


# configurations


def test_requested_executions_must_be_a_positive_integer() -> None:
    assert rules.requested(3) == 3
    for bad in (0, -1, True, "2", 1.5, None):
        with pytest.raises(InvalidParameterValueException) as caught:
            rules.requested(bad)
        assert caught.value.message == (
            f"ProvisionedConcurrentExecutions = {bad!r}: must be an integer of at least 1"
        )


def test_the_qualifier_must_be_a_version_or_an_alias() -> None:
    assert rules.qualifier("live") == "live"
    with pytest.raises(InvalidParameterValueException, match="alias or a published version"):
        rules.qualifier("$LATEST")
    with pytest.raises(InvalidParameterValueException, match="Qualifier is required"):
        rules.qualifier(None)


def test_status_is_ready_once_every_environment_is_initialised() -> None:
    assert rules.status(2, 0, None) == ("IN_PROGRESS", None)
    assert rules.status(2, 1, "init failed: ValueError") == ("FAILED", "init failed: ValueError")
    assert rules.status(2, 2, "init failed: ValueError") == ("READY", None)


def test_a_version_is_provisioned_directly_or_through_aliases_not_both() -> None:
    aliases = [Alias("fn", "live", "3"), Alias("fn", "dev", "$LATEST")]

    rules.check_target("fn", "live", aliases, {})
    rules.check_target("fn", "4", aliases, {"live": 1})
    with pytest.raises(ResourceConflictException, match="already Provisioned version"):
        rules.check_target("fn", "live", aliases, {"3": 2})
    with pytest.raises(ResourceConflictException, match="pointed by a Provisioned Concurrency"):
        rules.check_target("fn", "3", aliases, {"live": 1})
    with pytest.raises(InvalidParameterValueException, match="unpublished function versions"):
        rules.check_target("fn", "dev", aliases, {})


def test_provisioned_concurrency_fits_in_the_reservation() -> None:
    rules.check_limits("fn", 5, 0, reserved=5, unreserved_without=0)
    with pytest.raises(InvalidParameterValueException) as caught:
        rules.check_limits("fn", 6, 5, reserved=5, unreserved_without=1000)
    assert caught.value.message.startswith(
        "Requested Provisioned Concurrency should not be greater than the "
        "reservedConcurrentExecution for function: fn would have 6"
    )


def test_without_a_reservation_the_unreserved_pool_keeps_100() -> None:
    rules.check_limits("fn", 900, 0, reserved=None, unreserved_without=1000)
    with pytest.raises(InvalidParameterValueException) as caught:
        rules.check_limits("fn", 901, 0, reserved=None, unreserved_without=1000)
    assert "below its minimum value of [100]: 901 provisioned for fn would leave 99" in (
        caught.value.message
    )
    # Asking for less is always allowed, even below the minimum.
    rules.check_limits("fn", 950, 960, reserved=None, unreserved_without=1000)
