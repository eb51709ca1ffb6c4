"""A deployment's event sources and async settings: schedules, the functions' event invoke
configs, queues and `sqs` event source mappings.

`check` runs before the deployment's transaction (its problems join the deployment's own,
so a malformed cron expression refuses the whole deployment); `apply` runs after the commit,
and again at start-up for every live deployment, which also repairs a crash between the two.
Queue declarations are the queue service's to keep; they are applied after each deployment.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from lamina.core.clock import Clock
from lamina.core.destinations import InvalidTarget, QueueTarget, parse_target
from lamina.core.models import LATEST
from lamina.core.ports import QueueBroker
from lamina.core.retry import EventInvokeConfig
from lamina.core.schedules import ScheduleRule
from lamina.services.schedules import ScheduleService
from lamina.wire.deployment import AsyncConfig, DeploymentSpec, FunctionSpec, SqsTrigger

log = logging.getLogger(__name__)

RULE_NAME_MAX = 64
BATCH_SIZE = (1, 10_000)
BATCHING_WINDOW = (0, 300)
MAXIMUM_CONCURRENCY = (2, 1000)


class ConfigStore(Protocol):
    """`lamina.store.events.SqliteEventInvokeConfigStore`."""

    def set_functions(
        self,
        configs: Mapping[str, EventInvokeConfig | None],
        removed: Collection[str],
        now: float,
    ) -> None: ...


def rule_name(function_name: str, index: int) -> str:
    """A schedule's rule name when serverless.yml gives none: `<function>-schedule-<n>`."""
    suffix = f"-schedule-{index}"
    return function_name[: RULE_NAME_MAX - len(suffix)] + suffix


def schedule_rules(spec: DeploymentSpec, qualifiers: Mapping[str, str]) -> list[ScheduleRule]:
    return [
        ScheduleRule(
            rule=trigger.name or rule_name(f.name, index),
            service=spec.service,
            stage=spec.stage,
            function_name=f.name,
            qualifier=qualifiers.get(f.name, LATEST),
            expression=trigger.expression,
            timezone=trigger.timezone or "UTC",
            enabled=trigger.enabled,
            input=trigger.input,
            input_path=trigger.input_path,
            description=trigger.description,
        )
        for f in spec.functions
        for index, trigger in enumerate(f.schedules, start=1)
    ]


def invoke_config(config: AsyncConfig) -> EventInvokeConfig:
    return EventInvokeConfig(
        maximum_retry_attempts=config.maximum_retry_attempts,
        maximum_event_age=config.maximum_event_age,
        on_success=config.on_success,
        on_failure=config.on_failure,
        dead_letter=config.dead_letter,
    )


class Triggers:
    def __init__(
        self,
        *,
        schedules: ScheduleService,
        configs: ConfigStore,
        clock: Clock,
        queues: QueueBroker | None = None,
    ) -> None:
        self._schedules = schedules
        self._configs = configs
        self._clock = clock
        self._queues = queues

    def __repr__(self) -> str:
        return f"<Triggers queues={'yes' if self._queues else 'no'}>"

    def check(self, spec: DeploymentSpec) -> list[str]:
        problems = self._schedules.check(spec.service, spec.stage, schedule_rules(spec, {}))
        for f in spec.functions:
            problems += self._check_async(f)
            problems += self._check_sqs(f)
        if spec.queues:
            if self._queues is None:
                problems.append("queues: the queue service is not available in this Lamina")
            else:
                problems += self._queues.validate_queues(spec.service, spec.stage, spec.queues)
        return problems

    def _check_async(self, f: FunctionSpec) -> list[str]:
        if f.async_config is None:
            return []
        where = f"functions.{f.key}"
        config = invoke_config(f.async_config)
        problems = [f"{where}: {p}" for p in config.problems()]
        targets = (
            ("destinations.onSuccess", config.on_success),
            ("destinations.onFailure", config.on_failure),
            ("onError", config.dead_letter),
        )
        for key, text in targets:
            if text is None:
                continue
            try:
                target = parse_target(text)
            except InvalidTarget as exc:
                problems.append(f"{where}.{key}: {exc}")
                continue
            if isinstance(target, QueueTarget) and self._queues is None:
                problems.append(
                    f"{where}.{key}: {text!r}: the queue service is not available in this Lamina"
                )
        return problems

    def _check_sqs(self, f: FunctionSpec) -> list[str]:
        problems: list[str] = []
        for index, trigger in enumerate(f.sqs):
            where = f"functions.{f.key}.events.sqs[{index}]"
            if self._queues is None:
                problems.append(f"{where}: the queue service is not available in this Lamina")
            problems += _sqs_problems(where, trigger)
        return problems

    def apply(
        self, spec: DeploymentSpec, qualifiers: Mapping[str, str], removed: Sequence[str]
    ) -> None:
        """Make the deployment's triggers live (after its commit). `qualifiers`: the version
        each function's events go to (the one the deployment made live)."""
        configs = {
            f.name: invoke_config(f.async_config) if f.async_config else None
            for f in spec.functions
        }
        self._configs.set_functions(configs, removed, self._clock.time())
        self._schedules.set_stack(spec.service, spec.stage, schedule_rules(spec, qualifiers))
        if self._queues is None:
            return
        try:
            self._queues.declare_queues(spec.service, spec.stage, spec.queues)
            mappings = [
                (f.name, qualifiers.get(f.name), trigger)
                for f in spec.functions
                for trigger in f.sqs
            ]
            self._queues.set_mappings(spec.service, spec.stage, mappings)
        except Exception:
            # The deployment is committed and live; the queue service reports its own fault.
            log.exception("queues of %s-%s could not be declared", spec.service, spec.stage)

    def reload(self, spec: DeploymentSpec, qualifiers: Mapping[str, str]) -> None:
        """At start-up: the live deployment's schedules and configs (the queue service keeps
        its own declarations)."""
        configs = {
            f.name: invoke_config(f.async_config) if f.async_config else None
            for f in spec.functions
        }
        self._configs.set_functions(configs, (), self._clock.time())
        self._schedules.set_stack(spec.service, spec.stage, schedule_rules(spec, qualifiers))

    def remove(self, service: str, stage: str, functions: Sequence[str]) -> None:
        self._configs.set_functions({}, functions, self._clock.time())
        self._schedules.remove_stack(service, stage)
        if self._queues is None:
            return
        try:
            self._queues.set_mappings(service, stage, [])
            self._queues.declare_queues(service, stage, [])
        except Exception:
            log.exception("queues of %s-%s could not be removed", service, stage)


def _sqs_problems(where: str, trigger: SqsTrigger) -> list[str]:
    problems: list[str] = []
    if not isinstance(trigger.queue, str) or not trigger.queue:
        problems.append(f"{where}.arn: must name a queue")
    checks = (
        ("batchSize", trigger.batch_size, BATCH_SIZE),
        ("maximumBatchingWindow", trigger.maximum_batching_window, BATCHING_WINDOW),
    )
    for key, value, (low, high) in checks:
        if not isinstance(value, int) or not low <= value <= high:
            problems.append(f"{where}.{key} = {value!r}: must be between {low} and {high}")
    if (
        isinstance(trigger.batch_size, int)
        and trigger.batch_size > 10
        and trigger.maximum_batching_window == 0
    ):
        problems.append(
            f"{where}.batchSize = {trigger.batch_size}: above 10 needs a "
            "maximumBatchingWindow of at least 1 second"
        )
    concurrency = trigger.maximum_concurrency
    low, high = MAXIMUM_CONCURRENCY
    if concurrency is not None and (
        not isinstance(concurrency, int) or not low <= concurrency <= high
    ):
        problems.append(
            f"{where}.maximumConcurrency = {concurrency!r}: must be between {low} and {high}"
        )
    return problems
