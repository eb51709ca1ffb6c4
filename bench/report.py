"""Pure functions from measurements to figures: medians, paired ratios, targets and the
Markdown table. No I/O, so that the tests can check them with made-up numbers.

Ratios are taken round by round (Lamina's run divided by the peer's run of the same round,
which ran a few seconds apart) and the median of those is reported: the machine drifts
over minutes, so a ratio of two medians taken far apart would carry the drift.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

LAMINA = "lamina"
OFFLINE = "serverless-offline"
NGINX = "nginx+php-fpm"

FUNCTIONS = {
    "python-noop": "Python no-op",
    "python-echo": "Python JSON echo (1 KB)",
    "php-function": "PHP function (Bref function runtime)",
    "php-fpm-hello": "PHP-FPM hello",
    "php-fpm-framework": "PHP-FPM framework page",
}
RUNTIMES = {"python": "Python", "php-function": "PHP function", "php-fpm": "PHP-FPM"}
INSTANCES = {"lamina-linux": "Lamina, Linux sandbox", "lamina-plain": "Lamina, plain processes"}


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summarize_samples(samples: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """p50, p90 and min of a list of samples, and the samples themselves."""
    return {
        "p50": round(median(samples), digits),
        "p90": round(percentile(samples, 0.9), digits),
        "min": round(min(samples), digits),
        "n": len(samples),
        "samples": [round(s, digits) for s in samples],
    }


def summarize_runs(runs: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """Median throughput, latencies and server CPU of one (function, system, connections)
    over rounds; the highest wrk CPU use and the sum of errors, which are warnings."""
    summary: dict[str, Any] = {
        "rps": round(median(r["rps"] for r in runs), 1),
        "p50_ms": round(median(r["p50_ms"] for r in runs), 3),
        "p99_ms": round(median(r["p99_ms"] for r in runs), 3),
        "wrk_cpu_percent_max": max(r["wrk_cpu_percent"] for r in runs),
        "errors": int(sum(r["errors"] for r in runs)),
    }
    for key in ("server_cpu_percent", "main_cpu_percent", "server_cpu_ms_per_request"):
        if all(key in r for r in runs):
            summary[key] = round(median(r[key] for r in runs), 4)
    return summary


def find(warm: Sequence[Mapping[str, Any]], function: str, system: str, connections: int):
    for entry in warm:
        if (entry["function"], entry["system"], entry["connections"]) == (
            function,
            system,
            connections,
        ):
            return entry
    return None


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float | None:
    """Median of round-by-round ratios (rounds paired in order)."""
    pairs = [n / d for n, d in zip(numerator, denominator, strict=False) if d]
    return round(median(pairs), 3) if pairs else None


# (function, metric, connections, peer): the ratios the README's promises are about.
HEADLINE = [
    ("python-noop", "rps", 1, OFFLINE),
    ("python-noop", "rps", 8, OFFLINE),
    ("python-noop", "p50_ms", 1, OFFLINE),
    ("python-echo", "rps", 1, OFFLINE),
    ("python-echo", "rps", 8, OFFLINE),
    ("php-fpm-hello", "rps", 1, NGINX),
    ("php-fpm-hello", "rps", 8, NGINX),
    ("php-fpm-framework", "rps", 1, NGINX),
    ("php-fpm-framework", "rps", 8, NGINX),
]


def ratios(warm: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Lamina / peer for each headline figure that both sides measured."""
    found = []
    for function, metric, connections, peer in HEADLINE:
        ours = find(warm, function, LAMINA, connections)
        theirs = find(warm, function, peer, connections)
        if ours is None or theirs is None:
            continue
        value = paired_ratio(
            [r[metric] for r in ours["rounds"]], [r[metric] for r in theirs["rounds"]]
        )
        found.append(
            {
                "function": function,
                "metric": metric,
                "connections": connections,
                "peer": peer,
                "value": value,
                "name": f"{function} {metric} at {connections} conn: Lamina / {peer}",
            }
        )
    return found


def ratio_value(
    found: Sequence[Mapping[str, Any]], function: str, metric: str, connections: int
) -> float | None:
    for r in found:
        if (r["function"], r["metric"], r["connections"]) == (function, metric, connections):
            value: float | None = r["value"]
            return value
    return None


def _dig(tree: Mapping[str, Any], *keys: str) -> Any:
    node: Any = tree
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target of the anchors with the measured value and whether it is met."""
    found = results.get("ratios", [])
    rows: list[tuple[str, float | None, str, float]] = [
        (
            "Python no-op throughput at 8 conn, Lamina / serverless-offline",
            ratio_value(found, "python-noop", "rps", 8),
            ">=",
            3.0,
        ),
        (
            "Python no-op p50 at 1 conn, Lamina / serverless-offline",
            ratio_value(found, "python-noop", "p50_ms", 1),
            "<=",
            0.33,
        ),
        (
            "PHP-FPM hello throughput at 1 conn, Lamina / nginx+php-fpm",
            ratio_value(found, "php-fpm-hello", "rps", 1),
            ">=",
            0.9,
        ),
        (
            "PHP-FPM hello throughput at 8 conn, Lamina / nginx+php-fpm",
            ratio_value(found, "php-fpm-hello", "rps", 8),
            ">=",
            0.9,
        ),
        (
            "cold start p50, Python, Linux sandbox (ms)",
            _dig(results, "cold_start", "lamina-linux", "python", "p50"),
            "<=",
            5.0,
        ),
        (
            "cold start p50, PHP function, Linux sandbox (ms)",
            _dig(results, "cold_start", "lamina-linux", "php-function", "p50"),
            "<=",
            15.0,
        ),
        (
            "cold start p50, PHP-FPM, Linux sandbox (ms)",
            _dig(results, "cold_start", "lamina-linux", "php-fpm", "p50"),
            "<=",
            25.0,
        ),
        (
            "0 -> N environments, wall - 0.5 s, Linux sandbox (s)",
            _dig(results, "scale_up", "lamina-linux", "wall_minus_sleep_s", "p50"),
            "<",
            1.0,
        ),
        (
            "idle Python environment, PSS, Linux sandbox (MiB)",
            _dig(results, "memory", "lamina-linux", "python", "pss_mib_per_env"),
            "<=",
            5.0,
        ),
    ]
    checks = {">=": float.__ge__, "<=": float.__le__, "<": float.__lt__}
    return [
        {
            "figure": figure,
            "value": value,
            "target": f"{op} {bound:g}",
            "met": None if value is None else bool(checks[op](float(value), bound)),
        }
        for figure, value, op, bound in rows
    ]


# Markdown


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |"
        for row in rows
    ]
    return lines


def markdown(results: Mapping[str, Any]) -> str:
    """The whole report as Markdown: machine, warm figures, ratios, cold starts, scale-up,
    memory, deploy, keep-alive and the targets."""
    out: list[str] = []
    machine = results.get("machine", {})
    out.append(
        f"Measured {results.get('date', '?')} on {machine.get('cpus', '?')} CPUs, "
        f"Linux {machine.get('kernel', '?')}, Lamina at {machine.get('lamina_commit', '?')}; "
        f"{results.get('settings', {}).get('rounds', '?')} interleaved rounds of "
        f"{results.get('settings', {}).get('wrk_seconds', '?')} s per wrk run."
    )
    out.append("")
    warm = results.get("warm", [])
    if warm:
        out += ["### Warm requests over HTTP", ""]
        out += _table(
            [
                "function",
                "conn",
                "system",
                "req/s",
                "p50 ms",
                "p99 ms",
                "server CPU %",
                "main process CPU %",
                "server CPU ms/req",
                "wrk CPU % (max)",
                "errors",
            ],
            (
                (
                    FUNCTIONS.get(e["function"], e["function"]),
                    e["connections"],
                    e["system"],
                    round(e["rps"]),
                    e["p50_ms"],
                    e["p99_ms"],
                    e.get("server_cpu_percent"),
                    e.get("main_cpu_percent"),
                    e.get("server_cpu_ms_per_request"),
                    e["wrk_cpu_percent_max"],
                    e["errors"],
                )
                for e in warm
            ),
        )
        out.append("")
    found = results.get("ratios", [])
    if found:
        out += ["### Ratios (median of round-by-round ratios)", ""]
        out += _table(
            ["function", "figure", "conn", "Lamina / peer", "peer"],
            (
                (
                    FUNCTIONS.get(r["function"], r["function"]),
                    "throughput" if r["metric"] == "rps" else "p50 latency",
                    r["connections"],
                    r["value"],
                    r["peer"],
                )
                for r in found
            ),
        )
        out.append("")
    cold = results.get("cold_start", {})
    if cold:
        out += ["### Cold start: first request to a new environment, p50 ms (p90)", ""]
        columns = [k for k in (*INSTANCES, OFFLINE) if k in cold]
        out += _table(
            ["runtime", *(INSTANCES.get(c, c) for c in columns)],
            (
                (label, *(_p50_p90(cold[c].get(runtime)) for c in columns))
                for runtime, label in RUNTIMES.items()
            ),
        )
        out.append("")
    scale = results.get("scale_up", {})
    if scale:
        out += ["### Scale-up: N concurrent invocations of a new 0.5 s function", ""]
        out += _table(
            ["instance", "environments", "wall - 0.5 s, p50 (s)", "max init, p50 (ms)"],
            (
                (
                    INSTANCES.get(k, k),
                    v["environments"],
                    v["wall_minus_sleep_s"]["p50"],
                    v["max_init_ms"]["p50"],
                )
                for k, v in scale.items()
            ),
        )
        out.append("")
    memory = results.get("memory", {})
    if memory:
        out += ["### Memory per idle environment (PSS, MiB)", ""]
        columns = list(memory)
        out += _table(
            ["runtime", *(INSTANCES.get(c, c) for c in columns)],
            (
                (label, *(_dig(memory, c, runtime, "pss_mib_per_env") for c in columns))
                for runtime, label in RUNTIMES.items()
            ),
        )
        platform = [(c, _dig(memory, c, "platform_pss_mib")) for c in columns]
        out.append("")
        out.append(
            "Lamina's own processes besides the environments (server, nursery, prepared "
            "sandboxes), PSS: "
            + ", ".join(f"{INSTANCES.get(c, c)} {fmt(v)} MiB" for c, v in platform)
            + "."
        )
        out.append("")
    deploy = results.get("deploy", {})
    if deploy:
        out += ["### Deploy time of examples/telegram-bot (`lamina deploy`, new stage)", ""]
        out += _table(
            ["what", "p50 (s)", "min (s)", "samples"],
            (
                (
                    "whole command, wall",
                    deploy["wall_s"]["p50"],
                    deploy["wall_s"]["min"],
                    deploy["wall_s"]["n"],
                ),
                (
                    "the CLI's start alone (`lamina --help`)",
                    deploy["cli_start_s"]["p50"],
                    deploy["cli_start_s"]["min"],
                    deploy["cli_start_s"]["n"],
                ),
            ),
        )
        out.append("")
    keepalive = results.get("keepalive")
    if keepalive is not None:
        out += ["### Keep-alive policies (simulated trace, bench/keepalive.py)", ""]
        out += keepalive_lines(keepalive)
        out.append("")
    goals = results.get("targets", [])
    if goals:
        out += ["### Targets", ""]
        out += _table(
            ["figure", "measured", "target", "met"],
            ((t["figure"], t["value"], t["target"], t["met"]) for t in goals),
        )
        out.append("")
    notes = results.get("notes", [])
    if notes:
        out += ["### Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


def _p50_p90(summary: Mapping[str, Any] | None) -> str:
    if not summary:
        return "—"
    return f"{fmt(summary['p50'])} ({fmt(summary['p90'])})"


def policy_table(keepalive: Mapping[str, Any]) -> dict[str, dict[str, int | float]] | None:
    """The policies and their numeric figures, wherever keepalive.py put them: a mapping of
    policy name to a mapping of figure to number, at the top or one level down."""
    candidates = [keepalive, *(v for v in keepalive.values() if isinstance(v, Mapping))]
    for candidate in candidates:
        rows = {
            str(name): {
                str(k): v
                for k, v in figures.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            for name, figures in candidate.items()
            if isinstance(figures, Mapping)
        }
        rows = {name: figures for name, figures in rows.items() if figures}
        if len(rows) >= 2:
            return rows
    return None


def keepalive_lines(keepalive: Mapping[str, Any]) -> list[str]:
    if keepalive.get("available") is False or "error" in keepalive:
        return [str(keepalive.get("error") or keepalive.get("note") or "not available")]
    rows = policy_table(keepalive)
    if rows is None:
        return _table(["figure", "value"], ((str(k), _scalar(v)) for k, v in keepalive.items()))
    figures = sorted({k for values in rows.values() for k in values})
    return _table(
        ["policy", *figures],
        ((name, *(values.get(f) for f in figures)) for name, values in rows.items()),
    )


def _scalar(value: Any) -> str:
    return fmt(value) if isinstance(value, int | float | bool | str) or value is None else "…"
