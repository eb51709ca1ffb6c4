"""The load generator: wrk, pinned to one CPU, with its own CPU use measured.

wrk runs with one thread on one CPU (`taskset`), so the server always has the other CPU to
itself and a busy client shows up as a number instead of silently slowing the server down:
the CPU seconds wrk used (from wait4's rusage) over the wall time of the run. Near 100 %
means the client, not the server, set the pace. Latencies come from `wrk --latency`.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run. Latencies in milliseconds, throughput in requests per second."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors plus non-2xx/3xx answers
    wrk_cpu_percent: float  # of one CPU

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def duration_ms(text: str) -> float:
    """wrk's durations (`812.00us`, `1.20ms`, `3.01s`, `1.00m`) in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def parse(output: str, cpu_percent: float = 0.0) -> WrkResult:
    """The figures of `wrk --latency`'s report."""
    percentiles = {
        int(m.group(1)): duration_ms(m.group(2))
        for m in re.finditer(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.MULTILINE)
    }
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in ", output, re.MULTILINE)
    if rps is None or total is None or 50 not in percentiles or 99 not in percentiles:
        raise ValueError(f"not a wrk --latency report:\n{output}")
    errors = 0
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket:
        errors += sum(int(n) for n in socket.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=percentiles[50],
        p99_ms=percentiles[99],
        requests=int(total.group(1)),
        errors=errors,
        wrk_cpu_percent=round(cpu_percent, 1),
    )


def post_script(directory: Path, body: bytes, content_type: str = "application/json") -> Path:
    """A Lua script that makes wrk POST `body`."""
    text = body.decode()
    if "]==]" in text:
        raise ValueError("the body cannot be quoted as a Lua long string")
    script = directory / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.headers["Content-Type"] = "{content_type}"\n'
        f"wrk.body = [==[{text}]==]\n"
    )
    return script


def run(
    url: str,
    connections: int,
    seconds: float,
    cpu: int,
    script: Path | None = None,
    headers: tuple[str, ...] = (),
) -> WrkResult:
    """One wrk run on CPU `cpu`, one thread, `connections` keep-alive connections."""
    argv = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}"]
    argv += [f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s"]
    if script is not None:
        argv += ["-s", str(script)]
    for header in headers:
        argv += ["-H", header]
    argv.append(url)
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {' '.join(argv)}\n{output}")
    return parse(output, 100.0 * (usage.ru_utime + usage.ru_stime) / wall)
