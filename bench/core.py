"""Core engine figures: scale-out, cold start and warm latency of a Python function.

    .venv/bin/python bench/core.py [--rounds 5]

Starts a real `lamina up` on free ports with a temporary home, measures through the Lambda
Invoke API (HTTP keep-alive, one client thread per connection) and writes
bench/results/core.json, bench/results/core.md and bench/results/core.svg. Absolute figures
drift on a shared machine; compare runs made in one session.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

NOOP = "def handler(event, context):\n    return event\n"
SLEEP = "import time\n\ndef handler(event, context):\n    time.sleep(0.5)\n    return 1\n"


def bundle(code: str) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # World-readable, as Lambda needs: the sandbox's user does not own the files.
        info = zipfile.ZipInfo("app.py", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o100644 << 16
        archive.writestr(info, code)
    return base64.b64encode(buffer.getvalue()).decode()


class Api:
    def __init__(self, address: str) -> None:
        host, port = address.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=120)

    def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        self.connection.request(method, path, body)
        response = self.connection.getresponse()
        return response.status, response.read()

    def create(self, name: str, code: str) -> None:
        spec = {
            "FunctionName": name,
            "Runtime": "python3.11",
            "Handler": "app.handler",
            "Code": {"ZipFile": bundle(code)},
            "Timeout": 30,
        }
        status, body = self.call("POST", "/2015-03-31/functions", json.dumps(spec).encode())
        assert status == 201, body

    def invoke(self, name: str, payload: bytes = b"{}") -> float:
        started = time.perf_counter()
        self.connection.request("POST", f"/2015-03-31/functions/{name}/invocations", payload)
        response = self.connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        # A function error is a 200 too: a benchmark of failures would measure nothing.
        assert response.status == 200 and not response.getheader("X-Amz-Function-Error"), body
        return elapsed


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def scale_out(url: str, name: str, n: int) -> float:
    """Wall time for n concurrent invocations of a 0.5 s function."""
    apis = [Api(url) for _ in range(n)]
    barrier = threading.Barrier(n + 1)

    def worker(api: Api) -> None:
        barrier.wait()
        api.invoke(name)

    threads = [threading.Thread(target=worker, args=(a,)) for a in apis]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="lamina-bench-")
    env = {**os.environ, "LAMINA_HOME": home, "LAMINA_PORT": "0", "LAMINA_CONTROL_PORT": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "lamina", "up"], env=env, stdout=subprocess.DEVNULL
    )
    try:
        endpoints = Path(home) / "endpoints.json"
        while not endpoints.exists():
            time.sleep(0.05)
        time.sleep(0.2)
        url = json.loads(endpoints.read_text())["control"]
        api = Api(url)
        results: dict[str, object] = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        progress("scale-out: 20 concurrent invocations of a 0.5 s function")
        cold, warm = [], []
        for i in range(args.rounds):
            api.create(f"sleep{i}", SLEEP)
            cold.append(scale_out(url, f"sleep{i}", 20))
            warm.append(scale_out(url, f"sleep{i}", 20))
            progress(f"round {i + 1}/{args.rounds}: cold {cold[-1]:.3f} s, warm {warm[-1]:.3f} s")
        results["scale_out_20x0.5s_cold_s"] = statistics.median(cold)
        results["scale_out_20x0.5s_warm_s"] = statistics.median(warm)

        progress("cold start: first invocation of a new no-op function")
        starts = []
        for i in range(10 * args.rounds):
            api.create(f"noop{i}", NOOP)
            starts.append(api.invoke(f"noop{i}") * 1000)
        results["cold_start_ms_p50"] = statistics.median(starts)

        progress("warm latency: no-op, one connection")
        api.create("warm", NOOP)
        api.invoke("warm")
        samples = sorted(api.invoke("warm") * 1000 for _ in range(400 * args.rounds))
        results["warm_ms_p50"] = samples[len(samples) // 2]
        results["warm_ms_p99"] = samples[int(len(samples) * 0.99)]
        results["warm_rps_1_connection"] = 1000 / statistics.mean(samples)
    finally:
        server.terminate()
        server.wait()

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "core.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = [
        (
            "20 x 0.5 s invocations at once, cold (20 new environments)",
            "scale_out_20x0.5s_cold_s",
            "s",
        ),
        ("20 x 0.5 s invocations at once, warm", "scale_out_20x0.5s_warm_s", "s"),
        ("cold start, Python no-op, p50 (Invoke API round trip)", "cold_start_ms_p50", "ms"),
        ("warm Python no-op, p50, 1 connection", "warm_ms_p50", "ms"),
        ("warm Python no-op, p99, 1 connection", "warm_ms_p99", "ms"),
        ("warm Python no-op throughput, 1 connection", "warm_rps_1_connection", "req/s"),
    ]
    table = ["| figure | value |", "|---|---|"]
    table += [f"| {label} | {results[key]:.3f} {unit} |" for label, key, unit in rows]
    (RESULTS / "core.md").write_text("\n".join(table) + "\n")
    (RESULTS / "core.svg").write_text(chart(results))
    print("\n".join(table))


def chart(results: dict[str, object]) -> str:
    """A bar chart of the scale-out figures against the 0.5 s ideal."""
    bars = [
        ("ideal", 0.5),
        ("cold", float(results["scale_out_20x0.5s_cold_s"])),  # type: ignore[arg-type]
        ("warm", float(results["scale_out_20x0.5s_warm_s"])),  # type: ignore[arg-type]
    ]
    top = max(v for _, v in bars) * 1.2
    width, height, bar = 420, 220, 80
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" '
        'font-family="sans-serif" font-size="12">',
        '<text x="10" y="16">20 concurrent invocations of a 0.5 s function: wall time (s)</text>',
    ]
    for i, (label, value) in enumerate(bars):
        h = value / top * (height - 40)
        x = 40 + i * (bar + 40)
        y = height - h
        colour = "#999" if label == "ideal" else "#3a7"
        parts.append(f'<rect x="{x}" y="{y:.1f}" width="{bar}" height="{h:.1f}" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + bar / 2}" y="{y - 4:.1f}" text-anchor="middle">{value:.2f}</text>'
        )
        parts.append(
            f'<text x="{x + bar / 2}" y="{height + 16}" text-anchor="middle">{label}</text>'
        )
    parts.append("</svg>\n")
    return "\n".join(parts)


if __name__ == "__main__":
    main()
