"""Figures 3 and 4: how fast Lamina grows from 0 to N environments, and how much memory an
idle environment holds.

Scale-up: N threads, each with an HTTP connection opened beforehand, wait at a barrier and
then invoke a new function that sleeps 0.5 s, all at once. N environments must start;
the wall time from the barrier to the last answer, less the 0.5 s of sleep, is the time
the platform took to provide them. The environments' own init durations come from the
control API's status route.

Memory: a few concurrent invocations of a sleeping function start that many environments;
once they are idle, the PSS of each environment's processes (the runtime and what it forked:
php-fpm's worker) is read from /proc/<pid>/smaps_rollup and averaged. PSS splits pages shared
between processes among them, so memory shared with a zygote or between php-fpm's master
and worker is counted once in total. `pid` in the status route is the host pid of the
environment's first process (the sandbox's pid 1 under the Linux driver).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from typing import Any

from bench import catalog, procs, report
from bench.systems import Lamina

SLEEP_S = 0.5


def concurrent_invocations(url: str, name: str, payload: bytes, n: int) -> float:
    """Seconds from releasing n invocations at once to the last answer."""
    host, port = url.removeprefix("http://").split(":")
    connections = [http.client.HTTPConnection(host, int(port), timeout=120) for _ in range(n)]
    for connection in connections:
        connection.connect()
    barrier = threading.Barrier(n + 1)
    failures: list[str] = []

    def invoke(connection: http.client.HTTPConnection) -> None:
        barrier.wait()
        connection.request("POST", f"/2015-03-31/functions/{name}/invocations", payload)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200 or response.getheader("X-Amz-Function-Error"):
            failures.append(f"{response.status} {body[:200]!r}")

    threads = [threading.Thread(target=invoke, args=(c,)) for c in connections]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    if failures:
        raise RuntimeError(f"{len(failures)} of {n} invocations of {name} failed: {failures[0]}")
    return elapsed


def environments_of(lamina: Lamina, name: str) -> list[dict[str, Any]]:
    client = lamina.client()
    try:
        return [e for e in client.status()["environments"] if e["function"] == name]
    finally:
        client.close()


def scale_up(
    laminas: dict[str, Lamina],
    n: int,
    repeats: int,
    code: bytes,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    walls: dict[str, list[float]] = {k: [] for k in laminas}
    inits: dict[str, list[float]] = {k: [] for k in laminas}
    order = list(laminas)
    payload = catalog.sleep_payload("python", SLEEP_S)
    for r in range(repeats):
        for key in order if r % 2 == 0 else reversed(order):
            lamina = laminas[key]
            name = f"scale-{r}"
            client = lamina.client()
            catalog.create(client, name, "python", code, sleep=True)
            time.sleep(1.0)  # the sandbox pool back to its resting size
            wall = concurrent_invocations(lamina.control_url, name, payload, n)
            envs = environments_of(lamina, name)
            walls[key].append(wall - SLEEP_S)
            inits[key].append(max((e["init_duration_ms"] or 0.0) for e in envs))
            client.delete(name)
            client.close()
            progress(
                f"scale-up {r + 1}/{repeats} {key}: {n} invocations, {len(envs)} environments, "
                f"wall - 0.5 s = {walls[key][-1]:.3f} s, max init {inits[key][-1]:.1f} ms"
            )
    return {
        key: {
            "environments": n,
            "wall_minus_sleep_s": report.summarize_samples(walls[key]),
            "max_init_ms": report.summarize_samples(inits[key], 1),
        }
        for key in laminas
    }


def idle_memory(
    laminas: dict[str, Lamina], count: int, code: bytes, progress: Callable[[str], None]
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for key, lamina in laminas.items():
        figures[key] = {}
        names = []
        client = lamina.client()
        for kind in catalog.KINDS:
            name = f"memory-{kind}"
            catalog.create(client, name, kind, code, sleep=True)
            concurrent_invocations(
                lamina.control_url, name, catalog.sleep_payload(kind, SLEEP_S), count
            )
            names.append(name)
        time.sleep(1.0)  # idle, and the pool of prepared sandboxes refilled
        tree = procs.children_map()
        everyone = client.status()["environments"]
        for kind, name in zip(catalog.KINDS, names, strict=True):
            envs = [e for e in everyone if e["function"] == name and e["state"] == "IDLE"]
            sizes = [procs.tree_pss_kib(e["pid"], tree) for e in envs if e["pid"]]
            figures[key][kind] = {
                "environments": len(sizes),
                "pss_mib_per_env": round(sum(sizes) / len(sizes) / 1024, 2) if sizes else None,
                "pss_mib_each": [round(s / 1024, 2) for s in sizes],
            }
            progress(
                f"memory {key} {kind}: {len(sizes)} idle environments, "
                f"{figures[key][kind]['pss_mib_per_env']} MiB PSS each"
            )
        assert lamina.process is not None
        # Lamina's own processes: everything under `lamina up` but the environments.
        everything = procs.tree_pss_kib(lamina.process.pid, tree)
        in_environments = sum(procs.tree_pss_kib(e["pid"], tree) for e in everyone if e["pid"])
        figures[key]["platform_pss_mib"] = round((everything - in_environments) / 1024, 1)
        for name in names:
            client.delete(name)
        client.close()
    return figures
