"""Domain objects: functions, layers, queued events and log events.

Frozen and slotted; they are values. The store persists them, services pass them around,
and nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

LATEST = "$LATEST"

PYTHON_RUNTIMES = frozenset(
    {"python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13"}
)
PROVIDED_RUNTIMES = frozenset({"provided", "provided.al2", "provided.al2023"})
RUNTIMES = PYTHON_RUNTIMES | PROVIDED_RUNTIMES


@dataclass(frozen=True, slots=True)
class Account:
    """The identity ARNs are built from. Lamina has one account per installation."""

    region: str = "us-east-1"
    account_id: str = "000000000000"

    def function_arn(self, name: str, qualifier: str | None = None) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn

    def layer_arn(self, name: str, version: int | None = None) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account_id}:layer:{name}"
        return f"{arn}:{version}" if version is not None else arn


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """One version of a function: code plus configuration. `$LATEST` is the mutable one."""

    name: str
    runtime: str
    handler: str
    code_sha256: str  # hex SHA-256 of the zip bundle
    code_size: int
    memory_size: int = 128
    timeout: int = 3
    environment: dict[str, str] = field(default_factory=dict)
    layers: tuple[str, ...] = ()  # layer version ARNs, in order (later wins)
    description: str = ""
    reserved_concurrency: int | None = None
    version: str = LATEST
    revision_id: str = ""
    last_modified: str = ""  # ISO 8601, as AWS returns it

    @property
    def is_python(self) -> bool:
        return self.runtime in PYTHON_RUNTIMES


@dataclass(frozen=True, slots=True)
class LayerVersion:
    name: str
    version: int
    code_sha256: str
    code_size: int
    description: str = ""
    compatible_runtimes: tuple[str, ...] = ()
    created_date: str = ""


# pending: waiting to run (again); running: claimed; delivering: its outcome is decided and
# goes to destinations; succeeded / failed: done (a failure delivered somewhere); dead: a
# failure delivered nowhere, kept to be re-driven.
EventStatus = Literal["pending", "running", "delivering", "succeeded", "failed", "dead"]


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """An asynchronous (`Event`) invocation accepted into the durable queue."""

    id: str  # the request id the caller was given
    function_name: str
    qualifier: str
    payload: bytes
    enqueued_at: float  # epoch seconds
    attempts: int = 0  # invocations that ran (the record's approximateInvokeCount)
    status: EventStatus = "pending"
    not_before: float = 0.0  # epoch seconds; a retry's or a backoff's wait
    throttles: int = 0  # throttles and platform errors in a row (not attempts)
    updated_at: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)  # the last outcome, the delivery


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One line of a function's log stream (CloudWatch's data model)."""

    function_name: str
    stream: str
    timestamp_ms: int
    message: str
