"""Lamina against its peers on this machine, in one run.

    .venv/bin/python bench/run.py [--quick] [--rounds N]      (or: scripts/bench [--quick])

Starts two Lamina servers (the default sandbox, LAMINA_SANDBOX=auto, and plain processes),
serverless-offline and nginx + php-fpm, each on free ports with temporary state, and
measures them on the functions in bench/functions/:

1. warm latency and throughput over HTTP with wrk, the systems interleaved round by round;
2. cold starts (first request to a new environment);
3. scale-up from 0 to N environments;
4. memory per idle environment;
5. deploy time of examples/telegram-bot;
6. keep-alive policies, from bench/keepalive.py when it exists.

Writes bench/results/latest.json, latest.md and PNG charts. The machine drifts over minutes,
so the ratios between systems measured in the same round are the figures to trust; the
absolute numbers only hold for this run. Progress goes to stderr. docs/performance.md
describes the method.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import capacity, coldstart, deploytime, report, warm  # noqa: E402
from bench.lambda_client import zip_tree  # noqa: E402
from bench.systems import OFFLINE_DIR, Lamina, NginxPhpFpm, ServerlessOffline  # noqa: E402

BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
FUNCTIONS = BENCH / "functions"
STARTED = time.monotonic()


def progress(message: str) -> None:
    elapsed = time.monotonic() - STARTED
    print(f"[{elapsed:6.0f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Plan:
    """How long each phase runs; --quick shortens everything for a smoke run."""

    quick: bool
    rounds: int
    wrk_seconds: int
    warmup_seconds: int
    cold_samples: int
    scale_environments: int
    scale_repeats: int
    memory_environments: int
    deploy_samples: int
    wrk_cpu: int


def plan_for(quick: bool, rounds: int | None) -> Plan:
    cpu = (os.cpu_count() or 1) - 1  # wrk's CPU: the last one
    if quick:
        return Plan(True, rounds or 1, 2, 1, 3, 20, 1, 4, 1, cpu)
    return Plan(False, rounds or 5, 5, 1, 15, 100, 3, 8, 3, cpu)


# what must be installed


def missing_tools() -> dict[str, str]:
    """What is missing, and what it stops."""
    missing = {}
    for tool in ("wrk", "taskset", "php"):
        if shutil.which(tool) is None:
            missing[tool] = "required"
    if shutil.which("nginx", path="/usr/sbin:/usr/bin:" + os.environ.get("PATH", "")) is None:
        missing["nginx"] = "no nginx + php-fpm peer"
    try:
        from bench.systems import php_fpm_binary

        php_fpm_binary()
    except FileNotFoundError:
        missing["php-fpm"] = "required"
    if shutil.which("node") is None or not (OFFLINE_DIR / "node_modules" / "serverless").is_dir():
        missing["serverless-offline (node, npm ci)"] = "no serverless-offline peer"
    if importlib.util.find_spec("matplotlib") is None:
        missing["matplotlib"] = "no charts"
    return missing


def ensure_tools(run_setup: bool) -> dict[str, str]:
    missing = missing_tools()
    if missing and run_setup:
        progress(f"missing: {', '.join(missing)}; running bench/setup.sh")
        done = subprocess.run(["bash", str(BENCH / "setup.sh")], check=False)
        if done.returncode != 0:
            progress(f"bench/setup.sh failed ({done.returncode})")
        importlib.invalidate_caches()
        missing = missing_tools()
    required = [tool for tool, effect in missing.items() if effect == "required"]
    if required:
        sys.exit(
            f"bench/run.py needs {', '.join(required)}: run bench/setup.sh "
            "(apt-get install wrk nginx php8.2-cli php8.2-fpm; npm ci in "
            "bench/peers/serverless-offline; .venv/bin/pip install -e '.[bench]')"
        )
    for tool, effect in missing.items():
        progress(f"warning: {tool} is missing: {effect}")
    return missing


# machine facts


def _version(argv: list[str], pattern_line: int = 0) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[pattern_line].strip() if lines else None


def _package_version(name: str) -> str | None:
    path = OFFLINE_DIR / "node_modules" / name / "package.json"
    with contextlib.suppress(OSError, ValueError):
        version: str = json.loads(path.read_text())["version"]
        return version
    return None


def machine_facts() -> dict[str, Any]:
    os_name = None
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    commit = _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _version(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"])
    memory_kib = None
    with contextlib.suppress(OSError):
        memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(memory_kib / 1024**2, 1) if memory_kib else None,
        "kernel": platform.release(),
        "os": os_name,
        "python_lamina": platform.python_version(),
        "python_handlers": _version(["/usr/bin/python3", "--version"]),
        "node": _version(["node", "--version"]),
        "php": _version(["php", "--version"]),
        "nginx": _version(["nginx", "-v"]),
        "wrk": _version(["wrk", "-v"]),
        "serverless": _package_version("serverless"),
        "serverless_offline": _package_version("serverless-offline"),
        "lamina_commit": (commit or "?") + ("+changes" if dirty else ""),
    }


# the projects


def prepare_projects(work: Path, cold_functions: int) -> tuple[Path, Path]:
    """Two copies of bench/functions: one for Lamina and nginx, one for serverless-offline
    with a Python function per cold-start sample (cold01, ...), all on the no-op handler."""
    import yaml

    ignore = shutil.ignore_patterns(".serverless", "node_modules", "__pycache__")
    project = work / "functions"
    shutil.copytree(FUNCTIONS, project, ignore=ignore)
    offline = work / "offline"
    shutil.copytree(FUNCTIONS, offline, ignore=ignore)
    config = yaml.safe_load((offline / "serverless.yml").read_text())
    for i in range(cold_functions):
        config["functions"][coldstart.offline_name(i)] = {"handler": "python/handler.noop"}
    (offline / "serverless.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return project, offline


def guarded(name: str, notes: list[str], action: Callable[[], Any]) -> Any:
    """Run one phase; a phase that fails is noted and the others still run."""
    try:
        return action()
    except Exception as exc:
        progress(f"{name} failed: {exc}")
        traceback.print_exc(file=sys.stderr)
        notes.append(f"{name} failed: {str(exc).splitlines()[0] if str(exc) else exc!r}")
        return None


def keepalive_figures() -> dict[str, Any]:
    """bench/keepalive.py's figures when the module exists."""
    if importlib.util.find_spec("bench.keepalive") is None:
        return {"available": False, "note": "bench/keepalive.py does not exist yet"}
    module = importlib.import_module("bench.keepalive")
    figures: dict[str, Any] = module.run(lambda message: progress(f"keep-alive: {message}"))
    return figures


# the run


def measure(plan: Plan, missing: dict[str, str], work: Path) -> dict[str, Any]:
    notes: list[str] = [
        "PHP function (Bref's function runtime): Lamina only; no peer that runs here runs "
        "Bref's function runtime (serverless-offline has no `provided` runtime).",
        f"wrk: one thread pinned to CPU {plan.wrk_cpu} with taskset; the servers are not "
        "pinned. wrk CPU % is the share of that one CPU wrk used during the run.",
    ]
    project, offline_project = prepare_projects(work, plan.cold_samples)
    code = zip_tree(FUNCTIONS)
    systems: list[Any] = []
    results: dict[str, Any] = {}
    try:
        progress("starting Lamina (LAMINA_SANDBOX=auto)")
        default = Lamina("auto", work)
        systems.append(default)
        default.start()
        progress(f"starting Lamina (LAMINA_SANDBOX=plain); the default runs {default.driver}")
        plain = Lamina("plain", work)
        systems.append(plain)
        plain.start()
        laminas = {f"lamina-{default.driver}": default, "lamina-plain": plain}
        if default.driver == "plain":
            notes.append("the default sandbox is plain processes here: no Linux sandbox figures")
            laminas = {"lamina-plain": plain}
        progress("deploying bench/functions to Lamina")
        default.cli("deploy", cwd=project)
        bases = {report.LAMINA: default.data_url + "/bench/dev"}
        roots = {report.LAMINA: default.pids()}
        mains = {report.LAMINA: default.pids()[0]}
        offline = None
        if not any(k.startswith("serverless-offline") for k in missing):
            progress("starting serverless-offline")
            offline = ServerlessOffline(offline_project)
            systems.append(offline)
            try:
                offline.start()
                bases[report.OFFLINE] = offline.data_url
                roots[report.OFFLINE] = offline.pids()
                mains[report.OFFLINE] = offline.pids()[0]
            except Exception as exc:
                notes.append(f"serverless-offline did not start: {exc}")
                progress(f"serverless-offline did not start: {exc}\n{offline.log()}")
                offline = None
        else:
            notes.append("serverless-offline is not installed: no serverless-offline figures")
        if "nginx" not in missing:
            progress("starting nginx + php-fpm")
            nginx = NginxPhpFpm(project, work)
            systems.append(nginx)
            try:
                nginx.start()
                bases[report.NGINX] = nginx.data_url
                roots[report.NGINX] = nginx.pids()
            except Exception as exc:
                notes.append(f"nginx + php-fpm did not start: {exc}")
                progress(f"nginx + php-fpm did not start: {exc}\n{nginx.log()}")
        else:
            notes.append("nginx is not installed: no nginx + php-fpm figures")

        progress(f"warm: {', '.join(bases)}; {plan.rounds} rounds of {plan.wrk_seconds} s runs")
        results["warm"] = guarded(
            "warm",
            notes,
            lambda: warm.run(
                bases,
                roots,
                mains,
                plan.rounds,
                plan.wrk_seconds,
                plan.warmup_seconds,
                plan.wrk_cpu,
                work,
                progress,
            ),
        )
        # Each phase after this one starts from an empty pool: the warm phase's environments
        # (1,769 MB each) would otherwise hold most of the node's memory budget.
        guarded("removing the warm functions", notes, lambda: default.cli("remove", cwd=project))
        progress(f"cold start: {plan.cold_samples} samples per runtime and system")
        results["cold_start"] = guarded(
            "cold start",
            notes,
            lambda: coldstart.run(laminas, offline, plan.cold_samples, code, progress),
        )
        progress(f"scale-up: 0 -> {plan.scale_environments} environments")
        results["scale_up"] = guarded(
            "scale-up",
            notes,
            lambda: capacity.scale_up(
                laminas, plan.scale_environments, plan.scale_repeats, code, progress
            ),
        )
        progress(f"memory: {plan.memory_environments} idle environments per runtime")
        results["memory"] = guarded(
            "memory",
            notes,
            lambda: capacity.idle_memory(laminas, plan.memory_environments, code, progress),
        )
        progress("deploy time of examples/telegram-bot")
        results["deploy"] = guarded(
            "deploy",
            notes,
            lambda: deploytime.run(default, plan.deploy_samples, work, progress),
        )
    finally:
        for system in reversed(systems):
            progress(f"stopping {system!r}")
            with contextlib.suppress(Exception):
                system.stop()
    progress("keep-alive policies")
    results["keepalive"] = guarded("keep-alive", notes, keepalive_figures)
    for entry in results.get("warm") or []:
        if entry["wrk_cpu_percent_max"] >= 90:
            notes.append(
                f"{entry['function']} {entry['connections']} conn {entry['system']}: wrk used "
                f"{entry['wrk_cpu_percent_max']:.0f} % of its CPU: the client may set the pace"
            )
        if entry["errors"]:
            notes.append(
                f"{entry['function']} {entry['connections']} conn {entry['system']}: "
                f"{entry['errors']} failed requests"
            )
    results["notes"] = notes
    return {k: v for k, v in results.items() if v is not None}


def write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    charts: list[Path] = []
    if importlib.util.find_spec("matplotlib") is not None:
        from bench import charts as charting

        charts = charting.draw_all(results, out)
    lines = ["# Lamina against its peers: latest run", "", report.markdown(results)]
    if charts:
        lines += ["### Charts", ""] + [f"![{p.stem}]({p.name})" for p in charts] + [""]
    (out / "latest.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases: a smoke run")
    parser.add_argument(
        "--rounds", type=int, help="interleaved warm rounds (default 5; 1 with --quick)"
    )
    parser.add_argument("--no-setup", action="store_true", help="do not run bench/setup.sh")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument(
        "--render", action="store_true", help="measure nothing: redo latest.md and the charts"
    )
    args = parser.parse_args(argv)
    if args.render:
        write(json.loads((args.out / "latest.json").read_text()), args.out)
        progress(f"rendered {args.out / 'latest.md'} from {args.out / 'latest.json'}")
        return
    plan = plan_for(args.quick, args.rounds)
    missing = ensure_tools(not args.no_setup)
    work = Path(tempfile.mkdtemp(prefix="lamina-bench-"))
    progress(f"work directory {work}; plan {asdict(plan)}")
    started = datetime.datetime.now(datetime.UTC)
    try:
        figures = measure(plan, missing, work)
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": round(time.monotonic() - STARTED),
        "command": "bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_facts(),
        "settings": asdict(plan),
        "units": {
            "rps": "requests per second",
            "*_ms": "milliseconds",
            "*_s": "seconds",
            "*_mib": "MiB (2^20 bytes) of proportional set size",
            "wrk_cpu_percent": "percent of the one CPU wrk is pinned to",
            "ratios": "Lamina / peer, median of round-by-round ratios",
        },
        **figures,
    }
    results["ratios"] = report.ratios(results.get("warm", []))
    results["targets"] = report.targets(results)
    write(results, args.out)
    progress(f"wrote {args.out / 'latest.json'} and {args.out / 'latest.md'}")
    print(report.markdown(results))


if __name__ == "__main__":
    main()
