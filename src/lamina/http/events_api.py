"""Routes for asynchronous events and schedules: Lamina's own (`lamina events`,
`lamina schedules`) and Lambda's event invoke config API.

    GET    /lamina/v1/events?status=&function=&limit=   200 {events, counts}
    POST   /lamina/v1/events/{id}/redrive               200 {event}
    GET    /lamina/v1/schedules                         200 {schedules}
    PUT    /2019-09-25/functions/{name}/event-invoke-config[?Qualifier=]   Put...
    POST   /2019-09-25/functions/{name}/event-invoke-config[?Qualifier=]   Update...
    GET    /2019-09-25/functions/{name}/event-invoke-config[?Qualifier=]   Get...
    DELETE /2019-09-25/functions/{name}/event-invoke-config[?Qualifier=]   Delete... (204)

`status` is one of `STATUSES` or `all`; without it the events still open or dead are listed.
An event invoke config put without a qualifier is `$LATEST`'s (as on Lambda); the one a
deployment sets applies to every qualifier without its own, and Get shows it too.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote

import orjson

from lamina.core.clock import Clock
from lamina.core.errors import InvalidParameterValueException, ResourceNotFoundException
from lamina.core.models import LATEST, Account, EventStatus, QueuedEvent
from lamina.core.retry import EventInvokeConfig
from lamina.core.schedules import ScheduleRule, rule_arn
from lamina.http.control_api import RouteEntry, json_body, json_response
from lamina.http.server import Request, Response
from lamina.services.async_invoke import AsyncInvoker, EventQueue
from lamina.services.invoke import InvokeService
from lamina.services.schedules import ScheduleService
from lamina.wire.lambda_api import parse_function_name

# What `lamina events` shows: pending splits into queued (never tried) and retrying.
STATUSES: dict[str, tuple[EventStatus, ...]] = {
    "queued": ("pending",),
    "retrying": ("pending",),
    "running": ("running",),
    "delivering": ("delivering",),
    "succeeded": ("succeeded",),
    "failed": ("failed",),
    "dead": ("dead",),
}
OPEN = ("queued", "retrying", "running", "delivering", "dead")
ALL_QUALIFIERS = ""
_CONFIG = r"/2019-09-25/functions/(?P<name>[^/]+)/event-invoke-config/?"


class ConfigStore(Protocol):
    """`lamina.store.events.SqliteEventInvokeConfigStore`."""

    def get(self, function_name: str, qualifier: str) -> tuple[EventInvokeConfig, float] | None: ...
    def put(
        self, function_name: str, qualifier: str, config: EventInvokeConfig, now: float
    ) -> None: ...
    def delete(self, function_name: str, qualifier: str) -> bool: ...


class EventsApi:
    def __init__(
        self,
        *,
        events: AsyncInvoker,
        queue: EventQueue,
        configs: ConfigStore,
        schedules: ScheduleService,
        invoke: InvokeService,
        account: Account,
        clock: Clock,
    ) -> None:
        self._events = events
        self._queue = queue
        self._configs = configs
        self._schedules = schedules
        self._invoke = invoke
        self._account = account
        self._clock = clock

    def routes(self) -> list[RouteEntry]:
        config = re.compile(_CONFIG)
        return [
            ("GET", re.compile(r"/lamina/v1/events/?"), self.list_events),
            ("POST", re.compile(r"/lamina/v1/events/(?P<id>[^/]+)/redrive/?"), self.redrive),
            ("GET", re.compile(r"/lamina/v1/schedules/?"), self.list_schedules),
            ("PUT", config, self.put_config),
            ("POST", config, self.update_config),
            ("GET", config, self.get_config),
            ("DELETE", config, self.delete_config),
        ]

    # Lamina's own

    async def list_events(self, request: Request, match: re.Match[str], rid: str) -> Response:
        query = parse_qs(request.query)
        wanted = (query.get("status") or [""])[0]
        shown = OPEN if not wanted else tuple(STATUSES) if wanted == "all" else (wanted,)
        unknown = [s for s in shown if s not in STATUSES]
        if unknown:
            raise InvalidParameterValueException(
                f"status = {wanted!r}: must be one of {', '.join(STATUSES)} or all"
            )
        function = _first(query, "function")
        limit_text = (query.get("limit") or ["1000"])[0]
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 10_000:
            raise InvalidParameterValueException(f"limit = {limit_text!r}: must be 1-10000")
        statuses = {s for name in shown for s in STATUSES[name]}
        events = self._queue.list(sorted(statuses), function, int(limit_text))
        rows = [event_json(e) for e in events]
        rows = [row for row in rows if row["status"] in shown]
        return json_response({"events": rows, "counts": self._queue.counts()}, rid)

    async def redrive(self, request: Request, match: re.Match[str], rid: str) -> Response:
        event = self._events.redrive(unquote(match["id"]))
        return json_response({"event": event_json(event)}, rid)

    async def list_schedules(self, request: Request, match: re.Match[str], rid: str) -> Response:
        rows = [self._schedule_json(rule, due) for rule, due in self._schedules.rules()]
        return json_response({"schedules": rows}, rid)

    def _schedule_json(self, rule: ScheduleRule, due: float | None) -> dict[str, Any]:
        return {
            "rule": rule.rule,
            "arn": rule_arn(self._account, rule.rule),
            "service": rule.service,
            "stage": rule.stage,
            "function": rule.function_name,
            "qualifier": rule.qualifier,
            "expression": rule.expression,
            "timezone": rule.timezone,
            "enabled": rule.enabled,
            "description": rule.description,
            "lastFired": _iso(rule.last_fired),
            "nextFire": _iso(due),
        }

    # Lambda's event invoke config

    async def put_config(self, request: Request, match: re.Match[str], rid: str) -> Response:
        return self._write_config(request, match, rid, merge=False)

    async def update_config(self, request: Request, match: re.Match[str], rid: str) -> Response:
        return self._write_config(request, match, rid, merge=True)

    def _write_config(
        self, request: Request, match: re.Match[str], rid: str, *, merge: bool
    ) -> Response:
        name, qualifier = self._function(match, request)
        found = self._find(name, qualifier)
        current = found[0] if found else EventInvokeConfig()
        body = json_body(request)
        # The legacy DLQ is function configuration on Lambda, not part of this API: keep it.
        config = _config_from(body, current if merge else None, current.dead_letter)
        problems = config.problems()
        if problems:
            raise InvalidParameterValueException("; ".join(problems))
        now = self._clock.time()
        self._configs.put(name, qualifier, config, now)
        return json_response(self._config_json(name, qualifier, config, now), rid)

    async def get_config(self, request: Request, match: re.Match[str], rid: str) -> Response:
        name, qualifier = self._function(match, request)
        found = self._find(name, qualifier)
        if found is None:
            raise ResourceNotFoundException(
                f"The function {self._account.function_arn(name, qualifier)} doesn't have an "
                "EventInvokeConfig"
            )
        config, modified = found
        return json_response(self._config_json(name, qualifier, config, modified), rid)

    async def delete_config(self, request: Request, match: re.Match[str], rid: str) -> Response:
        name, qualifier = self._function(match, request)
        if not self._configs.delete(name, qualifier):
            raise ResourceNotFoundException(
                f"The function {self._account.function_arn(name, qualifier)} doesn't have an "
                "EventInvokeConfig"
            )
        return Response(204, b"", [("x-amzn-RequestId", rid)])

    def _function(self, match: re.Match[str], request: Request) -> tuple[str, str]:
        name, qualifier = parse_function_name(match["name"])
        query = _first(parse_qs(request.query), "Qualifier")
        qualifier = qualifier or query or LATEST
        self._invoke.resolve(name, qualifier)  # ResourceNotFoundException
        return name, qualifier

    def _find(self, name: str, qualifier: str) -> tuple[EventInvokeConfig, float] | None:
        return self._configs.get(name, qualifier) or self._configs.get(name, ALL_QUALIFIERS)

    def _config_json(
        self, name: str, qualifier: str, config: EventInvokeConfig, modified: float
    ) -> dict[str, Any]:
        destinations: dict[str, Any] = {}
        if config.on_success:
            destinations["OnSuccess"] = {"Destination": config.on_success}
        if config.on_failure:
            destinations["OnFailure"] = {"Destination": config.on_failure}
        return {
            "LastModified": modified,
            "FunctionArn": self._account.function_arn(name, qualifier),
            "MaximumRetryAttempts": config.maximum_retry_attempts,
            "MaximumEventAgeInSeconds": config.maximum_event_age,
            "DestinationConfig": destinations,
        }


def _config_from(
    body: dict[str, Any], base: EventInvokeConfig | None, dead_letter: str | None
) -> EventInvokeConfig:
    config = base or EventInvokeConfig()
    changes: dict[str, Any] = {"dead_letter": dead_letter}
    if "MaximumRetryAttempts" in body:
        changes["maximum_retry_attempts"] = body["MaximumRetryAttempts"]
    if "MaximumEventAgeInSeconds" in body:
        changes["maximum_event_age"] = body["MaximumEventAgeInSeconds"]
    destinations = body.get("DestinationConfig")
    if isinstance(destinations, dict):
        for key, field in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
            if key in destinations:
                target = destinations[key]
                arn = target.get("Destination") if isinstance(target, dict) else None
                if arn is not None and not isinstance(arn, str):
                    raise InvalidParameterValueException(
                        f"DestinationConfig.{key}.Destination = {arn!r}: must be an ARN"
                    )
                changes[field] = arn or None
    elif base is None:
        changes.update(on_success=None, on_failure=None)
    return dataclasses.replace(config, **changes)


def display_status(event: QueuedEvent) -> str:
    if event.status == "pending":
        return "retrying" if event.attempts or event.throttles else "queued"
    return event.status


def event_json(event: QueuedEvent) -> dict[str, Any]:
    detail = event.detail
    outcome = detail.get("outcome") or {}
    error: dict[str, Any] | None = None
    if outcome and (outcome.get("function_error") or outcome.get("error_type")):
        message = outcome.get("error_message")
        error_type = outcome.get("error_type")
        payload = outcome.get("payload")
        if isinstance(payload, str):
            try:
                parsed = orjson.loads(payload)
            except orjson.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                error_type = parsed.get("errorType", error_type)
                message = parsed.get("errorMessage", message)
            elif message is None:
                message = payload[:1024]
        error = {
            "statusCode": outcome.get("status_code"),
            "functionError": outcome.get("function_error"),
            "errorType": error_type,
            "errorMessage": message,
        }
    return {
        "id": event.id,
        "function": event.function_name,
        "qualifier": event.qualifier,
        "status": display_status(event),
        "attempts": event.attempts,
        "throttles": event.throttles,
        "enqueued": _iso(event.enqueued_at),
        "updated": _iso(event.updated_at),
        "nextAttempt": _iso(event.not_before) if event.status == "pending" else None,
        "condition": detail.get("condition"),
        "error": error,
        "delivered": detail.get("delivered") or [],
        "undelivered": detail.get("undelivered") or [],
        "redriven": detail.get("redriven", 0),
        "payloadSize": len(event.payload),
    }


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _iso(epoch: float | None) -> str | None:
    if epoch is None or epoch <= 0:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
