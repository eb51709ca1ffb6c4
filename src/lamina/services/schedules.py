"""Schedules: rules that fire functions asynchronously at `rate(...)` or `cron(...)` times.

A firing is an asynchronous event written in the same transaction as the rule's new
`last_fired` (see `store.schedules`); the async invoker then runs it, so Lambda's retry
contract applies. The task sleeps until the earliest next firing (or until a deployment
changes the rules), at most `MAX_SLEEP` seconds so that a changed wall clock is noticed.

Missed firings (Lamina was down, or the machine slept): a rule whose next firing is more
than `LATE_AFTER` seconds past fires once, now, with the current time in its event, and
counts on from now. It never fires once per missed slot. A rule that has never fired counts
from when it was created (a `rate(1 hour)` created at 10:20 first fires at 11:20).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lamina.core.clock import Clock
from lamina.core.models import Account, QueuedEvent
from lamina.core.schedules import INPUT_PATH, RULE_NAME, ScheduleRule, payload
from lamina.wire.cron import Schedule, ScheduleExpressionError, next_fire, parse

log = logging.getLogger(__name__)

MAX_SLEEP = 60.0
LATE_AFTER = 60.0  # seconds past its time a firing counts as missed


class ScheduleStore(Protocol):
    """`lamina.store.schedules.SqliteScheduleStore`."""

    def list(self) -> list[ScheduleRule]: ...
    def owners(self, rules: Sequence[str]) -> dict[str, tuple[str, str]]: ...
    def set_stack(
        self, service: str, stage: str, rules: Sequence[ScheduleRule], now: float
    ) -> None: ...
    def delete_stack(self, service: str, stage: str) -> int: ...
    def fire(self, rule: str, fired: float, event: QueuedEvent) -> bool: ...


def load_zone(name: str) -> tzinfo:
    """The time zone named `name`; raises ValueError naming it when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"timezone = {name!r}: not a known IANA time zone (such as Europe/Paris or UTC)"
        ) from None


class ScheduleService:
    def __init__(
        self,
        *,
        store: ScheduleStore,
        clock: Clock,
        account: Account,
        wake_invoker: Callable[[], None],
    ) -> None:
        self._store = store
        self._clock = clock
        self._account = account
        self._wake_invoker = wake_invoker
        self._parsed: dict[str, Schedule] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.fired = 0

    def __repr__(self) -> str:
        return f"<ScheduleService fired={self.fired}>"

    # deployments

    def check(self, service: str, stage: str, rules: Sequence[ScheduleRule]) -> list[str]:
        """Every problem with a stack's rules (empty when they can be set)."""
        problems: list[str] = []
        seen: set[str] = set()
        for rule in rules:
            where = f"schedule {rule.rule!r} of {rule.function_name}"
            if not RULE_NAME.fullmatch(rule.rule):
                problems.append(f"{where}: the rule name must be 1-64 letters, digits, '.-_'")
            if rule.rule in seen:
                problems.append(f"{where}: the rule name is used twice")
            seen.add(rule.rule)
            try:
                parse(rule.expression)
            except ScheduleExpressionError as exc:
                problems.append(f"{where}: {exc}")
            try:
                load_zone(rule.timezone)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
            if rule.input_path is not None and not INPUT_PATH.fullmatch(rule.input_path):
                problems.append(
                    f"{where}: inputPath = {rule.input_path!r}: must be $ or a path such as "
                    "$.detail (Lamina supports dotted keys only)"
                )
        for name, owner in self._store.owners(sorted(seen)).items():
            if owner != (service, stage):
                problems.append(
                    f"schedule {name!r}: the rule name belongs to service {owner[0]} "
                    f"stage {owner[1]}"
                )
        return problems

    def set_stack(self, service: str, stage: str, rules: Sequence[ScheduleRule]) -> None:
        self._store.set_stack(service, stage, rules, self._clock.time())
        self._wake.set()

    def remove_stack(self, service: str, stage: str) -> None:
        self._store.delete_stack(service, stage)
        self._wake.set()

    # reading

    def rules(self) -> list[tuple[ScheduleRule, float | None]]:
        """Every rule with its next firing (epoch seconds; None: disabled or never)."""
        return [(rule, self._next(rule)) for rule in self._store.list()]

    def _schedule(self, expression: str) -> Schedule:
        schedule = self._parsed.get(expression)
        if schedule is None:
            schedule = self._parsed[expression] = parse(expression)
        return schedule

    def _next(self, rule: ScheduleRule) -> float | None:
        if not rule.enabled:
            return None
        try:
            schedule = self._schedule(rule.expression)
            zone = load_zone(rule.timezone)
        except ValueError:
            return None  # checked at deploy; a rule stored by an older Lamina stays idle
        base = rule.last_fired if rule.last_fired is not None else rule.created
        found = next_fire(schedule, datetime.fromtimestamp(base, UTC), zone)
        return None if found is None else found.timestamp()

    # firing

    def fire_due(self) -> list[str]:
        """Fire every rule whose time has come; returns their names."""
        now = self._clock.time()
        fired: list[str] = []
        for rule in self._store.list():
            due = self._next(rule)
            if due is None or due > now:
                continue
            on_time = now - due <= LATE_AFTER
            at = due if on_time else now
            if not on_time:
                log.info("schedule %s missed its firing at %s; firing once now", rule.rule, due)
            event = QueuedEvent(
                id=str(uuid.uuid4()),
                function_name=rule.function_name,
                qualifier=rule.qualifier,
                payload=payload(self._account, rule, at),
                enqueued_at=now,
                updated_at=now,
            )
            if self._store.fire(rule.rule, at, event):
                fired.append(rule.rule)
        if fired:
            self.fired += len(fired)
            self._wake_invoker()
        return fired

    def next_due(self) -> float | None:
        dues = [due for _, due in self.rules() if due is not None]
        return min(dues, default=None)

    # the task

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scheduler")

    async def _run(self) -> None:
        while True:
            delay = MAX_SLEEP
            self._wake.clear()
            try:
                self.fire_due()
                due = self.next_due()
                if due is not None:
                    delay = min(MAX_SLEEP, max(0.0, due - self._clock.time()))
            except Exception:
                log.exception("the scheduler failed; trying again in a second")
                delay = 1.0
            # Not asyncio.wait_for: on 3.11 it can swallow the cancellation close() sends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
