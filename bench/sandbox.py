"""What the Linux sandbox adds to a cold start, against plain processes.

    sudo .venv/bin/python bench/sandbox.py [--rounds 40]

Two measurements, each alternating the drivers within one run (the machine drifts):

1. The driver alone: from `driver.start()` to the first byte the started program writes
   (`/usr/bin/echo`: the program's own start is the same on both sides), with the pool of
   prepared sandboxes ready (one start at a time) and drained (ten at once).
2. The whole platform: a new Python function's first invocation (a cold start) through the
   Invoke API on two `lamina up` servers, one per driver, at 1,769 MB (one vCPU) and at
   128 MB (where the CPU share is 7 %).

Writes bench/results/sandbox.json and bench/results/sandbox.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.e2e.harness import LaminaServer, create_function, invoke  # noqa: E402

from lamina.core.ports import SandboxDriver, SandboxSpec  # noqa: E402
from lamina.sandbox import cgroups, detect, linux  # noqa: E402
from lamina.sandbox.plain import PlainSandboxDriver  # noqa: E402

RESULTS = ROOT / "bench" / "results"
NOOP = "def handler(event, context):\n    return event\n"


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p90_ms": round(ordered[int(len(ordered) * 0.9)] * 1000, 3),
        "min_ms": round(ordered[0] * 1000, 3),
        "n": len(ordered),
    }


async def first_output(driver: SandboxDriver, scratch: Path) -> float:
    """Seconds from start() to the program's first byte; the environment is then killed."""
    read_fd, write_fd = os.pipe()
    spec = SandboxSpec(
        argv=("/usr/bin/echo", "x"),
        env={"PATH": "/usr/bin:/bin"},
        cwd=scratch,
        task_root=scratch,
        opt_root=None,
        tmp_dir=scratch,
        memory_mb=1769,
        log_fd=write_fd,
    )
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[None] = loop.create_future()
    loop.add_reader(read_fd, lambda: arrived.done() or arrived.set_result(None))
    started = time.perf_counter()
    process = await driver.start(spec)
    os.close(write_fd)
    await arrived
    elapsed = time.perf_counter() - started
    loop.remove_reader(read_fd)
    os.close(read_fd)
    process.kill()
    await process.wait_exit()
    return elapsed


async def driver_figures(rounds: int, scratch: Path) -> dict[str, Any]:
    layout = cgroups.current_layout()
    assert isinstance(layout, cgroups.Layout), layout
    sandbox = linux.build(scratch / "home", layout)
    sandbox.warm()
    plain = PlainSandboxDriver()
    await asyncio.sleep(0.5)  # the pool fills
    samples: dict[str, list[float]] = {"plain": [], "linux": []}
    for i in range(rounds):
        for name, driver in (("plain", plain), ("linux", sandbox)):
            samples[name].append(await first_output(driver, scratch))
        await asyncio.sleep(0.05)  # the pool refills between starts, as between cold starts
        if i % 10 == 9:
            progress(f"driver: {i + 1}/{rounds}")
    bursts: dict[str, list[float]] = {"plain": [], "linux": []}
    for _ in range(max(3, rounds // 10)):
        for name, driver in (("plain", plain), ("linux", sandbox)):
            burst = [first_output(driver, scratch) for _ in range(10)]
            bursts[name] += await asyncio.gather(*burst)
            await asyncio.sleep(0.3)
    figures: dict[str, Any] = {
        "one_at_a_time": {k: summary(v) for k, v in samples.items()},
        "ten_at_once": {k: summary(v) for k, v in bursts.items()},
    }
    for case in figures.values():
        case["added_p50_ms"] = round(case["linux"]["p50_ms"] - case["plain"]["p50_ms"], 3)
    sandbox.close()
    return figures


def cold_starts(rounds: int, scratch: Path, memory: int) -> dict[str, Any]:
    servers = {
        name: LaminaServer(scratch / f"{name}-{memory}", {"LAMINA_SANDBOX": name})
        for name in ("plain", "linux")
    }
    samples: dict[str, list[float]] = {"plain": [], "linux": []}
    try:
        for server in servers.values():
            server.start()
        time.sleep(0.5)
        for i in range(rounds):
            for name, server in servers.items():
                function = f"noop{i}"
                create_function(server, function, {"app.py": NOOP}, MemorySize=memory)
                started = time.perf_counter()
                response = invoke(server, function)
                samples[name].append(time.perf_counter() - started)
                assert response["StatusCode"] == 200 and "FunctionError" not in response
                server.client().delete_function(FunctionName=function)
            if i % 10 == 9:
                progress(f"cold starts at {memory} MB: {i + 1}/{rounds}")
    finally:
        for server in servers.values():
            server.stop()
    figures: dict[str, Any] = {k: summary(v) for k, v in samples.items()}
    figures["added_p50_ms"] = round(figures["linux"]["p50_ms"] - figures["plain"]["p50_ms"], 3)
    return figures


def markdown(results: dict[str, Any]) -> str:
    rows = [
        "| figure | plain p50 | linux p50 | added by the sandbox (p50) | linux p90 |",
        "|---|---|---|---|---|",
    ]
    labels = {
        "one_at_a_time": "driver: start to first output, pool ready",
        "ten_at_once": "driver: start to first output, 10 at once (pool drained)",
    }
    for key, label in labels.items():
        case = results["driver"][key]
        rows.append(
            f"| {label} | {case['plain']['p50_ms']} ms | {case['linux']['p50_ms']} ms "
            f"| {case['added_p50_ms']} ms | {case['linux']['p90_ms']} ms |"
        )
    for memory, case in results["cold_start"].items():
        rows.append(
            f"| Python cold start through the Invoke API, {memory} MB | "
            f"{case['plain']['p50_ms']} ms | {case['linux']['p50_ms']} ms | "
            f"{case['added_p50_ms']} ms | {case['linux']['p90_ms']} ms |"
        )
    machine = results["machine"]
    head = (
        f"Measured {results['date']} on {machine['cpus']} CPUs, kernel {machine['kernel']}, "
        f"cgroup {machine['cgroup']}, Python {machine['python']}; drivers alternated within "
        "the run.\n\n"
    )
    return head + "\n".join(rows) + "\n"


def run(coroutine: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    return asyncio.run(coroutine())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    support = detect.support()
    if not support.ok or support.layout is None:
        sys.exit(f"the Linux sandbox cannot run here: {'; '.join(support.problems)}")
    scratch = Path(tempfile.mkdtemp(prefix="lamina-bench-sandbox-"))
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "cgroup": support.layout.version,
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    progress("driver alone")
    results["driver"] = run(lambda: driver_figures(args.rounds, scratch))
    results["cold_start"] = {}
    for memory in (1769, 128):
        progress(f"cold starts at {memory} MB")
        results["cold_start"][str(memory)] = cold_starts(args.rounds, scratch, memory)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sandbox.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "sandbox.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
