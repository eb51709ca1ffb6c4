"""The small pure pieces of the harness: request bodies, events, process trees, charts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import catalog, procs, report, warm


def test_the_echo_body_is_about_one_kilobyte_of_json_and_always_the_same() -> None:
    body = warm.echo_body()

    assert 900 < len(body) <= 1024
    assert json.loads(body)["items"][0] == {
        "id": 0,
        "name": "item-0",
        "tags": ["a", "b"],
        "price": 0.0,
    }
    assert warm.echo_body() == body


def test_php_fpm_gets_an_http_event_and_the_others_a_plain_payload() -> None:
    event = json.loads(catalog.sleep_payload("php-fpm", 0.5))

    assert event["version"] == "2.0"
    assert (event["rawPath"], event["rawQueryString"]) == ("/sleep", "seconds=0.5")
    assert event["queryStringParameters"] == {"seconds": "0.5"}
    assert event["requestContext"]["http"]["method"] == "GET"
    assert json.loads(catalog.sleep_payload("python", 0.5)) == {"seconds": 0.5}
    assert json.loads(catalog.noop_payload("php-function")) == {}


def test_descendants_walk_the_whole_tree() -> None:
    tree = {1: [2, 3], 2: [4], 4: [5], 9: [10]}

    assert sorted(procs.descendants(1, tree)) == [1, 2, 3, 4, 5]
    assert procs.descendants(7, tree) == [7]


def test_this_process_has_a_pss_and_a_cpu_time() -> None:
    assert procs.pss_kib(os.getpid()) > 0
    assert procs.cpu_seconds(os.getpid()) > 0
    assert os.getpid() in procs.descendants(os.getppid(), procs.children_map())


def test_a_chart_is_drawn_for_each_figure_measured_and_only_for_those(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from bench import charts

    results = {
        "cold_start": {
            "lamina-linux": {"python": report.summarize_samples([5.0, 6.0])},
            report.OFFLINE: {"python": report.summarize_samples([60.0, 70.0])},
        },
        "keepalive": {"available": False, "note": "bench/keepalive.py does not exist yet"},
    }

    drawn = charts.draw_all(results, tmp_path)

    assert [p.name for p in drawn] == ["cold_start.png"]
    assert drawn[0].read_bytes().startswith(b"\x89PNG")
