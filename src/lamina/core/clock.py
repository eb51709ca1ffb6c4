"""Time as a port, so that scheduling decisions are tested with a fake clock."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a monotonic clock (for durations and deadlines)."""
        ...

    def time(self) -> float:
        """Seconds since the epoch (for timestamps people read)."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._epoch = start
        self._mono = 1000.0

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._epoch

    def advance(self, seconds: float) -> None:
        self._epoch += seconds
        self._mono += seconds
