"""Lambda's platform log lines (CloudWatch text format, reference 1.7)."""

from __future__ import annotations

import math
import secrets
import time


def stream_name(version: str, epoch_s: float) -> str:
    """`2020/01/31/[$LATEST]3893...283c`: one stream per execution environment."""
    day = time.strftime("%Y/%m/%d", time.gmtime(epoch_s))
    return f"{day}/[{version}]{secrets.token_hex(16)}"


def log_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str,
    duration_ms: float,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
    status: str | None = None,
) -> str:
    """REPORT, tab separated with a trailing tab. Init is billed (Lambda, since 2025-08)."""
    billed = math.ceil(duration_ms + (init_duration_ms or 0.0))
    parts = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {max(billed, 1)} ms",
        f"Memory Size: {memory_size_mb} MB",
        f"Max Memory Used: {max_memory_used_mb} MB",
    ]
    if init_duration_ms is not None:
        parts.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if status is not None:
        parts.append(f"Status: {status}")
    return "\t".join(parts) + "\t"


def init_report_line(init_duration_ms: float, status: str) -> str:
    """Written when init fails or times out before any invocation could start."""
    return f"INIT_REPORT Init Duration: {init_duration_ms:.2f} ms\tPhase: init\tStatus: {status}"


def tail(lines: list[str], limit: int = 4096) -> bytes:
    """The last `limit` bytes of an invocation's log, as `X-Amz-Log-Result` carries them."""
    data = "".join(line + "\n" for line in lines).encode()
    return data[-limit:]
