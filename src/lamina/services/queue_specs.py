"""A deployment's queues and `sqs` events, from the deployment document's `QueueSpec`s and
`SqsTrigger`s to the queue service's `Queue`s and `EventSourceMapping`s.

Problems are reported all at once, before a deployment changes anything, naming the queue
and the rule. A FIFO queue declared by a deployment deduplicates by content (as Lift's
`queue` construct does): `QueueSpec` has no switch for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from lamina.core.queues import (
    MAX_DELAY,
    MAX_RECEIVE_COUNT,
    MAX_RETENTION,
    MAX_VISIBILITY_TIMEOUT,
    MIN_RETENTION,
    EventSourceMapping,
    Queue,
    QueueSettings,
    Redrive,
    mapping_problems,
    name_problem,
    queue_reference,
)
from lamina.wire.deployment import QueueSpec, SqsTrigger

DEFAULT_MAX_RECEIVE_COUNT = 10  # SQS's, when a dead-letter queue has no maxReceiveCount
_MAPPING_NAMESPACE = uuid.UUID("3d0c8f50-5b1e-4cde-9a54-6c1f9d0e7a21")


def spec_problems(
    service: str, stage: str, specs: Sequence[object], existing: Mapping[str, Queue]
) -> list[str]:
    """Everything wrong with a stack's queue declarations, given the queues that exist."""
    problems: list[str] = []
    stack = f"{service}-{stage}"
    declared: dict[str, QueueSpec] = {}
    for spec in specs:
        if not isinstance(spec, QueueSpec):
            problems.append(f"not a queue declaration: {spec!r}")
            continue
        if spec.name in declared:
            problems.append(f"queue {spec.name} is declared twice")
        declared[spec.name] = spec
    # The stack's queues it no longer declares are about to go: nothing may rely on them.
    existing = {n: q for n, q in existing.items() if q.owner != stack or n in declared}
    for spec in declared.values():
        where = f"queue {spec.name}"
        problem = name_problem(spec.name, spec.fifo)
        if problem is not None:
            problems.append(problem)
        owner = existing.get(spec.name)
        if owner is not None and owner.owner not in (None, stack):
            problems.append(f"{where}: already declared by {owner.owner}")
        if owner is not None and owner.settings.fifo != spec.fifo:
            kind = "FIFO" if owner.settings.fifo else "standard"
            problems.append(f"{where}: exists as a {kind} queue; a queue's type cannot change")
        for field, value, low, high in (
            ("visibilityTimeout", spec.visibility_timeout, 0, MAX_VISIBILITY_TIMEOUT),
            ("messageRetentionPeriod", spec.message_retention, MIN_RETENTION, MAX_RETENTION),
            ("delaySeconds", spec.delay, 0, MAX_DELAY),
        ):
            if not low <= value <= high:
                problems.append(f"{where}: {field} = {value}: must be between {low} and {high}")
        problems.extend(_redrive_problems(spec, declared, existing))
    return problems


def _redrive_problems(
    spec: QueueSpec, declared: Mapping[str, QueueSpec], existing: Mapping[str, Queue]
) -> list[str]:
    where = f"queue {spec.name}"
    count = spec.max_receive_count
    if spec.dead_letter_queue is None:
        if count is not None:
            return [f"{where}: maxReceiveCount = {count} needs a dead-letter queue to move to"]
        return []
    problems = []
    if count is not None and not 1 <= count <= MAX_RECEIVE_COUNT:
        problems.append(
            f"{where}: maxReceiveCount = {count}: must be between 1 and {MAX_RECEIVE_COUNT}"
        )
    target = queue_reference(spec.dead_letter_queue)
    if target == spec.name:
        problems.append(f"{where}: cannot be its own dead-letter queue")
    elif target in declared:
        if declared[target].fifo != spec.fifo:
            problems.append(f"{where}: dead-letter queue {target} must be the same type")
    elif target in existing:
        if existing[target].settings.fifo != spec.fifo:
            problems.append(f"{where}: dead-letter queue {target} must be the same type")
    else:
        problems.append(
            f"{where}: dead-letter queue {spec.dead_letter_queue} is neither declared by "
            "this service nor an existing queue"
        )
    return problems


def queues_of(service: str, stage: str, specs: Sequence[object], now: float) -> list[Queue]:
    queues = []
    for spec in specs:
        assert isinstance(spec, QueueSpec), spec  # validate_queues said so
        redrive = None
        if spec.dead_letter_queue is not None:
            count = spec.max_receive_count or DEFAULT_MAX_RECEIVE_COUNT
            redrive = Redrive(queue_reference(spec.dead_letter_queue), count)
        settings = QueueSettings(
            visibility_timeout=spec.visibility_timeout,
            message_retention=spec.message_retention,
            delay=spec.delay,
            redrive=redrive,
            fifo=spec.fifo,
            content_based_deduplication=bool(
                getattr(spec, "content_based_deduplication", spec.fifo)
            ),
        )
        queues.append(Queue(spec.name, settings, now, now, service, stage))
    # Dead-letter queues first: a queue's redrive target then exists when it is written.
    targets = {q.settings.redrive.dead_letter_queue for q in queues if q.settings.redrive}
    return sorted(queues, key=lambda q: q.name not in targets)


def mappings_of(
    service: str, stage: str, mappings: Sequence[tuple[str, str | None, object]]
) -> list[EventSourceMapping]:
    """The stack's event source mappings, with ids that stay the same across deployments."""
    result = []
    seen: dict[str, int] = {}
    for function_name, qualifier, trigger in mappings:
        assert isinstance(trigger, SqsTrigger), trigger
        queue = queue_reference(trigger.queue)
        key = f"{function_name}:{qualifier or ''}:{queue}"
        seen[key] = seen.get(key, 0) + 1
        result.append(
            EventSourceMapping(
                uuid=str(uuid.uuid5(_MAPPING_NAMESPACE, f"{key}:{seen[key]}")),
                service=service,
                stage=stage,
                function_name=function_name,
                qualifier=qualifier,
                queue=queue,
                batch_size=trigger.batch_size,
                maximum_batching_window=trigger.maximum_batching_window,
                report_batch_item_failures=trigger.report_batch_item_failures,
                enabled=trigger.enabled,
                maximum_concurrency=trigger.maximum_concurrency,
            )
        )
    return result


def trigger_problems(
    function_name: str,
    triggers: Sequence[SqsTrigger],
    specs: Sequence[object],
    existing: Mapping[str, Queue],
) -> list[str]:
    """What is wrong with a function's `sqs` events, given the stack's queue declarations
    and the queues that exist (for the deploy service's checks before it commits)."""
    declared = {s.name: s.fifo for s in specs if isinstance(s, QueueSpec)}
    problems = []
    for trigger in triggers:
        queue = queue_reference(trigger.queue)
        fifo = declared.get(queue)
        if fifo is None and queue in existing:
            fifo = existing[queue].settings.fifo
        if fifo is None:
            problems.append(
                f"function {function_name}: sqs event on {trigger.queue}: no such queue "
                "(declare it under queues: or create it first)"
            )
        mapping = mappings_of("", "", [(function_name, None, trigger)])[0]
        problems.extend(mapping_problems(mapping, fifo))
    return problems
