"""Figure 1: warm requests over HTTP, Lamina and a peer on the same function, interleaved.

Each round runs every (function, connections) on every system that has it, one after the
other, the order of the systems flipped every round; each measured run is preceded by an
unmeasured warm-up at the same concurrency (at 8 connections Lamina starts 8 environments,
serverless-offline 8 Python processes, and serverless-offline retires idle ones after 60 s).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import procs, report, wrk
from bench.report import LAMINA, NGINX, OFFLINE

CONNECTIONS = (1, 8)


@dataclass(frozen=True, slots=True)
class Case:
    function: str  # a key of report.FUNCTIONS
    path: str  # under the system's base URL
    systems: tuple[str, ...]
    expect: bytes  # in the answer's body: a check that the system serves the real function
    post: bool = False


CASES = (
    Case("python-noop", "/noop", (LAMINA, OFFLINE), b"ok"),
    Case("python-echo", "/echo", (LAMINA, OFFLINE), b'"items"', post=True),
    Case("php-function", "/php-function", (LAMINA,), b"ok"),
    Case("php-fpm-hello", "/hello", (LAMINA, NGINX), b"hello"),
    Case("php-fpm-framework", "/app/products", (LAMINA, NGINX), b"50 products"),
)


def echo_body(size: int = 1024) -> bytes:
    """A JSON document of about `size` bytes, the same every run."""
    items: list[dict[str, Any]] = []
    while True:
        i = len(items)
        item = {"id": i, "name": f"item-{i}", "tags": ["a", "b"], "price": i * 1.5}
        if len(json.dumps({"items": [*items, item]})) > size:
            return json.dumps({"items": items}).encode()
        items.append(item)


def check(base: str, case: Case, body: bytes) -> None:
    """One request, before any load: a wrong answer would make every figure meaningless."""
    url = urlsplit(base + case.path)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    headers = {"Content-Type": "application/json"} if case.post else {}
    method = "POST" if case.post else "GET"
    connection.request(method, url.path, body if case.post else None, headers)
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    if response.status != 200 or case.expect not in answer:
        raise RuntimeError(f"{base}{case.path}: {response.status} {answer[:200]!r}")


def measured(
    url: str,
    connections: int,
    seconds: float,
    cpu: int,
    script: Path | None,
    roots: tuple[int, ...],
    main: int | None,
) -> dict[str, Any]:
    """One wrk run and the CPU the system's processes used meanwhile: all of them (100 % is
    one CPU) and its main process alone (`lamina up`, which runs the gateway; node's)."""
    tree = procs.children_map()
    before = sum(procs.tree_cpu_seconds(p, tree) for p in roots)
    main_before = procs.cpu_seconds(main) if main else 0.0
    started = time.perf_counter()
    result = wrk.run(url, connections, seconds, cpu, script=script)
    wall = time.perf_counter() - started
    tree = procs.children_map()
    used = sum(procs.tree_cpu_seconds(p, tree) for p in roots) - before
    figures: dict[str, Any] = {
        **result.to_json(),
        "server_cpu_percent": round(100 * used / wall, 1),
        "server_cpu_ms_per_request": round(1000 * used / max(1, result.requests), 4),
    }
    if main:
        figures["main_cpu_percent"] = round(100 * (procs.cpu_seconds(main) - main_before) / wall, 1)
    return figures


def run(
    bases: dict[str, str],
    roots: dict[str, tuple[int, ...]],
    mains: dict[str, int],
    rounds: int,
    seconds: float,
    warmup_seconds: float,
    cpu: int,
    work: Path,
    progress: Callable[[str], None],
) -> list[dict[str, Any]]:
    """`bases` maps each running system to its base URL (systems not in it are skipped),
    `roots` to the pids at the top of its process trees, `mains` to its main process (the
    one that serves HTTP) where there is one."""
    body = echo_body()
    script = wrk.post_script(work, body)
    cases = [c for c in CASES if any(s in bases for s in c.systems)]
    for case in cases:
        for system in case.systems:
            if system in bases:
                check(bases[system], case, body)
    runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    plan = [
        (case, connections, system)
        for case in cases
        for connections in CONNECTIONS
        for system in case.systems
        if system in bases
    ]
    total = rounds * len(plan)
    done = 0
    for round_ in range(rounds):
        for case in cases:
            for connections in CONNECTIONS:
                systems = [s for s in case.systems if s in bases]
                if round_ % 2:
                    systems.reverse()
                for system in systems:
                    url = bases[system] + case.path
                    post = script if case.post else None
                    wrk.run(url, connections, warmup_seconds, cpu, script=post)
                    result = measured(
                        url, connections, seconds, cpu, post, roots[system], mains.get(system)
                    )
                    runs.setdefault((case.function, system, connections), []).append(
                        {"round": round_ + 1, **result}
                    )
                    done += 1
                    progress(
                        f"warm {done}/{total} round {round_ + 1}: {case.function} "
                        f"{connections} conn {system}: {result['rps']:,.0f} req/s, "
                        f"p50 {result['p50_ms']:.3f} ms, server CPU "
                        f"{result['server_cpu_percent']:.0f} %, wrk CPU "
                        f"{result['wrk_cpu_percent']:.0f} %"
                        + (f", {result['errors']} errors" if result["errors"] else "")
                    )
    return [
        {
            "function": function,
            "system": system,
            "connections": connections,
            **report.summarize_runs(samples),
            "rounds": samples,
        }
        for (function, system, connections), samples in runs.items()
    ]
