"""wrk's report, parsed: the figures the benchmark is built on."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import wrk

REPORT = """\
Running 5s test @ http://127.0.0.1:40011/bench/dev/noop
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.20ms   16.35ms 173.42ms   96.50%
    Req/Sec     1.20k   150.00     1.50k    70.00%
  Latency Distribution
     50%  812.00us
     75%    6.63ms
     90%   10.01ms
     99%    1.12s
  5951 requests in 5.00s, 0.97MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   1190.09
Transfer/sec:    198.70KB
"""


def test_a_report_gives_throughput_percentiles_and_errors() -> None:
    result = wrk.parse(REPORT, cpu_percent=37.26)

    assert result.rps == 1190.09
    assert result.p50_ms == pytest.approx(0.812)
    assert result.p99_ms == pytest.approx(1120.0)
    assert result.requests == 5951
    assert result.errors == 2 + 1 + 4
    assert result.wrk_cpu_percent == 37.3


def test_a_clean_run_has_no_errors() -> None:
    clean = "\n".join(
        line for line in REPORT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    assert wrk.parse(clean).errors == 0


@pytest.mark.parametrize(
    ("text", "ms"),
    [("812.00us", 0.812), ("1.20ms", 1.2), ("3.01s", 3010.0), ("1.00m", 60000.0)],
)
def test_durations_in_every_unit_become_milliseconds(text: str, ms: float) -> None:
    assert wrk.duration_ms(text) == pytest.approx(ms)


def test_something_else_is_refused() -> None:
    with pytest.raises(ValueError, match="not a wrk --latency report"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused")
    with pytest.raises(ValueError, match="not a wrk duration"):
        wrk.duration_ms("12 parsecs")


def test_the_post_script_carries_the_body(tmp_path: Path) -> None:
    script = wrk.post_script(tmp_path, b'{"items": [1, 2]}').read_text()

    assert 'wrk.method = "POST"' in script
    assert 'wrk.headers["Content-Type"] = "application/json"' in script
    assert 'wrk.body = [==[{"items": [1, 2]}]==]' in script
