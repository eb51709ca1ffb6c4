"""serverless.yml event sources and async settings: `schedule` and `sqs` events, a
function's retry settings and destinations, and the service's queues (Lamina's `queues:`
form and CloudFormation `AWS::SQS::Queue` resources); malformed ones are golden messages."""

from __future__ import annotations

import textwrap

import pytest

from lamina.wire.deployment import AsyncConfig, QueueSpec, ScheduleTrigger, SqsTrigger
from lamina.wire.serverless import ServerlessConfigError, Service, parse_service

HEAD = """\
service: shop
provider:
  name: aws
  runtime: python3.12
"""


def _service(body: str) -> Service:
    return parse_service(HEAD + textwrap.dedent(body).lstrip("\n"))


def _problems(body: str) -> list[str]:
    with pytest.raises(ServerlessConfigError) as caught:
        _service(body)
    return caught.value.problems


def test_schedule_events_in_their_short_and_long_forms() -> None:
    service = _service(
        """
        functions:
          job:
            handler: h.job
            events:
              - schedule: rate(10 minutes)
              - schedule:
                  rate: cron(0 0-6 ? * MON-FRI *)
                  enabled: false
                  input: {key: value, n: 1}
                  name: nightly
                  description: Night work
                  timezone: Europe/Paris
                  method: scheduler
              - schedule:
                  rate: [rate(1 hour), 'cron(30 12 L * ? *)']
                  inputPath: $.detail
        """
    )

    assert service.functions["job"].schedules == (
        ScheduleTrigger(expression="rate(10 minutes)"),
        ScheduleTrigger(
            expression="cron(0 0-6 ? * MON-FRI *)",
            enabled=False,
            input='{"key":"value","n":1}',
            name="nightly",
            description="Night work",
            timezone="Europe/Paris",
        ),
        ScheduleTrigger(expression="rate(1 hour)", input_path="$.detail"),
        ScheduleTrigger(expression="cron(30 12 L * ? *)", input_path="$.detail"),
    )
    assert service.warnings == ()


def test_an_input_string_must_be_json_and_several_expressions_under_one_name_are_numbered() -> None:
    service = _service(
        """
        functions:
          job:
            handler: h.job
            events:
              - schedule:
                  rate: [rate(1 hour), rate(2 hours)]
                  name: beat
                  input: '{"a": [1, 2]}'
        """
    )
    triggers = service.functions["job"].schedules
    assert [(t.name, t.input) for t in triggers] == [
        ("beat", '{"a": [1, 2]}'),
        ("beat-2", '{"a": [1, 2]}'),
    ]


def test_malformed_schedules_are_reported_each_with_its_rule() -> None:
    problems = _problems(
        """
        functions:
          job:
            handler: h.job
            events:
              - schedule: rate(1 hours)
              - schedule: cron(0 0 * * * *)
              - schedule: {rate: [rate(5 minutes), 'cron(0 0 ? * 8 *)']}
              - schedule: {enabled: false}
              - schedule: {rate: rate(1 day), input: not json, enabled: 'no'}
              - schedule: {rate: rate(1 day), input: {a: 1}, inputPath: $.detail}
              - schedule: {rate: rate(1 day), method: cron}
              - schedule: 5
        """
    )
    assert problems == [
        "serverless.yml:9: functions.job.events[0].schedule: 'rate(1 hours)': with a value "
        "of 1 the unit must be singular (hour)",
        "serverless.yml:10: functions.job.events[1].schedule: 'cron(0 0 * * * *)': exactly "
        "one of day-of-month (*) and day-of-week (*) must be '?'",
        "serverless.yml:11: functions.job.events[2].schedule.rate[1]: 'cron(0 0 ? * 8 *)': "
        "day-of-week field '8': 8 is out of range 1-7",
        "serverless.yml:12: functions.job.events[3].schedule.rate: required: a rate(...) or "
        "cron(...) expression, or a list of them",
        "serverless.yml:13: functions.job.events[4].schedule.enabled = 'no': must be true or false",
        "serverless.yml:13: functions.job.events[4].schedule.input = 'not json': must be a "
        "map, or a string of JSON",
        "serverless.yml:14: functions.job.events[5].schedule: input and inputPath cannot both "
        "be set",
        "serverless.yml:15: functions.job.events[6].schedule.method = 'cron': must be "
        "eventBus or scheduler",
        "serverless.yml:16: functions.job.events[7].schedule = 5: must be a rate(...) or "
        "cron(...) expression, or a map with `rate`",
    ]


def test_input_transformers_are_warned_about() -> None:
    service = _service(
        """
        functions:
          job:
            handler: h.job
            events:
              - schedule:
                  rate: rate(1 day)
                  inputTransformer: {inputTemplate: '{}'}
        """
    )
    assert service.warnings == (
        "serverless.yml:11: functions.job.events[0].schedule.inputTransformer: "
        "inputTransformer is not supported; ignored",
    )


def test_queues_in_lamina_s_simple_form() -> None:
    service = _service(
        """
        queues:
          jobs:
            visibilityTimeout: 60
            maxReceiveCount: 5
            deadLetterQueue: jobs-dlq
          jobs-dlq:
          orders:
            fifo: true
            messageRetentionPeriod: 3600
            delaySeconds: 10
            deadLetterQueue: arn:aws:sqs:us-east-1:000000000000:elsewhere
          named:
            name: legacy-queue
        functions:
          worker:
            handler: h.worker
            events:
              - sqs: jobs
              - sqs:
                  arn: orders
                  batchSize: 5
                  maximumBatchingWindow: 2
                  functionResponseType: ReportBatchItemFailures
                  maximumConcurrency: 4
                  enabled: false
              - sqs: legacy-queue
              - sqs: arn:aws:sqs:us-east-1:000000000000:external
        """
    )
    assert service.queues == (
        QueueSpec(
            name="shop-dev-jobs",
            visibility_timeout=60,
            max_receive_count=5,
            dead_letter_queue="shop-dev-jobs-dlq",
        ),
        QueueSpec(name="shop-dev-jobs-dlq"),
        QueueSpec(
            name="shop-dev-orders.fifo",
            fifo=True,
            message_retention=3600,
            delay=10,
            dead_letter_queue="arn:aws:sqs:us-east-1:000000000000:elsewhere",
            max_receive_count=3,
        ),
        QueueSpec(name="legacy-queue"),
    )
    assert service.functions["worker"].sqs == (
        SqsTrigger(queue="shop-dev-jobs"),
        SqsTrigger(
            queue="shop-dev-orders.fifo",
            batch_size=5,
            maximum_batching_window=2,
            report_batch_item_failures=True,
            enabled=False,
            maximum_concurrency=4,
        ),
        SqsTrigger(queue="legacy-queue"),
        SqsTrigger(queue="arn:aws:sqs:us-east-1:000000000000:external"),
    )


def test_queues_as_cloudformation_resources() -> None:
    service = _service(
        """
        resources:
          Resources:
            Jobs:
              Type: AWS::SQS::Queue
              Properties:
                QueueName: jobs
                VisibilityTimeout: 120
                RedrivePolicy:
                  deadLetterTargetArn: !GetAtt JobsDlq.Arn
                  maxReceiveCount: '4'
            JobsDlq:
              Type: AWS::SQS::Queue
            Bucket:
              Type: AWS::S3::Bucket
        functions:
          worker:
            handler: h.worker
            events:
              - sqs: {arn: !GetAtt Jobs.Arn}
              - sqs: {arn: {Ref: JobsDlq}}
        """
    )
    assert service.queues == (
        QueueSpec(
            name="jobs",
            visibility_timeout=120,
            dead_letter_queue="shop-dev-JobsDlq",
            max_receive_count=4,
        ),
        QueueSpec(name="shop-dev-JobsDlq"),
    )
    assert [t.queue for t in service.functions["worker"].sqs] == ["jobs", "shop-dev-JobsDlq"]
    assert service.warnings == (
        "serverless.yml:5: resources: CloudFormation resources other than AWS::SQS::Queue are "
        "not created by Lamina; ignored: Bucket",
    )


def test_malformed_queues_and_sqs_events() -> None:
    problems = _problems(
        """
        queues:
          bad name!: {}
          jobs: {visibilityTimeout: 50000, fifo: 'yes', maxReceiveCount: 2}
          twin: {name: shop-dev-jobs}
        functions:
          worker:
            handler: h.worker
            events:
              - sqs: {batchSize: 0, maximumConcurrency: 1, functionResponseType: Other}
              - sqs: {arn: jobs, maximumBatchingWindow: 301}
        """
    )
    assert problems == [
        "serverless.yml:6: queues.bad name!: the queue name 'shop-dev-bad name!' must be 1-80 "
        "letters, digits, '-' and '_' (plus .fifo for a FIFO queue)",
        "serverless.yml:7: queues.jobs.visibilityTimeout = 50000: must be an integer between 0 "
        "and 43200",
        "serverless.yml:7: queues.jobs.fifo = 'yes': must be true or false",
        "serverless.yml:7: queues.jobs.maxReceiveCount: needs a deadLetterQueue to redrive to",
        "serverless.yml:13: functions.worker.events[0].sqs.arn: required: a queue of this file "
        "(key or logical id), a name or an ARN",
        "serverless.yml:13: functions.worker.events[0].sqs.batchSize = 0: must be an integer "
        "between 1 and 10000",
        "serverless.yml:13: functions.worker.events[0].sqs.maximumConcurrency = 1: must be an "
        "integer between 2 and 1000",
        "serverless.yml:13: functions.worker.events[0].sqs.functionResponseType = 'Other': must "
        "be ReportBatchItemFailures",
        "serverless.yml:14: functions.worker.events[1].sqs.maximumBatchingWindow = 301: must "
        "be an integer between 0 and 300",
    ]


def test_two_queues_with_one_name_are_refused() -> None:
    problems = _problems(
        """
        queues:
          jobs: {}
          twin: {name: shop-dev-jobs}
        functions:
          worker: {handler: h.worker}
        """
    )
    assert problems == [
        "serverless.yml:7: queues.twin: queue name 'shop-dev-jobs' is already used by queues.jobs"
    ]


def test_retry_settings_and_destinations_become_the_async_config() -> None:
    service = _service(
        """
        queues:
          failures: {}
        functions:
          worker:
            handler: h.worker
            maximumRetryAttempts: 1
            maximumEventAge: 3600
            destinations:
              onSuccess: audit
              onFailure:
                type: sqs
                arn: failures
            onError: arn:aws:sqs:us-east-1:000000000000:legacy-dlq
          audit:
            handler: h.audit
            destinations:
              onFailure: arn:aws:lambda:us-east-1:000000000000:function:elsewhere
          plain:
            handler: h.plain
        """
    )
    functions = service.functions
    assert functions["worker"].async_config == AsyncConfig(
        maximum_retry_attempts=1,
        maximum_event_age=3600,
        on_success="shop-dev-audit",
        on_failure="arn:aws:sqs:us-east-1:000000000000:shop-dev-failures",
        dead_letter="arn:aws:sqs:us-east-1:000000000000:legacy-dlq",
    )
    assert functions["audit"].async_config == AsyncConfig(
        on_failure="arn:aws:lambda:us-east-1:000000000000:function:elsewhere"
    )
    assert functions["plain"].async_config is None


def test_malformed_retry_settings() -> None:
    problems = _problems(
        """
        functions:
          worker:
            handler: h.worker
            maximumRetryAttempts: 3
            maximumEventAge: 30
            destinations: {onFailure: {type: sqs}, onSucess: x}
        """
    )
    assert problems == [
        "serverless.yml:8: functions.worker.maximumRetryAttempts = 3: must be an integer "
        "between 0 and 2",
        "serverless.yml:9: functions.worker.maximumEventAge = 30: must be between 60 and "
        "21600 seconds",
        "serverless.yml:10: functions.worker.destinations.onFailure = {...}: must be a "
        "function key, a "
        "function or queue ARN, a queue key, or {type, arn}",
    ]


def test_the_deployment_spec_carries_the_triggers() -> None:
    from lamina.cli.commands.deploy import deployment_spec
    from lamina.cli.package import Artifact, Packages

    service = _service(
        """
        queues:
          jobs: {}
        functions:
          worker:
            handler: h.worker
            maximumRetryAttempts: 0
            events:
              - sqs: jobs
              - schedule: rate(1 day)
        """
    )
    artifact = Artifact(path=None, data=b"zip", files=1)
    spec = deployment_spec(service, Packages(functions={"worker": artifact}, layers={}))

    (worker,) = spec.functions
    assert worker.sqs == (SqsTrigger(queue="shop-dev-jobs"),)
    assert worker.schedules == (ScheduleTrigger(expression="rate(1 day)"),)
    assert worker.async_config == AsyncConfig(maximum_retry_attempts=0)
    assert spec.queues == (QueueSpec(name="shop-dev-jobs"),)
