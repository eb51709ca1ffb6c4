"""Figure 2: cold start, the first request to a new environment, as the client sees it.

For Lamina each sample is a new function created through the Lambda API (not timed), then
invoked once through the Invoke API on a keep-alive connection opened beforehand: the time
from sending the request to reading the answer includes starting the environment, its init
and the invocation. Samples alternate between the Lamina instances (Linux sandbox, plain
processes) and serverless-offline, whose project has one extra Python function per sample
(`cold01`, ...) invoked once each through its own Invoke API. A short pause before each
sample lets Lamina refill its pool of prepared sandboxes, as it would between real cold
starts; each function is deleted after its sample so that idle environments do not pile up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench import catalog, report
from bench.systems import Lamina, ServerlessOffline

PAUSE_S = 0.3


def offline_name(i: int) -> str:
    return f"cold{i + 1:02d}"


def run(
    laminas: dict[str, Lamina],
    offline: ServerlessOffline | None,
    samples: int,
    code: bytes,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    times: dict[str, dict[str, list[float]]] = {k: {} for k in laminas}
    clients = {key: lamina.client() for key, lamina in laminas.items()}
    offline_client = offline.client() if offline is not None else None
    if offline_client is not None:
        times[report.OFFLINE] = {"python": []}
    order = [*laminas, report.OFFLINE] if offline_client else list(laminas)
    for i in range(samples):
        for system in order if i % 2 == 0 else reversed(order):
            if system == report.OFFLINE:
                assert offline_client is not None
                time.sleep(PAUSE_S)
                name = f"bench-dev-{offline_name(i)}"
                times[system]["python"].append(offline_client.invoke(name) * 1000)
                continue
            client = clients[system]
            for kind in catalog.KINDS:
                name = f"cold-{kind}-{i}"
                catalog.create(client, name, kind, code, sleep=False)
                time.sleep(PAUSE_S)
                elapsed = client.invoke(name, catalog.noop_payload(kind))
                times[system].setdefault(kind, []).append(elapsed * 1000)
                client.delete(name)
        latest = ", ".join(
            f"{system} {kind} {values[-1]:.1f}"
            for system, kinds in times.items()
            for kind, values in kinds.items()
        )
        progress(f"cold start {i + 1}/{samples} (ms): {latest}")
    for client in clients.values():
        client.close()
    return {
        system: {kind: report.summarize_samples(values) for kind, values in kinds.items()}
        for system, kinds in times.items()
    }
