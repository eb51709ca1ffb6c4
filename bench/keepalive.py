"""Keep-alive policies on a synthetic trace: cold starts against idle memory.

    .venv/bin/python bench/keepalive.py [--seed 7] [--hours 24]

A simulation, no server: a seeded mix of functions invoked periodically (cron-like, a few
with idle times beyond the hybrid policy's 4-hour histogram), as Poisson processes, in
bursts, and on a diurnal curve, replayed against Lamina's own policy objects
(`lamina.core.keepalive`) with the pool's rules: an invocation takes the most recently
used idle environment, else starts one (a cold start); at its end the policy keeps that
environment for a window, or unloads it and pre-warms one later (an invocation that comes
before the pre-warm cancels it, as `Pool.take_idle` does). Loading is taken as instant.

Figures per policy: the cold-start rate (% of invocations that found no warm environment),
the environment-minutes spent loaded but idle, and the mean idle memory (idle time x each
function's memory size, over the trace's length). Writes bench/results/keepalive.json,
keepalive.md and, when matplotlib is importable, keepalive.png. `run(progress)` returns the
same figures for bench/run.py. Takes about a second.
"""

from __future__ import annotations

import argparse
import functools
import heapq
import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina.core.keepalive import Decision, FixedKeepAlive, HybridKeepAlive, KeepAlivePolicy

RESULTS = Path(__file__).resolve().parent / "results"
MINUTE = 60.0
HOUR = 3600.0


# the trace


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    pattern: str  # periodic, poisson, bursty, diurnal
    memory_mib: int
    invocations: tuple[tuple[float, float], ...]  # (start, duration), by start


def _duration(rng: random.Random) -> float:
    return min(10.0, rng.lognormvariate(math.log(0.3), 1.0))


def _periodic(rng: random.Random, horizon: float, period: float) -> list[float]:
    start = rng.uniform(0, period)
    return [start + i * period + rng.gauss(0, period * 0.01) for i in range(int(horizon / period))]


def _poisson(rng: random.Random, horizon: float, mean_gap: float) -> list[float]:
    times: list[float] = []
    t = rng.expovariate(1 / mean_gap)
    while t < horizon:
        times.append(t)
        t += rng.expovariate(1 / mean_gap)
    return times


def _bursty(rng: random.Random, horizon: float, mean_gap: float) -> list[float]:
    """Bursts of 3-20 invocations, 0.2-3 s apart, separated by exponential gaps."""
    times: list[float] = []
    t = rng.expovariate(1 / mean_gap)
    while t < horizon:
        burst_time = t
        for _ in range(rng.randint(3, 20)):
            times.append(burst_time)
            burst_time += rng.uniform(0.2, 3.0)
        t = burst_time + rng.expovariate(1 / mean_gap)
    return times


def _diurnal(rng: random.Random, horizon: float, peak_per_minute: float) -> list[float]:
    """A Poisson process whose rate follows the day: peak at 14:00, nothing at night."""
    times: list[float] = []
    t, peak = 0.0, peak_per_minute / MINUTE
    while True:
        t += rng.expovariate(peak)  # thinning
        if t >= horizon:
            return times
        rate = max(0.0, math.sin(math.pi * ((t / HOUR - 8) % 24) / 12))
        if rng.random() < rate:
            times.append(t)


def trace(seed: int, hours: float) -> list[Function]:
    rng = random.Random(seed)
    horizon = hours * HOUR
    specs: list[tuple[str, str, Callable[[], list[float]]]] = []
    make: Callable[[], list[float]]
    for minutes in (1, 5, 15, 30, 60, 120, 360):
        make = functools.partial(_periodic, rng, horizon, minutes * MINUTE)
        specs.append((f"cron-{minutes}m", "periodic", make))
    for seconds in (30, 180, 1200, 5400):
        specs.append(
            (f"poisson-{seconds}s", "poisson", functools.partial(_poisson, rng, horizon, seconds))
        )
    for minutes in (30, 180):
        make = functools.partial(_bursty, rng, horizon, minutes * MINUTE)
        specs.append((f"bursts-{minutes}m", "bursty", make))
    for peak in (2.0, 0.2):
        specs.append(
            (f"diurnal-{peak:g}pm", "diurnal", functools.partial(_diurnal, rng, horizon, peak))
        )
    functions = []
    for name, pattern, make in specs:
        starts = sorted(t for t in make() if 0 <= t < horizon)
        calls = tuple((t, _duration(rng)) for t in starts)
        memory = rng.choice((128, 256, 512, 1024))
        functions.append(Function(name, pattern, memory, calls))
    return functions


# the simulation


@dataclass(slots=True)
class _Env:
    idle_since: float
    unload_at: float


@dataclass(slots=True)
class Outcome:
    invocations: int = 0
    cold_starts: int = 0
    idle_seconds: float = 0.0
    idle_mib_seconds: float = 0.0
    prewarms: int = 0
    prewarms_unused: int = 0
    by_pattern: dict[str, list[int]] = field(default_factory=dict)  # [invocations, cold]


def simulate(functions: list[Function], policy: KeepAlivePolicy, horizon: float) -> Outcome:
    out = Outcome()
    for function in functions:
        _simulate_one(function, policy, horizon, out)
    return out


def _simulate_one(fn: Function, policy: KeepAlivePolicy, horizon: float, out: Outcome) -> None:
    idle: list[_Env] = []  # a stack: the most recently used last
    prewarm: tuple[float, float] | None = None  # (when, window)
    counts = out.by_pattern.setdefault(fn.pattern, [0, 0])
    # Events: (time, order, kind); an end sorts before a start at the same time.
    events: list[tuple[float, int, str]] = [(t, 1, "start") for t, _ in fn.invocations]
    durations = dict(fn.invocations)
    heapq.heapify(events)

    def idle_for(seconds: float) -> None:
        out.idle_seconds += seconds
        out.idle_mib_seconds += seconds * fn.memory_mib

    def expire(now: float) -> None:
        for env in [e for e in idle if e.unload_at <= now]:
            idle.remove(env)
            idle_for(env.unload_at - env.idle_since)

    while events:
        now, _, kind = heapq.heappop(events)
        if kind == "start":
            if prewarm is not None:
                when, window = prewarm
                prewarm = None
                if when <= now:  # loaded ahead of this invocation
                    out.prewarms += 1
                    idle.append(_Env(when, when + window))
            expire(now)
            policy.invocation_started(fn.name, now)
            out.invocations += 1
            counts[0] += 1
            if idle:
                env = idle.pop()
                idle_for(now - env.idle_since)
            else:
                out.cold_starts += 1
                counts[1] += 1
            heapq.heappush(events, (now + durations[now], 0, "end"))
            continue
        decision: Decision = policy.invocation_ended(fn.name, now)
        expire(now)
        if decision.pre_warm_at(now) is not None:
            prewarm = (now + decision.pre_warm, decision.keep_alive)
        elif decision.keep_this() > 0:
            idle.append(_Env(now, now + decision.keep_this()))
    for env in idle:
        idle_for(max(0.0, min(env.unload_at, horizon) - env.idle_since))
    if prewarm is not None and prewarm[0] < horizon:
        when, window = prewarm
        out.prewarms += 1
        out.prewarms_unused += 1
        idle_for(min(when + window, horizon) - when)


# figures


def policies(fallback: float = 600.0) -> dict[str, Callable[[], KeepAlivePolicy]]:
    """Lamina's default, shorter fixed windows (less memory, more cold starts), longer ones
    (to place the hybrid policy on the same trade-off), and the hybrid policy."""
    return {
        "fixed 1 min": lambda: FixedKeepAlive(1 * MINUTE),
        "fixed 5 min": lambda: FixedKeepAlive(5 * MINUTE),
        "fixed 10 min (default)": lambda: FixedKeepAlive(10 * MINUTE),
        "fixed 20 min": lambda: FixedKeepAlive(20 * MINUTE),
        "fixed 30 min": lambda: FixedKeepAlive(30 * MINUTE),
        "hybrid": lambda: HybridKeepAlive(fallback),
    }


def run(
    progress: Callable[[str], None] = lambda _: None, *, seed: int = 7, hours: float = 24.0
) -> dict[str, Any]:
    """The figures, JSON-able: `policies` maps each policy to its numbers (what
    bench/run.py tabulates), `details` says what was simulated."""
    started = time.perf_counter()
    functions = trace(seed, hours)
    horizon = hours * HOUR
    total = sum(len(f.invocations) for f in functions)
    progress(f"{len(functions)} functions, {total} invocations over {hours:g} h (seed {seed})")
    table: dict[str, dict[str, float]] = {}
    by_pattern: dict[str, dict[str, float]] = {}
    rules: dict[str, int] = {}
    for name, make in policies().items():
        policy = make()
        out = simulate(functions, policy, horizon)
        table[name] = {
            "cold_start_percent": round(100 * out.cold_starts / max(out.invocations, 1), 2),
            "idle_environment_minutes": round(out.idle_seconds / MINUTE, 1),
            "mean_idle_memory_mib": round(out.idle_mib_seconds / horizon, 1),
            "prewarms": out.prewarms,
        }
        by_pattern[name] = {
            pattern: round(100 * cold / max(calls, 1), 2)
            for pattern, (calls, cold) in sorted(out.by_pattern.items())
        }
        if isinstance(policy, HybridKeepAlive):
            rules = dict(sorted(policy.decisions.items()))
            table[name]["prewarms_unused"] = out.prewarms_unused
        progress(f"{name}: {table[name]['cold_start_percent']} % cold starts")
    return {
        "policies": table,
        "details": {
            "trace": {
                "seed": seed,
                "hours": hours,
                "invocations": total,
                "functions": {
                    f.name: {
                        "pattern": f.pattern,
                        "invocations": len(f.invocations),
                        "memory_mib": f.memory_mib,
                    }
                    for f in functions
                },
            },
            "cold_start_percent_by_pattern": by_pattern,
            "hybrid_decisions": rules,
            "hybrid_parameters": {
                "bin_width_s": 60,
                "histogram_range_s": 4 * HOUR,
                "head_percentile": 5,
                "tail_percentile": 99,
                "margin": 0.1,
                "cv_threshold": 2.0,
                "min_samples": 10,
                "oob_threshold": 0.5,
                "fallback_keep_alive_s": 600,
            },
            "seconds": round(time.perf_counter() - started, 2),
        },
    }


def markdown(figures: dict[str, Any]) -> str:
    details = figures["details"]
    info = details["trace"]
    lines = [
        "# Keep-alive policies on a simulated trace",
        "",
        f"{len(info['functions'])} functions, {info['invocations']} invocations over "
        f"{info['hours']:g} simulated hours (seed {info['seed']}); `bench/keepalive.py`.",
        "",
        "| policy | cold starts | idle env-minutes | mean idle memory | pre-warms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in figures["policies"].items():
        lines.append(
            f"| {name} | {row['cold_start_percent']:.2f} % | "
            f"{row['idle_environment_minutes']:.0f} | {row['mean_idle_memory_mib']:.0f} MiB | "
            f"{row['prewarms']:.0f} |"
        )
    patterns = sorted({p for row in details["cold_start_percent_by_pattern"].values() for p in row})
    lines += [
        "",
        "Cold starts by invocation pattern:",
        "",
        "| policy | " + " | ".join(patterns) + " |",
        "|---|" + "---:|" * len(patterns),
    ]
    for name, row in details["cold_start_percent_by_pattern"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row.get(p, 0):.1f} %" for p in patterns) + " |")
    decisions = ", ".join(f"{k} {v}" for k, v in details["hybrid_decisions"].items())
    lines += ["", f"Hybrid policy decisions by rule: {decisions}.", ""]
    return "\n".join(lines)


def chart(figures: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    table = figures["policies"]
    names = list(table)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name in names:
        row = table[name]
        ax.scatter(row["mean_idle_memory_mib"], row["cold_start_percent"], s=60)
        ax.annotate(
            name,
            (row["mean_idle_memory_mib"], row["cold_start_percent"]),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    ax.set_xlabel("mean idle memory (MiB)")
    ax.set_ylabel("cold starts (% of invocations)")
    ax.set_title("Keep-alive policies on a simulated trace")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    figures = run(lambda message: print(message, file=sys.stderr), seed=args.seed, hours=args.hours)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "keepalive.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / "keepalive.md").write_text(markdown(figures))
    written = ["keepalive.json", "keepalive.md"]
    if chart(figures, RESULTS / "keepalive.png"):
        written.append("keepalive.png")
    print(markdown(figures))
    print(f"wrote {', '.join('bench/results/' + w for w in written)}", file=sys.stderr)


if __name__ == "__main__":
    main()
