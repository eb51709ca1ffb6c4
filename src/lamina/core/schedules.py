"""Schedule rules (serverless.yml `schedule` events) and the event they fire with.

A rule fires its function asynchronously with EventBridge's "Scheduled Event" (reference
2.5), or with the configured `input` instead, or with the part of the Scheduled Event that
`inputPath` selects.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from lamina.core.models import Account

RULE_NAME = re.compile(r"[.\-_A-Za-z0-9]{1,64}")  # EventBridge's rule name pattern
INPUT_PATH = re.compile(r"\$(?:\.[A-Za-z0-9_-]+)*")


@dataclass(frozen=True, slots=True)
class ScheduleRule:
    rule: str  # unique among all stacks
    service: str
    stage: str
    function_name: str
    qualifier: str  # the version the deployment made live, or $LATEST
    expression: str
    timezone: str = "UTC"
    enabled: bool = True
    input: str | None = None  # JSON text sent instead of the Scheduled Event
    input_path: str | None = None
    description: str = ""
    last_fired: float | None = None  # epoch seconds; kept across restarts and redeploys
    created: float = 0.0


def rule_arn(account: Account, rule: str) -> str:
    return f"arn:aws:events:{account.region}:{account.account_id}:rule/{rule}"


def scheduled_event(account: Account, rule: ScheduleRule, fired_at: float) -> dict[str, Any]:
    """EventBridge's Scheduled Event for one firing (`time` to the second, as EventBridge)."""
    moment = datetime.fromtimestamp(int(fired_at), UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account.account_id,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": account.region,
        "resources": [rule_arn(account, rule.rule)],
        "detail": {},
    }


def payload(account: Account, rule: ScheduleRule, fired_at: float) -> bytes:
    """What the function receives: `input` as is, else the Scheduled Event (or the part of
    it `inputPath` selects; null when the path selects nothing)."""
    if rule.input is not None:
        return rule.input.encode()
    value: Any = scheduled_event(account, rule, fired_at)
    if rule.input_path:
        for key in rule.input_path.split(".")[1:]:
            value = value.get(key) if isinstance(value, dict) else None
    return orjson.dumps(value)
