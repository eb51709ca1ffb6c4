"""Schedules: rules fire through the async queue on time, once after missed firings, keep
their last firing across restarts and redeploys; with a fake clock and a real SqliteStore."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.services.fakes import LoopTimeWarp, settle

from lamina.core.clock import FakeClock
from lamina.core.models import Account, QueuedEvent
from lamina.core.schedules import ScheduleRule
from lamina.services.schedules import ScheduleService
from lamina.store.events import SqliteEventStore
from lamina.store.schedules import SqliteScheduleStore
from lamina.store.sqlite import SqliteStore

START = datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC).timestamp()  # a Friday


class Scheduler:
    def __init__(self, path: Path) -> None:
        self.store = SqliteStore(path)
        self.rules = SqliteScheduleStore(self.store)
        self.queue = SqliteEventStore(self.store)
        self.clock = FakeClock(START)
        self.wakes = 0
        self.service = self.new_service()

    def new_service(self) -> ScheduleService:
        """A scheduler on the same state, as a restarted server builds it."""
        return ScheduleService(
            store=self.rules, clock=self.clock, account=Account(), wake_invoker=self.wake
        )

    def wake(self) -> None:
        self.wakes += 1

    def rule(self, expression: str, name: str = "tick", **fields: object) -> ScheduleRule:
        return ScheduleRule(
            rule=name,
            service="app",
            stage="dev",
            function_name="app-dev-job",
            qualifier=str(fields.pop("qualifier", "3")),
            expression=expression,
            **fields,  # type: ignore[arg-type]
        )

    def payloads(self) -> list[dict[str, object]]:
        return [json.loads(e.payload) for e in self.queue.list()]

    def at(self, *parts: int) -> None:
        target = datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]
        self.clock.advance(target - self.clock.time())

    def next_fire(self, rule: str = "tick") -> str | None:
        for found, due in self.service.rules():
            if found.rule == rule:
                return None if due is None else datetime.fromtimestamp(due, UTC).isoformat()
        raise KeyError(rule)


@pytest.fixture
def s(tmp_path: Path) -> Iterator[Scheduler]:
    scheduler = Scheduler(tmp_path / "lamina.db")
    yield scheduler
    scheduler.store.close()


def test_a_rate_fires_every_minute_through_the_async_queue(s: Scheduler) -> None:
    s.service.set_stack("app", "dev", [s.rule("rate(1 minute)")])

    assert s.service.fire_due() == []
    assert s.next_fire() == "2024-03-01T10:21:30+00:00"
    fired = []
    for _ in range(3):
        s.clock.advance(60)
        fired += s.service.fire_due()
    assert fired == ["tick", "tick", "tick"]
    events = s.queue.list()
    assert [(e.function_name, e.qualifier, e.status) for e in events] == [
        ("app-dev-job", "3", "pending")
    ] * 3
    assert [p["time"] for p in s.payloads()] == [
        "2024-03-01T10:21:30Z",
        "2024-03-01T10:22:30Z",
        "2024-03-01T10:23:30Z",
    ]
    assert s.wakes == 3


def test_the_event_is_eventbridge_s_scheduled_event(s: Scheduler) -> None:
    s.service.set_stack("app", "dev", [s.rule("cron(0 12 * * ? *)", name="noon")])
    s.at(2024, 3, 1, 12, 0, 0)
    assert s.service.fire_due() == ["noon"]

    (event,) = s.payloads()
    assert event == {
        "version": "0",
        "id": event["id"],
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": "2024-03-01T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/noon"],
        "detail": {},
    }
    assert len(str(event["id"])) == 36


def test_input_replaces_the_event_and_input_path_selects_part_of_it(s: Scheduler) -> None:
    s.service.set_stack(
        "app",
        "dev",
        [
            s.rule("rate(1 minute)", name="with-input", input='{"job": "reindex"}'),
            s.rule("rate(1 minute)", name="with-path", input_path="$.detail"),
            s.rule("rate(1 minute)", name="with-source", input_path="$.source"),
        ],
    )
    s.clock.advance(60)
    assert sorted(s.service.fire_due()) == ["with-input", "with-path", "with-source"]
    assert sorted(map(json.dumps, s.payloads())) == ['"aws.events"', '{"job": "reindex"}', "{}"]


def test_the_issue_s_night_schedule_fires_on_weekday_nights_only(s: Scheduler) -> None:
    s.service.set_stack("app", "dev", [s.rule("cron(0 0-6 ? * MON-FRI *)")])
    s.at(2024, 3, 1, 23, 0, 0)  # Friday night
    assert s.service.fire_due() == []
    assert s.next_fire() == "2024-03-04T00:00:00+00:00"  # Monday
    fired: list[str] = []
    for _ in range(24 * 5):  # to Wednesday night
        s.clock.advance(3600)
        fired += s.service.fire_due()
    assert len(fired) == 7 * 3  # Monday, Tuesday, Wednesday: 00:00 to 06:00
    assert [p["time"] for p in s.payloads()][:8] == [
        *(f"2024-03-04T0{h}:00:00Z" for h in range(7)),
        "2024-03-05T00:00:00Z",
    ]


def test_a_time_zone_shifts_the_firing(s: Scheduler) -> None:
    s.service.set_stack("app", "dev", [s.rule("cron(0 9 * * ? *)", timezone="Europe/Paris")])
    assert s.next_fire() == "2024-03-02T08:00:00+00:00"


def test_a_disabled_rule_is_listed_but_never_fires(s: Scheduler) -> None:
    s.service.set_stack("app", "dev", [s.rule("rate(1 minute)", enabled=False)])
    s.clock.advance(3600)
    assert s.service.fire_due() == []
    assert s.next_fire() is None
    assert [r.rule for r, _ in s.service.rules()] == ["tick"]


def test_missed_firings_fire_once_now_not_in_a_burst(s: Scheduler) -> None:
    s.service.set_stack("app", "dev", [s.rule("rate(1 minute)")])
    s.clock.advance(60)
    assert s.service.fire_due() == ["tick"]

    # Lamina is down for ten minutes: a new scheduler starts.
    s.clock.advance(600)
    restarted = s.new_service()
    assert restarted.fire_due() == ["tick"]
    assert restarted.fire_due() == []
    times = [p["time"] for p in s.payloads()]
    assert times == ["2024-03-01T10:21:30Z", "2024-03-01T10:31:30Z"]  # now, not the missed slot
    # It counts on from the catch-up firing.
    s.clock.advance(59)
    assert restarted.fire_due() == []
    s.clock.advance(1)
    assert restarted.fire_due() == ["tick"]


def test_a_firing_a_little_late_keeps_its_slot(s: Scheduler) -> None:
    s.service.set_stack("app", "dev", [s.rule("cron(* * * * ? *)")])
    s.at(2024, 3, 1, 10, 21, 5)  # the scheduler woke 5 s late
    assert s.service.fire_due() == ["tick"]
    assert [p["time"] for p in s.payloads()] == ["2024-03-01T10:21:00Z"]
    assert s.next_fire() == "2024-03-01T10:22:00+00:00"


def test_a_restart_does_not_fire_again_what_fired_already(s: Scheduler) -> None:
    s.service.set_stack("app", "dev", [s.rule("cron(0 * * * ? *)")])
    s.at(2024, 3, 1, 11, 0, 0)
    assert s.service.fire_due() == ["tick"]
    assert s.new_service().fire_due() == []


def test_a_redeploy_keeps_the_last_firing_unless_the_expression_changes(s: Scheduler) -> None:
    s.service.set_stack("app", "dev", [s.rule("rate(5 minutes)")])
    s.clock.advance(300)
    assert s.service.fire_due() == ["tick"]
    s.clock.advance(120)

    s.service.set_stack("app", "dev", [s.rule("rate(5 minutes)", qualifier="4")])
    assert s.next_fire() == "2024-03-01T10:30:30+00:00"  # from the last firing

    s.service.set_stack("app", "dev", [s.rule("rate(1 hour)", qualifier="4")])
    assert s.next_fire() == "2024-03-01T11:27:30+00:00"  # afresh from now

    s.service.set_stack("app", "dev", [])
    assert s.service.rules() == []


def test_deploy_checks_report_every_problem(s: Scheduler) -> None:
    s.rules.set_stack("other", "prod", [s.rule("rate(1 day)", name="taken")], START)
    problems = s.service.check(
        "app",
        "dev",
        [
            s.rule("cron(0 0 * * * *)", name="bad-cron"),
            s.rule("rate(1 hours)", name="bad-rate"),
            s.rule("rate(1 hour)", name="bad-zone", timezone="Mars/Olympus"),
            s.rule("rate(1 hour)", name="taken"),
            s.rule("rate(1 hour)", name="dup"),
            s.rule("rate(1 hour)", name="dup"),
            s.rule("rate(1 hour)", name="path", input_path="$..x"),
        ],
    )
    assert problems == [
        "schedule 'bad-cron' of app-dev-job: 'cron(0 0 * * * *)': exactly one of "
        "day-of-month (*) and day-of-week (*) must be '?'",
        "schedule 'bad-rate' of app-dev-job: 'rate(1 hours)': with a value of 1 the unit "
        "must be singular (hour)",
        "schedule 'bad-zone' of app-dev-job: timezone = 'Mars/Olympus': not a known IANA "
        "time zone (such as Europe/Paris or UTC)",
        "schedule 'dup' of app-dev-job: the rule name is used twice",
        "schedule 'path' of app-dev-job: inputPath = '$..x': must be $ or a path such as "
        "$.detail (Lamina supports dotted keys only)",
        "schedule 'taken': the rule name belongs to service other stage prod",
    ]


def test_a_rule_removed_while_it_fires_fires_no_event(s: Scheduler) -> None:
    s.service.set_stack("app", "dev", [s.rule("rate(1 minute)")])
    (rule,) = s.rules.list()
    s.service.remove_stack("app", "dev")
    assert not s.rules.fire(rule.rule, START, _event())
    assert s.queue.list() == []


def _event() -> QueuedEvent:
    return QueuedEvent("e", "app-dev-job", "3", b"{}", START)


async def test_the_task_sleeps_until_the_next_firing(s: Scheduler) -> None:
    warp = LoopTimeWarp()
    try:
        s.service.set_stack("app", "dev", [s.rule("rate(1 minute)")])
        s.service.start()
        await settle()
        assert s.queue.list() == []
        # 59 s of loop time: still asleep; then the timer brings it back at 60 s.
        s.clock.advance(59)
        warp.advance(59)
        await asyncio.sleep(0.01)
        assert s.queue.list() == []
        s.clock.advance(1)
        warp.advance(1)
        await asyncio.sleep(0.01)
        await settle(lambda: len(s.queue.list()) == 1)
    finally:
        await s.service.close()
        warp.close()


async def test_a_deployment_wakes_the_task(s: Scheduler) -> None:
    warp = LoopTimeWarp()
    try:
        s.service.start()
        await settle()
        s.clock.advance(3600)  # the wall clock moved; the loop timer (60 s) did not fire
        s.rules.set_stack("app", "dev", [s.rule("rate(1 minute)")], START)
        s.service.set_stack("app", "dev", [s.rule("rate(1 minute)")])  # same rule: kept
        await settle(lambda: len(s.queue.list()) == 1)
    finally:
        await s.service.close()
        warp.close()
