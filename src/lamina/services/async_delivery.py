"""Concluding an asynchronous event: its destinations and dead-letter queue (reference 6).

Once the retry policy has decided (success, retries exhausted, event too old), the event
goes to its targets:

- a function target is an asynchronous event of that function, written in the same
  transaction as the original event's new state (so it is handed on exactly once);
- a queue target is sent through the `QueueBroker` after the event was saved as
  `delivering` with the targets still to send; a crash in between sends it again after the
  restart (at least once), and a broker fault is retried with the throttle backoff.

The event ends `succeeded` (success), `failed` (a failure that reached a target) or `dead`
(a failure that reached none: no target configured, or every target missing).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from lamina.core.clock import Clock
from lamina.core.destinations import (
    FunctionTarget,
    InvalidTarget,
    Outcome,
    QueueTarget,
    dead_letter_attributes,
    invocation_record,
    parse_target,
)
from lamina.core.errors import LaminaError, ResourceNotFoundException
from lamina.core.models import Account, EventStatus, QueuedEvent
from lamina.core.ports import QueueBroker
from lamina.core.retry import Condition, EventInvokeConfig, throttle_delay

log = logging.getLogger(__name__)

# Destination events get ids derived from the original's, so handing on twice is harmless.
_DESTINATION_IDS = uuid.UUID("6f1d8c1e-0b8e-4a55-9b59-1c1b2f0d6a11")


class Delivery:
    def __init__(
        self,
        *,
        save: Callable[[QueuedEvent, list[QueuedEvent]], None],
        resolve: Callable[[str, str | None], object],
        clock: Clock,
        account: Account,
        queues: QueueBroker | None,
    ) -> None:
        self._save = save
        self._resolve = resolve  # raises ResourceNotFoundException for a missing function
        self._clock = clock
        self._account = account
        self._queues = queues

    def __repr__(self) -> str:
        return f"<Delivery queues={'yes' if self._queues else 'no'}>"

    def conclude(
        self,
        event: QueuedEvent,
        condition: Condition,
        outcome: Outcome,
        config: EventInvokeConfig,
    ) -> QueuedEvent:
        """Save the event's conclusion and hand it on; returns the event as saved (still
        `delivering` when queue targets remain: pass it to `deliver`)."""
        now = self._clock.time()
        record = invocation_record(
            request_id=event.id,
            function_arn=self._account.function_arn(event.function_name, event.qualifier),
            condition=condition,
            invoke_count=event.attempts,
            request_payload=event.payload,
            outcome=outcome,
            timestamp=now,
        )
        wanted: list[tuple[str, str]] = []
        if condition is Condition.SUCCESS:
            wanted += [("on_success", config.on_success)] if config.on_success else []
        else:
            wanted += [("on_failure", config.on_failure)] if config.on_failure else []
            wanted += [("dead_letter", config.dead_letter)] if config.dead_letter else []
        detail: dict[str, Any] = {
            **{k: v for k, v in event.detail.items() if k == "redriven"},
            "condition": condition.value,
            "outcome": outcome_json(outcome),
            "delivered": [],
            "undelivered": [],
            "pending": [],
        }
        hand_on: list[QueuedEvent] = []
        for kind, text in wanted:
            try:
                target = parse_target(text)
            except InvalidTarget as exc:
                detail["undelivered"].append([kind, text, str(exc)])
                continue
            if isinstance(target, QueueTarget):
                detail["pending"].append([kind, text])
                continue
            try:
                self._resolve(target.name, target.qualifier)
            except LaminaError as exc:
                detail["undelivered"].append([kind, text, exc.message])
                continue
            hand_on.append(self._function_event(event, kind, target, record, now))
            detail["delivered"].append([kind, text])
        if detail["pending"]:
            detail["record"] = record
        status: EventStatus = "delivering" if detail["pending"] else _final(condition, detail)
        saved = dataclasses.replace(
            event, status=status, not_before=now, updated_at=now, detail=detail
        )
        self._save(saved, hand_on)
        return saved

    def deliver(self, event: QueuedEvent) -> QueuedEvent:
        """Send a `delivering` event to its queue targets; returns the event as saved."""
        detail = dict(event.detail)
        pending: list[list[str]] = list(detail.get("pending") or [])
        record = detail.get("record")
        outcome = outcome_from_json(detail.get("outcome") or {})
        while pending:
            kind, text = pending[0]
            try:
                self._send(event, kind, text, record, outcome)
            except (ResourceNotFoundException, InvalidTarget) as exc:
                reason = exc.message if isinstance(exc, LaminaError) else str(exc)
                detail["undelivered"] = [*detail.get("undelivered", []), [kind, text, reason]]
            except Exception:
                # The queue service failed, not the target: try again later, as Lambda
                # retries its own faults.
                log.exception("event %s: could not send to %s; trying again later", event.id, text)
                now = self._clock.time()
                failures = int(detail.get("send_failures", 0)) + 1
                saved = dataclasses.replace(
                    event,
                    detail={**detail, "pending": pending, "send_failures": failures},
                    not_before=now + throttle_delay(failures),
                    updated_at=now,
                )
                self._save(saved, [])
                return saved
            else:
                detail["delivered"] = [*detail.get("delivered", []), [kind, text]]
            pending = pending[1:]
        detail["pending"] = []
        detail.pop("record", None)
        now = self._clock.time()
        condition = Condition(detail.get("condition", Condition.RETRIES_EXHAUSTED.value))
        saved = dataclasses.replace(
            event, status=_final(condition, detail), detail=detail, updated_at=now
        )
        self._save(saved, [])
        return saved

    def _send(
        self, event: QueuedEvent, kind: str, text: str, record: object, outcome: Outcome
    ) -> None:
        if self._queues is None:
            raise ResourceNotFoundException("queues are not available in this Lamina")
        target = parse_target(text)
        assert isinstance(target, QueueTarget)
        if kind == "dead_letter":
            body = event.payload.decode(errors="replace")
            self._queues.send(target.queue, body, dead_letter_attributes(event.id, outcome))
        else:
            self._queues.send(target.queue, orjson.dumps(record).decode())

    def _function_event(
        self, event: QueuedEvent, kind: str, target: FunctionTarget, record: object, now: float
    ) -> QueuedEvent:
        # The legacy DLQ gets the original event; a destination gets the invocation record.
        payload = event.payload if kind == "dead_letter" else orjson.dumps(record)
        redriven = event.detail.get("redriven", 0)
        return QueuedEvent(
            id=str(uuid.uuid5(_DESTINATION_IDS, f"{event.id}/{kind}/{redriven}")),
            function_name=target.name,
            qualifier=target.qualifier or "$LATEST",
            payload=payload,
            enqueued_at=now,
            updated_at=now,
        )


def _final(condition: Condition, detail: dict[str, Any]) -> EventStatus:
    if condition is Condition.SUCCESS:
        return "succeeded"
    return "failed" if detail.get("delivered") else "dead"


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    fields = dataclasses.asdict(outcome)
    if outcome.payload is not None:
        fields["payload"] = outcome.payload.decode(errors="replace")
    return fields


def outcome_from_json(data: dict[str, Any]) -> Outcome:
    fields = {f.name: data[f.name] for f in dataclasses.fields(Outcome) if f.name in data}
    if isinstance(fields.get("payload"), str):
        fields["payload"] = fields["payload"].encode()
    return Outcome(**fields)
