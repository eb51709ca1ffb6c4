"""Schedules against a real `lamina up`: a malformed expression refuses the deploy naming
the rule; `lamina schedules` lists next firing times; an every-minute rule fires its function
with EventBridge's Scheduled Event through the async queue (the one slow test: it waits for
the wall clock's next minute, as nothing in the product fakes time)."""

from __future__ import annotations

import re
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.harness import LaminaServer, wait_until
from tests.e2e.test_async_retry_e2e import APP, Collector, cli

pytestmark = pytest.mark.e2e

HEAD = """
service: clock
provider:
  name: aws
  runtime: python3.12
  environment:
    COLLECTOR: {url}
functions:
"""


def project(tmp_path: Path, collector: Collector, functions: str) -> Path:
    root = tmp_path / "clock"
    root.mkdir(exist_ok=True)
    (root / "app.py").write_text(APP)
    text = HEAD.format(url=collector.url) + textwrap.indent(textwrap.dedent(functions), "  ")
    (root / "serverless.yml").write_text(text)
    return root


@pytest.fixture
def collector() -> Any:
    found = Collector()
    yield found
    found.close()


def test_a_malformed_expression_refuses_the_deploy_with_the_rule(
    lamina: LaminaServer, collector: Collector, tmp_path: Path
) -> None:
    root = project(
        tmp_path,
        collector,
        """
        tick:
          handler: app.record
          events:
            - schedule: cron(0 25 * * ? *)
            - schedule: rate(1 hours)
        """,
    )
    result = cli(lamina, root, "deploy")

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: serverless.yml:13: functions.tick.events[0].schedule: 'cron(0 25 * * ? *)': "
        "hours field '25': 25 is out of range 0-23",
        "error: serverless.yml:14: functions.tick.events[1].schedule: 'rate(1 hours)': with a "
        "value of 1 the unit must be singular (hour)",
    ]
    assert lamina.get("/lamina/v1/schedules") == {"schedules": []}


def test_a_bad_time_zone_is_refused_by_the_server(
    lamina: LaminaServer, collector: Collector, tmp_path: Path
) -> None:
    root = project(
        tmp_path,
        collector,
        """
        tick:
          handler: app.record
          events:
            - schedule: {rate: "cron(0 9 * * ? *)", timezone: Mars/Olympus}
        """,
    )
    result = cli(lamina, root, "deploy")

    assert result.returncode == 1
    assert "timezone = 'Mars/Olympus': not a known IANA time zone" in result.stderr


def test_schedules_lists_next_firings_in_each_rule_s_time_zone(
    lamina: LaminaServer, collector: Collector, tmp_path: Path
) -> None:
    root = project(
        tmp_path,
        collector,
        """
        nightly:
          handler: app.record
          events:
            - schedule:
                rate: cron(0 0-6 ? * MON-FRI *)
                timezone: Europe/Paris
                name: nightly-batch
            - schedule:
                rate: rate(1 day)
                enabled: false
        """,
    )
    deployed = cli(lamina, root, "deploy")
    assert deployed.returncode == 0, deployed.stderr

    listed = cli(lamina, root, "schedules")

    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert set(rows) == {"nightly-batch", "clock-dev-nightly-schedule-2"}
    assert re.search(r"\d{4}-\d\d-\d\d 0[0-6]:00:00 CES?T", rows["nightly-batch"])
    assert "disabled" in rows["clock-dev-nightly-schedule-2"]
    (rule,) = [r for r in lamina.get("/lamina/v1/schedules")["schedules"] if r["enabled"]]
    assert rule["arn"] == "arn:aws:events:us-east-1:000000000000:rule/nightly-batch"
    assert rule["function"] == "clock-dev-nightly"
    assert rule["qualifier"] == "1"  # the version the deployment published


def test_an_every_minute_schedule_fires_with_the_scheduled_event(
    lamina: LaminaServer, collector: Collector, tmp_path: Path
) -> None:
    root = project(
        tmp_path,
        collector,
        """
        tick:
          handler: app.record
          events:
            - schedule: cron(* * * * ? *)
        """,
    )
    deployed = cli(lamina, root, "deploy")
    assert deployed.returncode == 0, deployed.stderr
    (rule,) = lamina.get("/lamina/v1/schedules")["schedules"]
    due = datetime.fromisoformat(rule["nextFire"].replace("Z", "+00:00"))
    assert due.second == 0 and 0 < (due - datetime.now(UTC)).total_seconds() <= 60

    # The next minute, plus a cold start.
    wait = (due - datetime.now(UTC)).total_seconds() + 20
    reports = wait_until(lambda: collector.of("record"), timeout=wait, interval=0.2)
    fired_at = time.time()

    (_, report) = reports[0]
    event = report["event"]
    assert event == {
        "version": "0",
        "id": event["id"],
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": due.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/clock-dev-tick-schedule-1"],
        "detail": {},
    }
    assert fired_at >= due.timestamp()
    # It went through the async queue (a request id of its own, retries would apply).
    succeeded = wait_until(
        lambda: lamina.get("/lamina/v1/events?status=succeeded&function=clock-dev-tick")["events"]
    )
    assert succeeded[0]["id"] == report["id"]
    (after,) = lamina.get("/lamina/v1/schedules")["schedules"]
    assert after["lastFired"] is not None
    assert after["nextFire"] > rule["nextFire"]
