"""Keep-alive policies: how long an idle execution environment stays loaded after an
invocation, and whether to load one again ahead of the next invocation. Pure: no clock, no
I/O; the pool passes the times in (monotonic seconds) and acts on the `Decision`.

Two policies, chosen with `LAMINA_KEEP_ALIVE_POLICY`:

- `fixed` (the default): every environment stays loaded for the same time after its last
  invocation (`LAMINA_KEEP_ALIVE`, 600 s: what Lambda is observed to do).
- `hybrid`: the hybrid histogram policy of Shahrad et al., "Serverless in the Wild:
  Characterizing and Optimizing the Serverless Workload at a Large Cloud Provider"
  (USENIX ATC 2020), section 4.2. Per function revision (the pool's key) it learns the
  distribution of idle times, the time between the end of one invocation and the start of
  the next, and keeps an environment loaded only around the part of that distribution where
  the next invocation is likely to come:

      invocation ends ── pre-warm window ──► load ── keep-alive window ──► unload
                        (nothing loaded)           (loaded, idle)

  With a pre-warm window of 0 the environment that just finished stays loaded for the
  keep-alive window (as with `fixed`, but with a learned window).

How `hybrid` decides, and the parameters chosen (`HybridKeepAlive`'s defaults):

1. Idle times go into a range-limited histogram of fixed-width bins. The paper uses 1-minute
   bins over 4 hours (`bin_width=60`, `histogram_range=14_400`); idle times beyond the range are
   counted as out of bounds.
2. The histogram is *representative* when the coefficient of variation (CV) of its bin
   counts is at least `cv_threshold` (2, the paper's value). A high CV means the idle times
   are concentrated in a few bins: the pattern is predictable. Then:
   - pre-warm window = the lower edge of the bin holding the head percentile (the 5th),
     minus a 10 % margin (rounded down, so the load comes early), and
   - keep-alive window = the upper edge of the bin holding the tail percentile (the 99th),
     plus a 10 % margin (rounded up), minus the pre-warm window, so the environment is
     unloaded at the same moment whether or not it was pre-warmed.
3. A low CV (idle times spread over many bins) is not predictable: the paper then keeps the
   environment loaded for the whole histogram range with no pre-warming (`uncertain_keep_alive`,
   by default the range, as in the paper).
4. With fewer than `min_samples` idle times (10; the paper gives no number, and a handful of
   samples in a 240-bin histogram has a high CV whatever the pattern) or when at least
   `oob_threshold` of the idle times (half; our choice) fell beyond the range, Lamina falls
   back to the fixed keep-alive (`fallback_keep_alive`, `LAMINA_KEEP_ALIVE`). The paper
   forecasts the next idle time with an ARIMA model in the out-of-bounds case; Lamina does
   not (a time-series model per function is heavier than the rest of the pool together, and
   idle times of hours are rare on one node), which only costs cold starts for functions
   invoked less often than every four hours.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Literal, Protocol

POLICY_NAMES = ("fixed", "hybrid")

Rule = Literal["fixed", "histogram", "uncertain", "few-samples", "out-of-bounds"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after an invocation ended at time `t`.

    `pre_warm == 0`: keep the environment that ran the invocation loaded and idle for
    `keep_alive` seconds. `pre_warm > 0`: unload it now, load one at `t + pre_warm`, and keep
    that one for `keep_alive` seconds.
    """

    keep_alive: float
    pre_warm: float = 0.0
    rule: Rule = "fixed"

    def keep_this(self) -> float:
        """Seconds the environment that just finished stays idle (0: unload it now)."""
        return 0.0 if self.pre_warm > 0 else self.keep_alive

    def pre_warm_at(self, ended: float) -> float | None:
        """When to load an environment ahead of the next invocation (None: do not)."""
        return ended + self.pre_warm if self.pre_warm > 0 and self.keep_alive > 0 else None

    def unload_at(self, ended: float) -> float:
        """When no environment of this decision is loaded any more."""
        return ended + self.pre_warm + self.keep_alive


class KeepAlivePolicy(Protocol):
    """Asked by the pool at the start and at the end of every invocation of a key."""

    name: str

    def invocation_started(self, key: Hashable, now: float) -> None: ...

    def invocation_ended(self, key: Hashable, now: float) -> Decision: ...

    def forget(self, key: Hashable) -> None:
        """The key will not be invoked again (its function changed or was deleted)."""
        ...

    def statistics(self) -> dict[str, object]: ...


class FixedKeepAlive:
    """Every idle environment stays loaded for `keep_alive` seconds."""

    name = "fixed"

    def __init__(self, keep_alive: float) -> None:
        if keep_alive < 0:
            raise ValueError(f"keep_alive = {keep_alive!r}: must be at least 0 seconds")
        self.keep_alive = keep_alive

    def __repr__(self) -> str:
        return f"<FixedKeepAlive {self.keep_alive:g}s>"

    def invocation_started(self, key: Hashable, now: float) -> None:
        pass

    def invocation_ended(self, key: Hashable, now: float) -> Decision:
        return Decision(self.keep_alive)

    def forget(self, key: Hashable) -> None:
        pass

    def statistics(self) -> dict[str, object]:
        return {"policy": self.name, "keep_alive": self.keep_alive}


@dataclass(slots=True)
class IdleTimeHistogram:
    """Idle times in `bins` bins of `bin_width` seconds; longer ones counted out of bounds."""

    bin_width: float
    bins: int
    counts: list[int] = field(default_factory=list)
    in_range: int = 0
    out_of_bounds: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * self.bins

    @property
    def samples(self) -> int:
        return self.in_range + self.out_of_bounds

    def add(self, idle: float) -> None:
        index = int(max(idle, 0.0) // self.bin_width)
        if index < self.bins:
            self.counts[index] += 1
            self.in_range += 1
        else:
            self.out_of_bounds += 1

    def out_of_bounds_rate(self) -> float:
        return self.out_of_bounds / self.samples if self.samples else 0.0

    def cv(self) -> float:
        """Coefficient of variation of the bin counts (population standard deviation over
        the mean): high when the idle times fall in few bins, 0 when none are in range."""
        if self.in_range == 0:
            return 0.0
        mean = self.in_range / self.bins
        variance = sum((c - mean) ** 2 for c in self.counts) / self.bins
        return math.sqrt(variance) / mean

    def percentile_bin(self, fraction: float) -> int:
        """The index of the bin holding the `fraction` quantile of the in-range idle times."""
        needed = fraction * self.in_range
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if count and seen >= needed:
                return index
        return self.bins - 1


@dataclass(slots=True)
class _Function:
    histogram: IdleTimeHistogram
    last_end: float | None = None  # the end of the last invocation, until the next starts


class HybridKeepAlive:
    """The hybrid histogram policy (Shahrad et al., ATC 2020); see the module docstring."""

    name = "hybrid"

    def __init__(
        self,
        fallback_keep_alive: float,
        *,
        bin_width: float = 60.0,
        histogram_range: float = 4 * 3600.0,
        head: float = 0.05,
        tail: float = 0.99,
        margin: float = 0.10,
        cv_threshold: float = 2.0,
        min_samples: int = 10,
        oob_threshold: float = 0.5,
        uncertain_keep_alive: float | None = None,
    ) -> None:
        problems = []
        if fallback_keep_alive < 0:
            problems.append(f"fallback_keep_alive = {fallback_keep_alive!r}: must be >= 0")
        if bin_width <= 0 or histogram_range < bin_width:
            problems.append(
                f"bin_width = {bin_width!r}, histogram_range = {histogram_range!r}: "
                "need 0 < bin_width <= histogram_range"
            )
        if not 0 <= head < tail <= 1:
            problems.append(f"head = {head!r}, tail = {tail!r}: need 0 <= head < tail <= 1")
        if not 0 <= margin < 1:
            problems.append(f"margin = {margin!r}: must be in [0, 1)")
        if min_samples < 1:
            problems.append(f"min_samples = {min_samples!r}: must be at least 1")
        if problems:
            raise ValueError("; ".join(problems))
        self.fallback_keep_alive = fallback_keep_alive
        self.bin_width = bin_width
        self.bins = max(1, round(histogram_range / bin_width))
        self.range = self.bins * bin_width
        self.head = head
        self.tail = tail
        self.margin = margin
        self.cv_threshold = cv_threshold
        self.min_samples = min_samples
        self.oob_threshold = oob_threshold
        self.uncertain_keep_alive = (
            self.range if uncertain_keep_alive is None else uncertain_keep_alive
        )
        self._functions: dict[Hashable, _Function] = {}
        self.decisions: dict[Rule, int] = {}

    def __repr__(self) -> str:
        return (
            f"<HybridKeepAlive keys={len(self._functions)} bins={self.bins}x"
            f"{self.bin_width:g}s fallback={self.fallback_keep_alive:g}s>"
        )

    def invocation_started(self, key: Hashable, now: float) -> None:
        state = self._state(key)
        if state.last_end is not None:
            # Only a gap between an end and the next start is an idle time; a start while
            # another invocation of the key still runs (or a second start in the same gap,
            # such as the retry of a timed-out init) records nothing.
            state.histogram.add(now - state.last_end)
            state.last_end = None

    def invocation_ended(self, key: Hashable, now: float) -> Decision:
        state = self._state(key)
        state.last_end = now
        decision = self.decide(state.histogram)
        self.decisions[decision.rule] = self.decisions.get(decision.rule, 0) + 1
        return decision

    def decide(self, histogram: IdleTimeHistogram) -> Decision:
        """The windows this histogram gives (the policy's whole rule set)."""
        if histogram.samples < self.min_samples:
            return Decision(self.fallback_keep_alive, rule="few-samples")
        if histogram.out_of_bounds_rate() >= self.oob_threshold:
            return Decision(self.fallback_keep_alive, rule="out-of-bounds")
        if histogram.cv() < self.cv_threshold:
            return Decision(self.uncertain_keep_alive, rule="uncertain")
        head_edge = histogram.percentile_bin(self.head) * self.bin_width
        tail_edge = (histogram.percentile_bin(self.tail) + 1) * self.bin_width
        pre_warm = head_edge * (1 - self.margin)
        keep_alive = tail_edge * (1 + self.margin) - pre_warm
        return Decision(keep_alive, pre_warm, rule="histogram")

    def histogram(self, key: Hashable) -> IdleTimeHistogram | None:
        state = self._functions.get(key)
        return state.histogram if state else None

    def forget(self, key: Hashable) -> None:
        self._functions.pop(key, None)

    def statistics(self) -> dict[str, object]:
        return {
            "policy": self.name,
            "functions": len(self._functions),
            "fallback_keep_alive": self.fallback_keep_alive,
            "decisions": dict(self.decisions),
        }

    def _state(self, key: Hashable) -> _Function:
        state = self._functions.get(key)
        if state is None:
            state = _Function(IdleTimeHistogram(self.bin_width, self.bins))
            self._functions[key] = state
        return state


def make_policy(name: str, keep_alive: float) -> KeepAlivePolicy:
    """The policy `LAMINA_KEEP_ALIVE_POLICY` names; `keep_alive` is `LAMINA_KEEP_ALIVE`."""
    if name == "fixed":
        return FixedKeepAlive(keep_alive)
    if name == "hybrid":
        return HybridKeepAlive(keep_alive)
    raise ValueError(f"keep-alive policy {name!r}: must be one of {', '.join(POLICY_NAMES)}")
