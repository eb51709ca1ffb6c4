"""serverless.yml's event sources and async settings: `schedule` and `sqs` events, and a
function's `maximumRetryAttempts` / `maximumEventAge` / `destinations` / `onError`. Part of
`wire.serverless` (which calls in here), kept apart to stay small; the service's queues are
`wire.serverless_queues`. A destination or `onError` that is a function key of the file
names that function; one that names a queue of the file becomes its ARN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

from lamina.wire.cron import ScheduleExpressionError, parse
from lamina.wire.deployment import AsyncConfig, ScheduleTrigger, SqsTrigger
from lamina.wire.serverless_queues import Path, Queues, Reporter, is_int

if TYPE_CHECKING:
    from lamina.wire.serverless import FunctionSpec

SCHEDULE_KEYS = frozenset(
    {
        "rate",
        "enabled",
        "input",
        "inputPath",
        "inputTransformer",
        "name",
        "description",
        "method",
        "timezone",
    }
)
SQS_KEYS = frozenset(
    {
        "arn",
        "batchSize",
        "maximumBatchingWindow",
        "functionResponseType",
        "filterPatterns",
        "maximumConcurrency",
        "enabled",
    }
)
DESTINATION_KEYS = frozenset({"onSuccess", "onFailure"})
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


def _unresolved(value: object, resolved: bool) -> bool:
    return not resolved and isinstance(value, str) and "${" in value


# --- a function's events and async settings --------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionTriggers:
    schedules: tuple[ScheduleTrigger, ...] = ()
    sqs: tuple[SqsTrigger, ...] = ()
    async_config: AsyncConfig | None = None


def function_triggers(
    r: Reporter, fn: Mapping[Any, Any], path: Path, queues: Queues, resolved: bool
) -> FunctionTriggers:
    schedules: list[ScheduleTrigger] = []
    sqs: list[SqsTrigger] = []
    events = fn.get("events")
    for index, item in enumerate(events if isinstance(events, list) else ()):
        if not isinstance(item, Mapping) or len(item) != 1:
            continue  # reported by wire.serverless
        [(kind, event)] = item.items()
        event_path = (*path, "events", index, kind)
        if kind == "schedule":
            schedules += _schedule(r, event, event_path, resolved)
        elif kind == "sqs":
            trigger = _sqs(r, event, event_path, queues)
            if trigger is not None:
                sqs.append(trigger)
    return FunctionTriggers(tuple(schedules), tuple(sqs), _async_config(r, fn, path))


def _schedule(r: Reporter, event: object, path: Path, resolved: bool) -> list[ScheduleTrigger]:
    settings: Mapping[str, Any]
    if isinstance(event, str):
        settings = {"rate": event}
    elif isinstance(event, Mapping):
        settings = event
        r.unknown_keys(settings, SCHEDULE_KEYS, path)
    else:
        r.problem(path, "must be a rate(...) or cron(...) expression, or a map with `rate`", event)
        return []
    where = path if isinstance(event, str) else (*path, "rate")
    rates = settings.get("rate")
    if isinstance(rates, str):
        rates = [rates]
    if not isinstance(rates, list) or not rates:
        r.problem(where, "required: a rate(...) or cron(...) expression, or a list of them")
        return []
    ok = True
    for index, expression in enumerate(rates):
        at = where if isinstance(settings.get("rate"), str) else (*where, index)
        if _unresolved(expression, resolved):
            continue
        try:
            parse(expression)
        except ScheduleExpressionError as exc:
            r.problem(at, str(exc))
            ok = False
    enabled = settings.get("enabled", True)
    if not isinstance(enabled, bool):
        r.problem((*path, "enabled"), "must be true or false", enabled)
        ok = False
    text_input = _schedule_input(r, settings.get("input"), (*path, "input"), resolved)
    input_path = settings.get("inputPath")
    if input_path is not None and not isinstance(input_path, str):
        r.problem((*path, "inputPath"), "must be a JSONPath string such as $.detail", input_path)
        ok = False
    if text_input is not None and input_path is not None:
        r.problem(path, "input and inputPath cannot both be set")
        ok = False
    if "inputTransformer" in settings:
        r.warn((*path, "inputTransformer"), "inputTransformer is not supported; ignored")
    strings = {key: settings.get(key) for key in ("name", "description", "timezone")}
    for key, value in strings.items():
        if value is not None and not isinstance(value, str):
            r.problem((*path, key), "must be a string", value)
            ok = False
    method = settings.get("method")
    if method is not None and method not in ("eventBus", "scheduler"):
        r.problem((*path, "method"), "must be eventBus or scheduler", method)
        ok = False
    if not ok:
        return []
    name = strings["name"]
    return [
        ScheduleTrigger(
            expression=str(expression).strip(),
            enabled=enabled,
            input=text_input,
            input_path=input_path,
            timezone=strings["timezone"] or "UTC",
            # Several expressions under one name become several rules.
            name=f"{name}-{index + 1}" if name and index else name,
            description=strings["description"] or "",
        )
        for index, expression in enumerate(rates)
    ]


def _schedule_input(r: Reporter, value: object, path: Path, resolved: bool) -> str | None:
    """`input` as JSON text: a map or list is serialized, a string must be JSON already."""
    if value is None:
        return None
    if isinstance(value, Mapping | list):
        return orjson.dumps(value).decode()
    if isinstance(value, str):
        if _unresolved(value, resolved):
            return value
        try:
            orjson.loads(value)
        except orjson.JSONDecodeError:
            r.problem(path, "must be a map, or a string of JSON", value)
            return None
        return value
    return orjson.dumps(value).decode()


def _sqs(r: Reporter, event: object, path: Path, queues: Queues) -> SqsTrigger | None:
    settings: Mapping[str, Any]
    if isinstance(event, str):
        settings = {"arn": event}
    elif isinstance(event, Mapping):
        settings = event
        r.unknown_keys(settings, SQS_KEYS, path)
    else:
        r.problem(path, "must be a queue ARN, or a map with `arn`", event)
        return None
    where = path if isinstance(event, str) else (*path, "arn")
    ref = settings.get("arn")
    queue = queues.name(ref) or (ref if isinstance(ref, str) and ref else None)
    ok = queue is not None
    if not ok:
        r.problem(where, "required: a queue of this file (key or logical id), a name or an ARN")
    values: dict[str, Any] = {}
    bounds = {"batchSize": (1, 10_000), "maximumBatchingWindow": (0, 300)}
    for key, (low, high) in bounds.items():
        value = settings.get(key)
        if value is None:
            continue
        if not is_int(value) or not low <= value <= high:
            r.problem((*path, key), f"must be an integer between {low} and {high}", value)
            ok = False
        values[key] = value
    concurrency = settings.get("maximumConcurrency")
    if concurrency is not None and (not is_int(concurrency) or not 2 <= concurrency <= 1000):
        r.problem(
            (*path, "maximumConcurrency"), "must be an integer between 2 and 1000", concurrency
        )
        ok = False
    response_type = settings.get("functionResponseType")
    if response_type is not None and response_type != REPORT_BATCH_ITEM_FAILURES:
        r.problem(
            (*path, "functionResponseType"), f"must be {REPORT_BATCH_ITEM_FAILURES}", response_type
        )
        ok = False
    enabled = settings.get("enabled", True)
    if not isinstance(enabled, bool):
        r.problem((*path, "enabled"), "must be true or false", enabled)
        ok = False
    if "filterPatterns" in settings:
        r.warn(
            (*path, "filterPatterns"),
            "filterPatterns are not supported; every message is delivered",
        )
    if not ok or queue is None:
        return None
    return SqsTrigger(
        queue=queue,
        batch_size=values.get("batchSize", 10),
        maximum_batching_window=values.get("maximumBatchingWindow", 0),
        report_batch_item_failures=response_type == REPORT_BATCH_ITEM_FAILURES,
        enabled=enabled,
        maximum_concurrency=concurrency,
    )


def _async_config(r: Reporter, fn: Mapping[Any, Any], path: Path) -> AsyncConfig | None:
    keys = ("maximumRetryAttempts", "maximumEventAge", "destinations", "onError")
    if all(fn.get(key) is None for key in keys):
        return None
    ok = True
    retries = fn.get("maximumRetryAttempts", 2)
    if not is_int(retries) or not 0 <= retries <= 2:
        r.problem((*path, "maximumRetryAttempts"), "must be an integer between 0 and 2", retries)
        ok = False
    age = fn.get("maximumEventAge", 21_600)
    if not is_int(age) or not 60 <= age <= 21_600:
        r.problem((*path, "maximumEventAge"), "must be between 60 and 21600 seconds", age)
        ok = False
    targets: dict[str, object] = {}
    destinations = fn.get("destinations")
    if destinations is not None:
        if isinstance(destinations, Mapping):
            r.unknown_keys(destinations, DESTINATION_KEYS, (*path, "destinations"))
            for key in ("onSuccess", "onFailure"):
                if destinations.get(key) is not None:
                    targets[key] = destinations[key]
        else:
            r.problem(
                (*path, "destinations"),
                "must be a map with onSuccess and/or onFailure",
                destinations,
            )
            ok = False
    if fn.get("onError") is not None:
        targets["onError"] = fn["onError"]
    texts: dict[str, str] = {}
    for key, value in targets.items():
        where = (*path, "onError") if key == "onError" else (*path, "destinations", key)
        text = _target_text(value)
        if text is None:
            r.problem(
                where,
                "must be a function key, a function or queue ARN, a queue key, or {type, arn}",
                value,
            )
            ok = False
        else:
            texts[key] = text
    if not ok:
        return None
    return AsyncConfig(
        maximum_retry_attempts=retries,
        maximum_event_age=age,
        on_success=texts.get("onSuccess"),
        on_failure=texts.get("onFailure"),
        dead_letter=texts.get("onError"),
    )


def _target_text(value: object) -> str | None:
    """A destination as written: a string, or `{type, arn}` (Serverless's long form), whose
    `arn` may be an intrinsic naming one of the file's queues (kept as JSON until resolved)."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and "arn" in value:
        return _target_text(value["arn"])
    if isinstance(value, Mapping) and len(value) == 1:
        [key] = value
        if key == "Ref" or str(key).startswith("Fn::"):
            return "ref:" + orjson.dumps(value).decode()
    return None


def resolve_targets(
    functions: Mapping[str, FunctionSpec], queues: Queues
) -> dict[str, FunctionSpec]:
    """Destinations and `onError` naming a function key or a queue of the file become that
    function's deployed name or that queue's ARN."""
    names = {key: f.name for key, f in functions.items()}

    def resolve(text: str | None) -> str | None:
        if text is None:
            return None
        if text.startswith("ref:"):
            queue = queues.name(orjson.loads(text.removeprefix("ref:")))
            return queues.arn(queue) if queue else text.removeprefix("ref:")
        if text in names:
            return names[text]
        queue = queues.name(text)
        return queues.arn(queue) if queue else text

    resolved: dict[str, FunctionSpec] = {}
    for key, f in functions.items():
        config = f.async_config
        if config is not None:
            config = replace(
                config,
                on_success=resolve(config.on_success),
                on_failure=resolve(config.on_failure),
                dead_letter=resolve(config.dead_letter),
            )
        resolved[key] = replace(f, async_config=config)
    return resolved
