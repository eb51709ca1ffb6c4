"""PNG charts of a results document (matplotlib, Agg backend: no display needed).

Each chart is one figure of bench/results/latest.json; a figure that was not measured
(a peer that could not run, keepalive.py absent) has no chart.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import report

COLOURS = {
    report.LAMINA: "#2a9d6f",
    "lamina-linux": "#2a9d6f",
    "lamina-plain": "#9bd3b8",
    report.OFFLINE: "#e07b39",
    report.NGINX: "#4c72b0",
}
# bench/keepalive.py, run as a script, writes keepalive.png itself: this name differs.
KEEPALIVE_CHART = "keepalive_policies.png"
TARGETS_MS = {"python": 5.0, "php-function": 15.0, "php-fpm": 25.0}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grouped(ax: Any, groups: Sequence[str], series: Mapping[str, Sequence[float | None]]) -> None:
    """Bars of each series side by side within each group; missing values leave a gap."""
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        heights = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(xs, heights, width, label=name, color=COLOURS.get(name))
        for bar, value in zip(bars, values, strict=True):
            if value is not None:
                ax.annotate(
                    f"{value:,.0f}" if value >= 100 else f"{value:.3g}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(range(len(groups)), groups, fontsize=8)


def _readable(ax: Any, log: bool = False) -> None:
    """Room above the bars for their labels and the legend; plain numbers on a log axis."""
    from matplotlib.ticker import FuncFormatter

    bottom, top = ax.get_ylim()
    if log:
        ax.set_yscale("log")
        ax.set_ylim(top=top * 4)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    else:
        ax.set_ylim(bottom, top * 1.3)
    ax.legend(fontsize=7, loc="upper left", ncols=3)


def _connections(n: int) -> str:
    return f"{n} connection" + ("" if n == 1 else "s")


def warm(results: Mapping[str, Any], out: Path) -> list[Path]:
    entries = results.get("warm", [])
    if not entries:
        return []
    plt = _pyplot()
    functions = [f for f in report.FUNCTIONS if any(e["function"] == f for e in entries)]
    labels = [report.FUNCTIONS[f].replace(" (", "\n(") for f in functions]
    systems = [
        s
        for s in (report.LAMINA, report.OFFLINE, report.NGINX)
        if any(e["system"] == s for e in entries)
    ]

    def values(metric: str, connections: int) -> dict[str, list[float | None]]:
        table: dict[str, list[float | None]] = {}
        for system in systems:
            row = []
            for function in functions:
                entry = report.find(entries, function, system, connections)
                row.append(entry[metric] if entry else None)
            table[system] = row
        return table

    paths = []
    fig, axes = plt.subplots(2, 1, figsize=(10, 8))
    for ax, connections in zip(axes, (1, 8), strict=True):
        _grouped(ax, labels, values("rps", connections))
        ax.set_title(f"Warm throughput, {_connections(connections)}")
        ax.set_ylabel("requests / s (median of rounds)")
        _readable(ax)
    fig.tight_layout()
    paths.append(out / "warm_throughput.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for row, metric in enumerate(("p50_ms", "p99_ms")):
        for col, connections in enumerate((1, 8)):
            ax = axes[row][col]
            _grouped(ax, labels, values(metric, connections))
            ax.set_title(f"Warm latency {metric[:3]}, {_connections(connections)}")
            ax.set_ylabel("ms (log scale)")
            ax.tick_params(axis="x", labelsize=6)
            _readable(ax, log=True)
    fig.tight_layout()
    paths.append(out / "warm_latency.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def ratios(results: Mapping[str, Any], out: Path) -> list[Path]:
    found = [r for r in results.get("ratios", []) if r["value"] is not None]
    if not found:
        return []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(found) + 1.5))
    names = [
        f"{report.FUNCTIONS[r['function']]}, "
        f"{'throughput' if r['metric'] == 'rps' else 'p50'}, {r['connections']} conn / {r['peer']}"
        for r in found
    ]
    colours = [COLOURS[r["peer"]] for r in found]
    ax.barh(range(len(found)), [r["value"] for r in found], color=colours)
    for i, r in enumerate(found):
        ax.annotate(f" {r['value']:.2f}x", (r["value"], i), va="center", fontsize=8)
    ax.set_yticks(range(len(found)), names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(1.0, color="grey", linewidth=1)
    ax.set_xlabel("Lamina / peer (median of round-by-round ratios; > 1: Lamina higher)")
    ax.set_title("Lamina against its peers, same run, interleaved")
    fig.tight_layout()
    path = out / "ratios.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def cold_start(results: Mapping[str, Any], out: Path) -> list[Path]:
    cold = results.get("cold_start", {})
    if not cold:
        return []
    plt = _pyplot()
    runtimes = list(report.RUNTIMES)
    series = {system: [(cold[system].get(r) or {}).get("p50") for r in runtimes] for system in cold}
    fig, ax = plt.subplots(figsize=(9, 5))
    _grouped(ax, [report.RUNTIMES[r] for r in runtimes], series)
    for i, runtime in enumerate(runtimes):
        ax.hlines(TARGETS_MS[runtime], i - 0.45, i + 0.45, colors="red", linestyles="dashed")
    ax.set_ylabel("ms, p50 (log scale); dashed: target")
    ax.set_title("Cold start: first request to a new environment")
    _readable(ax, log=True)
    fig.tight_layout()
    path = out / "cold_start.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def scale_up(results: Mapping[str, Any], out: Path) -> list[Path]:
    scale = results.get("scale_up", {})
    if not scale:
        return []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    keys = list(scale)
    values = [scale[k]["wall_minus_sleep_s"]["p50"] for k in keys]
    ax.bar(range(len(keys)), values, color=[COLOURS.get(k) for k in keys])
    for i, value in enumerate(values):
        ax.annotate(f"{value:.3f} s", (i, value), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(keys)), [report.INSTANCES.get(k, k) for k in keys], fontsize=8)
    ax.axhline(1.0, color="red", linestyle="dashed", linewidth=1)
    n = scale[keys[0]]["environments"]
    ax.set_ylabel("wall time - 0.5 s (p50); dashed: target")
    ax.set_title(f"0 -> {n} environments: {n} concurrent invocations of a 0.5 s function")
    fig.tight_layout()
    path = out / "scale_up.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def memory(results: Mapping[str, Any], out: Path) -> list[Path]:
    figures = results.get("memory", {})
    if not figures:
        return []
    plt = _pyplot()
    runtimes = list(report.RUNTIMES)
    series = {
        key: [(figures[key].get(r) or {}).get("pss_mib_per_env") for r in runtimes]
        for key in figures
    }
    fig, ax = plt.subplots(figsize=(8, 4.5))
    _grouped(ax, [report.RUNTIMES[r] for r in runtimes], series)
    ax.hlines(5.0, -0.45, 0.45, colors="red", linestyles="dashed")
    ax.set_ylabel("MiB PSS per idle environment; dashed: target")
    ax.set_title("Memory per idle environment")
    _readable(ax)
    fig.tight_layout()
    path = out / "memory.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def keepalive(results: Mapping[str, Any], out: Path) -> list[Path]:
    """bench/keepalive.py's own chart when it offers one (`chart(figures, path)`), else a bar
    per policy for each of its figures."""
    data = results.get("keepalive")
    if isinstance(data, Mapping) and "policies" in data:
        with contextlib.suppress(Exception):
            module = importlib.import_module("bench.keepalive")
            if hasattr(module, "chart") and module.chart(data, out / KEEPALIVE_CHART):
                return [out / KEEPALIVE_CHART]
    rows = report.policy_table(data) if isinstance(data, Mapping) else None
    if not rows:
        return []
    plt = _pyplot()
    figures = sorted({k for values in rows.values() for k in values})
    fig, axes = plt.subplots(1, len(figures), figsize=(4 * len(figures), 4), squeeze=False)
    policies = list(rows)
    for ax, figure in zip(axes[0], figures, strict=True):
        values = [rows[p].get(figure, 0.0) for p in policies]
        ax.bar(range(len(policies)), values, color="#2a9d6f")
        ax.set_xticks(range(len(policies)), policies, fontsize=8, rotation=15)
        ax.set_title(figure, fontsize=9)
    fig.suptitle("Keep-alive policies on a simulated trace")
    fig.tight_layout()
    path = out / KEEPALIVE_CHART
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def draw_all(results: Mapping[str, Any], out: Path) -> list[Path]:
    paths: list[Path] = []
    for chart in (warm, ratios, cold_start, scale_up, memory, keepalive):
        paths += chart(results, out)
    return paths
