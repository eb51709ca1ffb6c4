"""Figure 5: how long `lamina deploy` takes for examples/telegram-bot (a PHP-FPM and a
Python function, REST and ALB routes, a SecureString read at deploy time).

Each sample deploys a copy of the example to a new stage, so that every deploy creates its
functions, publishes their versions and installs its routes (the bundle is uploaded once:
later samples find it on the server, as a second stage would). The wall time of the whole
command is measured, and so is the CLI's start alone (`lamina --help`), which the deploy
pays too: the difference is the deploy's own work (reading, packaging, uploading, applying).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.systems import Lamina

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "telegram-bot"
TOKEN = "7391005:AAF-lamina-bench-token"


def run(
    lamina: Lamina, samples: int, work: Path, progress: Callable[[str], None]
) -> dict[str, Any]:
    service = work / "telegram-bot"
    shutil.copytree(EXAMPLE, service, ignore=shutil.ignore_patterns(".serverless", "__pycache__"))
    lamina.cli("params", "put", "/app/bot-token", TOKEN, "--type", "SecureString", cwd=service)
    walls, starts = [], []
    for i in range(samples):
        started = time.perf_counter()
        lamina.cli("--help", cwd=service)
        starts.append(time.perf_counter() - started)
        started = time.perf_counter()
        lamina.cli("deploy", "--stage", f"bench{i}", cwd=service)
        walls.append(time.perf_counter() - started)
        progress(f"deploy {i + 1}/{samples}: {walls[-1]:.2f} s (CLI start {starts[-1]:.2f} s)")
    return {
        "wall_s": report.summarize_samples(walls),
        "cli_start_s": report.summarize_samples(starts),
    }
