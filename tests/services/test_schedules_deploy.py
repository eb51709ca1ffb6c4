"""Deployments with event sources: schedules and async configs checked before the
transaction and made live after it; queues and `sqs` mappings handed to the queue service;
removal, rollback and start-up bring them along."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.services.test_async_fakes import RecordingBroker
from tests.services.test_deploy_fakes import FakeRouteTable, Platform, bundle, function, platform

from lamina.core.errors import InvalidParameterValueException, ResourceNotFoundException
from lamina.core.retry import EventInvokeConfig
from lamina.services.deploy import DeployService
from lamina.services.schedules import ScheduleService
from lamina.services.triggers import Triggers, rule_name
from lamina.store.deployments import SqliteDeploymentStore
from lamina.store.events import SqliteEventInvokeConfigStore
from lamina.store.schedules import SqliteScheduleStore
from lamina.wire.deployment import (
    AsyncConfig,
    DeploymentSpec,
    FunctionSpec,
    QueueSpec,
    ScheduleTrigger,
    SqsTrigger,
)


@dataclass
class Broker(RecordingBroker):
    problems: list[str] = field(default_factory=list)
    declared: list[tuple[str, str, list[object]]] = field(default_factory=list)
    mappings: list[tuple[str, str, list[tuple[str, str | None, object]]]] = field(
        default_factory=list
    )

    def validate_queues(self, service: str, stage: str, queues: Sequence[object]) -> list[str]:
        return list(self.problems)

    def declare_queues(self, service: str, stage: str, queues: Sequence[object]) -> None:
        self.declared.append((service, stage, list(queues)))

    def set_mappings(
        self, service: str, stage: str, mappings: Sequence[tuple[str, str | None, object]]
    ) -> None:
        self.mappings.append((service, stage, list(mappings)))


@dataclass
class World:
    p: Platform
    schedules: ScheduleService
    configs: SqliteEventInvokeConfigStore
    broker: Broker | None
    deploy: DeployService

    def new_deploy(self) -> DeployService:
        return build(self.p, self.schedules, self.configs, self.broker)

    def rules(self) -> dict[str, tuple[str, str, str]]:
        return {
            r.rule: (r.function_name, r.qualifier, r.expression) for r, _ in self.schedules.rules()
        }


def build(
    p: Platform,
    schedules: ScheduleService,
    configs: SqliteEventInvokeConfigStore,
    broker: Broker | None,
) -> DeployService:
    return DeployService(
        deployments=SqliteDeploymentStore(p.store),
        code=p.code,
        registry=p.h.registry,
        pool=p.h.pool,
        ledger=p.h.ledger,
        routes=FakeRouteTable(),
        account=p.h.account,
        clock=p.h.clock,
        triggers=Triggers(schedules=schedules, configs=configs, clock=p.h.clock, queues=broker),
    )


@contextlib.asynccontextmanager
async def world(tmp_path: Path, *, queues: bool = True) -> AsyncIterator[World]:
    async with platform(tmp_path) as p:
        schedules = ScheduleService(
            store=SqliteScheduleStore(p.store),
            clock=p.h.clock,
            account=p.h.account,
            wake_invoker=lambda: None,
        )
        configs = SqliteEventInvokeConfigStore(p.store)
        broker = Broker() if queues else None
        yield World(p, schedules, configs, broker, build(p, schedules, configs, broker))


def stack(*functions: FunctionSpec, queues: tuple[QueueSpec, ...] = ()) -> DeploymentSpec:
    return DeploymentSpec(
        service="app", stage="dev", region="us-east-1", functions=functions, queues=queues
    )


def job(sha: str, *schedules: str, key: str = "job", **fields: object) -> FunctionSpec:
    return function(
        key, sha, schedules=tuple(ScheduleTrigger(expression=e) for e in schedules), **fields
    )


async def test_schedules_go_live_with_the_deployment_on_its_published_version(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        sha = w.p.upload(bundle("ok"))
        w.deploy.deploy(stack(job(sha, "rate(5 minutes)", "cron(0 0-6 ? * MON-FRI *)")))

        assert w.rules() == {
            "app-dev-job-schedule-1": ("app-dev-job", "1", "rate(5 minutes)"),
            "app-dev-job-schedule-2": ("app-dev-job", "1", "cron(0 0-6 ? * MON-FRI *)"),
        }

        w.deploy.deploy(stack(job(w.p.upload(bundle("v2")), "rate(5 minutes)")))
        assert w.rules() == {"app-dev-job-schedule-1": ("app-dev-job", "2", "rate(5 minutes)")}


async def test_a_malformed_schedule_refuses_the_whole_deployment_with_the_rule(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        sha = w.p.upload(bundle("ok"))
        bad = stack(
            job(sha, "rate(1 hours)"),
            function("web", sha, memory_size=1),
        )

        with pytest.raises(InvalidParameterValueException) as refused:
            w.deploy.deploy(bad)

        message = refused.value.message
        assert message.startswith("deployment of app-dev refused: ")
        assert "functions.web: MemorySize = 1" in message
        assert (
            "schedule 'app-dev-job-schedule-1' of app-dev-job: 'rate(1 hours)': with a value "
            "of 1 the unit must be singular (hour)"
        ) in message
        assert w.rules() == {}
        with pytest.raises(ResourceNotFoundException):  # nothing was deployed
            w.p.h.registry.resolve("app-dev-job", None)


async def test_async_configs_are_stored_per_function_and_cleared_when_dropped(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        sha = w.p.upload(bundle("ok"))
        config = AsyncConfig(maximum_retry_attempts=0, on_failure="app-dev-audit")
        w.deploy.deploy(stack(function("job", sha, async_config=config), function("audit", sha)))

        assert w.configs.effective("app-dev-job", "1") == EventInvokeConfig(
            maximum_retry_attempts=0, on_failure="app-dev-audit"
        )
        assert w.configs.effective("app-dev-audit", "1") == EventInvokeConfig()

        w.deploy.deploy(stack(function("job", sha), function("audit", sha)))
        assert w.configs.effective("app-dev-job", "1") == EventInvokeConfig()


async def test_async_configs_are_checked(tmp_path: Path) -> None:
    async with world(tmp_path, queues=False) as w:
        sha = w.p.upload(bundle("ok"))
        config = AsyncConfig(
            maximum_retry_attempts=5,
            maximum_event_age=30,
            on_success="arn:aws:sns:us-east-1:0:topic",
            on_failure="arn:aws:sqs:us-east-1:0:dlq",
        )
        with pytest.raises(InvalidParameterValueException) as refused:
            w.deploy.deploy(stack(function("job", sha, async_config=config)))

        message = refused.value.message
        assert "functions.job: MaximumRetryAttempts = 5: must be between 0 and 2" in message
        assert "functions.job: MaximumEventAgeInSeconds = 30: must be between 60" in message
        assert "functions.job.destinations.onSuccess: 'arn:aws:sns:us-east-1:0:topic': SNS" in (
            message
        )
        assert (
            "functions.job.destinations.onFailure: 'arn:aws:sqs:us-east-1:0:dlq': the queue "
            "service is not available in this Lamina"
        ) in message


async def test_queues_and_mappings_are_validated_then_declared_after_the_commit(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        assert w.broker is not None
        sha = w.p.upload(bundle("ok"))
        queue = QueueSpec(name="app-dev-jobs")
        worker = function("worker", sha, sqs=(SqsTrigger(queue="app-dev-jobs", batch_size=5),))
        w.broker.problems = ["queues.jobs: bad"]
        with pytest.raises(InvalidParameterValueException, match=r"queues\.jobs: bad"):
            w.deploy.deploy(stack(worker, queues=(queue,)))
        assert w.broker.declared == []

        w.broker.problems = []
        w.deploy.deploy(stack(worker, queues=(queue,)))
        assert w.broker.declared == [("app", "dev", [queue])]
        assert w.broker.mappings == [
            ("app", "dev", [("app-dev-worker", "1", SqsTrigger("app-dev-jobs", batch_size=5))])
        ]

        w.deploy.remove("app", "dev")
        assert w.broker.declared[-1] == ("app", "dev", [])
        assert w.broker.mappings[-1] == ("app", "dev", [])


async def test_sqs_triggers_are_checked(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        sha = w.p.upload(bundle("ok"))
        triggers = (
            SqsTrigger(queue="q", batch_size=20),
            SqsTrigger(queue="q", batch_size=0, maximum_batching_window=301),
            SqsTrigger(queue="q", maximum_concurrency=1),
        )
        with pytest.raises(InvalidParameterValueException) as refused:
            w.deploy.deploy(stack(function("worker", sha, sqs=triggers)))
        message = refused.value.message
        assert "sqs[0].batchSize = 20: above 10 needs a maximumBatchingWindow" in message
        assert "sqs[1].batchSize = 0: must be between 1 and 10000" in message
        assert "sqs[1].maximumBatchingWindow = 301: must be between 0 and 300" in message
        assert "sqs[2].maximumConcurrency = 1: must be between 2 and 1000" in message


async def test_without_the_queue_service_queues_are_refused(tmp_path: Path) -> None:
    async with world(tmp_path, queues=False) as w:
        sha = w.p.upload(bundle("ok"))
        with pytest.raises(InvalidParameterValueException, match="queue service is not available"):
            w.deploy.deploy(stack(function("w", sha), queues=(QueueSpec(name="q"),)))


async def test_remove_and_rollback_bring_the_schedules_along(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.deploy.deploy(stack(job(w.p.upload(bundle("1")), "rate(1 hour)")))
        w.deploy.deploy(stack(job(w.p.upload(bundle("2")), "rate(2 hours)")))
        assert w.rules() == {"app-dev-job-schedule-1": ("app-dev-job", "2", "rate(2 hours)")}

        w.deploy.rollback("app", "dev")
        assert w.rules() == {"app-dev-job-schedule-1": ("app-dev-job", "1", "rate(1 hour)")}

        w.deploy.remove("app", "dev")
        assert w.rules() == {}


async def test_start_up_restores_schedules_a_crash_after_the_commit_lost(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.deploy.deploy(stack(job(w.p.upload(bundle("1")), "rate(1 hour)")))
        w.schedules.remove_stack("app", "dev")  # as if the process died before setting them

        w.new_deploy().load()

        assert w.rules() == {"app-dev-job-schedule-1": ("app-dev-job", "1", "rate(1 hour)")}


async def test_a_rule_name_of_another_stack_is_refused(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        sha = w.p.upload(bundle("ok"))
        named = (ScheduleTrigger(expression="rate(1 hour)", name="nightly"),)
        w.deploy.deploy(stack(function("job", sha, schedules=named)))
        other = DeploymentSpec(
            service="other",
            stage="dev",
            region="us-east-1",
            functions=(function("job", sha, service="other", schedules=named),),
        )
        with pytest.raises(
            InvalidParameterValueException, match="'nightly': the rule name belongs to service app"
        ):
            w.deploy.deploy(other)


def test_default_rule_names_fit_eventbridge_s_limit() -> None:
    assert rule_name("app-dev-job", 2) == "app-dev-job-schedule-2"
    long = rule_name("f" * 64, 12)
    assert len(long) == 64
    assert long.endswith("-schedule-12")
