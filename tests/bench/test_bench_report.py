"""Ratios, targets and the Markdown table, from made-up measurements."""

from __future__ import annotations

from typing import Any

import pytest

from bench import report

LAMINA, NGINX, OFFLINE = report.LAMINA, report.NGINX, report.OFFLINE


def entry(function: str, system: str, connections: int, rps: list[float], p50: list[float]):
    rounds = [
        {"rps": r, "p50_ms": p, "p99_ms": p * 3, "wrk_cpu_percent": 20.0, "errors": 0}
        for r, p in zip(rps, p50, strict=True)
    ]
    return {
        "function": function,
        "system": system,
        "connections": connections,
        **report.summarize_runs(rounds),
        "rounds": rounds,
    }


WARM = [
    entry("python-noop", LAMINA, 1, [3000, 1500, 3300], [0.2, 0.4, 0.2]),
    entry("python-noop", OFFLINE, 1, [1000, 500, 1000], [0.6, 1.2, 0.5]),
    entry("python-noop", LAMINA, 8, [9000, 6000, 9900], [0.8, 1.0, 0.8]),
    entry("python-noop", OFFLINE, 8, [3000, 3000, 3000], [2.5, 2.5, 2.5]),
    entry("php-fpm-hello", LAMINA, 1, [3600, 3800, 4000], [0.25, 0.25, 0.25]),
    entry("php-fpm-hello", NGINX, 1, [4000, 4000, 4000], [0.2, 0.2, 0.2]),
]


def results() -> dict[str, Any]:
    found: dict[str, Any] = {"warm": WARM, "settings": {"rounds": 3, "wrk_seconds": 5}}
    found["ratios"] = report.ratios(WARM)
    found["cold_start"] = {
        "lamina-linux": {
            "python": report.summarize_samples([4.0, 4.5, 6.0]),
            "php-function": report.summarize_samples([14.0, 16.0, 20.0]),
        },
        report.OFFLINE: {"python": report.summarize_samples([60.0, 65.0, 70.0])},
    }
    found["memory"] = {
        "lamina-linux": {"python": {"pss_mib_per_env": 4.2}, "platform_pss_mib": 70.0}
    }
    found["targets"] = report.targets(found)
    return found


def test_a_summary_takes_medians_the_worst_wrk_cpu_and_all_errors() -> None:
    runs = [
        {"rps": 10.0, "p50_ms": 1.0, "p99_ms": 5.0, "wrk_cpu_percent": 30.0, "errors": 1},
        {"rps": 30.0, "p50_ms": 3.0, "p99_ms": 9.0, "wrk_cpu_percent": 95.0, "errors": 0},
        {"rps": 20.0, "p50_ms": 2.0, "p99_ms": 7.0, "wrk_cpu_percent": 40.0, "errors": 2},
    ]
    assert report.summarize_runs(runs) == {
        "rps": 20.0,
        "p50_ms": 2.0,
        "p99_ms": 7.0,
        "wrk_cpu_percent_max": 95.0,
        "errors": 3,
    }


def test_ratios_pair_the_rounds_before_taking_the_median() -> None:
    # Round by round the ratio is 3, 3, 3.3; the ratio of the medians would be 3.0 too, but a
    # slow round on both sides (round 2) must not move it.
    assert report.paired_ratio([3000, 1500, 3300], [1000, 500, 1000]) == 3.0
    assert report.paired_ratio([1.0, 2.0], [0.0, 1.0]) == 2.0  # a zero is skipped
    assert report.paired_ratio([], []) is None


def test_headline_ratios_are_lamina_over_the_peer_that_ran_the_same_function() -> None:
    found = {(r["function"], r["metric"], r["connections"]): r for r in report.ratios(WARM)}

    assert found["python-noop", "rps", 1]["value"] == 3.0
    assert found["python-noop", "rps", 8]["value"] == 3.0
    assert found["python-noop", "p50_ms", 1]["value"] == pytest.approx(0.333)
    assert found["php-fpm-hello", "rps", 1]["value"] == 0.95
    assert found["php-fpm-hello", "rps", 1]["peer"] == NGINX
    assert ("php-fpm-hello", "rps", 8) not in found  # nginx was not measured at 8


def test_targets_say_what_is_met_and_what_was_not_measured() -> None:
    targets = {t["figure"]: t for t in results()["targets"]}

    throughput = targets["Python no-op throughput at 8 conn, Lamina / serverless-offline"]
    assert (throughput["value"], throughput["target"], throughput["met"]) == (3.0, ">= 3", True)
    latency = targets["Python no-op p50 at 1 conn, Lamina / serverless-offline"]
    assert latency["met"] is False  # 0.333 > 0.33
    assert targets["cold start p50, Python, Linux sandbox (ms)"]["met"] is True
    assert targets["cold start p50, PHP function, Linux sandbox (ms)"]["met"] is False
    assert targets["idle Python environment, PSS, Linux sandbox (MiB)"]["met"] is True
    fpm_cold = targets["cold start p50, PHP-FPM, Linux sandbox (ms)"]
    assert (fpm_cold["value"], fpm_cold["met"]) == (None, None)


def test_the_table_shows_every_section_that_was_measured() -> None:
    text = report.markdown(results())

    assert "| Python no-op | 1 | lamina | 3,000 | 0.20 | 0.60 | — | — | — | 20.00 | 0 |" in text
    assert "| Python no-op | throughput | 8 | 3.00 | serverless-offline |" in text
    assert "| Python | 4.50 (6.00) | 60.00 (70.00) |" not in text  # columns in order:
    assert "| Python | 4.50 (6.00) | 65.00 (70.00) |" in text
    assert "| PHP-FPM | — | — |" in text
    assert "| Python | 4.20 |" in text
    assert "| idle Python environment, PSS, Linux sandbox (MiB) | 4.20 | <= 5 | yes |" in text
    assert "Scale-up" not in text  # not measured, no section


def test_keep_alive_figures_become_a_table_per_policy() -> None:
    figures = {
        "trace": {"functions": 40, "minutes": 1440},
        "policies": {
            "fixed-10min": {"cold_start_rate": 0.12, "idle_memory_mib_minutes": 900.0},
            "hybrid-histogram": {"cold_start_rate": 0.05, "idle_memory_mib_minutes": 610.5},
        },
    }

    assert report.policy_table(figures) == {
        "fixed-10min": {"cold_start_rate": 0.12, "idle_memory_mib_minutes": 900.0},
        "hybrid-histogram": {"cold_start_rate": 0.05, "idle_memory_mib_minutes": 610.5},
    }
    lines = report.keepalive_lines(figures)
    assert lines[0] == "| policy | cold_start_rate | idle_memory_mib_minutes |"
    assert "| hybrid-histogram | 0.05 | 610.50 |" in lines
    absent = {"available": False, "note": "bench/keepalive.py does not exist yet"}
    assert report.keepalive_lines(absent) == ["bench/keepalive.py does not exist yet"]
