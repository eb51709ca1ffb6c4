"""Scheduling decisions: who may run, who is evicted, who is reaped. Pure; no clocks read here.

Concurrency follows Lambda (reference 6): concurrency is the number of in-flight
invocations. A function with reserved concurrency `r` may have at most `r` in flight and its
reservation is carved out of the account limit; every other function shares what is left
(the unreserved pool). Past either bound a synchronous invoke is throttled.

Provisioned concurrency (reference 6) counts against the same limits: a function's total
provisioned concurrency must fit in its reservation; for a function without one, it is
carved out of the unreserved pool, and the function's first in-flight invocations (up to
that total) run on its own share rather than on the shared pool.

Memory is Lamina's own bound: the memory sizes of all live execution environments must fit in
the node's budget. Idle environments are evicted (least recently used first) to make room; if
that is not enough the invoke is throttled too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from lamina.core.errors import TooManyRequestsException

T = TypeVar("T")

RATE_EXCEEDED = "Rate Exceeded."


@dataclass(slots=True)
class Ledger:
    account_limit: int
    memory_budget_mb: int
    reserved: dict[str, int] = field(default_factory=dict)  # function name -> reservation
    # function name -> provisioned concurrency of all its versions and aliases
    provisioned: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    unreserved_in_flight: int = 0
    memory_in_use_mb: int = 0
    # Which pool an in-flight invocation was admitted from: a reservation may change while it
    # runs, and it must be given back to the pool it came from.
    _unreserved_by_function: dict[str, int] = field(default_factory=dict)

    @property
    def unreserved_limit(self) -> int:
        return self.account_limit - sum(self.reserved.values()) - self.carved_out()

    def carved_out(self, excluding: str | None = None) -> int:
        """Provisioned concurrency of functions without a reservation (their own share)."""
        return sum(
            n
            for name, n in self.provisioned.items()
            if name not in self.reserved and name != excluding
        )

    def set_reservation(self, function: str, reserved: int | None) -> None:
        if reserved is None:
            self.reserved.pop(function, None)
        else:
            self.reserved[function] = reserved

    def set_provisioned(self, function: str, total: int) -> None:
        if total <= 0:
            self.provisioned.pop(function, None)
        else:
            self.provisioned[function] = total

    def admit(self, function: str) -> None:
        """Count one more in-flight invocation of `function`, or raise 429."""
        running = self.in_flight.get(function, 0)
        reserved = self.reserved.get(function)
        if reserved is not None:
            if running >= reserved:
                raise TooManyRequestsException(
                    RATE_EXCEEDED, reason="ReservedFunctionConcurrentInvocationLimitExceeded"
                )
        else:
            shared = self._unreserved_by_function.get(function, 0)
            # Up to its provisioned concurrency a function runs on its own share; past it,
            # on the shared pool.
            if running - shared >= self.provisioned.get(function, 0):
                if self.unreserved_in_flight >= self.unreserved_limit:
                    raise TooManyRequestsException(
                        RATE_EXCEEDED, reason="ConcurrentInvocationLimitExceeded"
                    )
                self.unreserved_in_flight += 1
                self._unreserved_by_function[function] = shared + 1
        self.in_flight[function] = running + 1

    def finish(self, function: str) -> None:
        running = self.in_flight.get(function, 0)
        if running <= 1:
            self.in_flight.pop(function, None)
        else:
            self.in_flight[function] = running - 1
        unreserved = self._unreserved_by_function.get(function, 0)
        if unreserved > 0:
            self.unreserved_in_flight -= 1
            if unreserved == 1:
                del self._unreserved_by_function[function]
            else:
                self._unreserved_by_function[function] = unreserved - 1

    def memory_shortfall(self, memory_mb: int) -> int:
        """MB that must be freed before an environment of `memory_mb` fits (0 if it fits)."""
        return max(0, self.memory_in_use_mb + memory_mb - self.memory_budget_mb)


def eviction_order(idle: Iterable[tuple[T, float]]) -> list[T]:
    """Idle environments (with their last-used time), least recently used first."""
    return [item for item, _ in sorted(idle, key=lambda pair: pair[1])]


def choose_evictions(idle: Iterable[tuple[T, float, int]], shortfall_mb: int) -> list[T] | None:
    """The fewest LRU-first idle environments (item, last used, MB) that free `shortfall_mb`.

    None when even evicting every idle environment would not be enough.
    """
    chosen: list[T] = []
    freed = 0
    for item, _, memory in sorted(idle, key=lambda triple: triple[1]):
        if freed >= shortfall_mb:
            break
        chosen.append(item)
        freed += memory
    return chosen if freed >= shortfall_mb else None


def expired(idle: Iterable[tuple[T, float]], now: float, keep_alive: float) -> list[T]:
    """Idle environments whose keep-alive has run out at monotonic time `now`."""
    return [item for item, last_used in idle if now - last_used >= keep_alive]


def expired_each(idle: Iterable[tuple[T, float, float]], now: float) -> list[T]:
    """Idle environments (item, idle since, its own keep-alive window) whose window has run
    out at monotonic time `now`: a keep-alive policy may give each a different one."""
    return [item for item, since, window in idle if now - since >= window]
