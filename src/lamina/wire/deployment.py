"""The deployment document: what `lamina deploy` sends and the server applies atomically.

The CLI resolves serverless.yml (variables included), packages and uploads code bundles,
then posts one `DeploymentSpec` as JSON to `POST /lamina/v1/deployments`. The server
applies all of it in one transaction or nothing: functions, a published version of each
changed function (when `version_functions`), layers, routes. Pure data; no I/O here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lamina.core.routes import AlbConditions, Route


@dataclass(frozen=True, slots=True)
class LayerSpec:
    """A layer of the service itself (serverless.yml `layers:`), from an uploaded bundle."""

    key: str  # key in serverless.yml; functions refer to it as {Ref: <Key>LambdaLayer}
    name: str  # deployed layer name
    code_sha256: str
    description: str = ""
    compatible_runtimes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue the service declares (Lamina's built-in queue service, SQS semantics)."""

    name: str  # deployed queue name; FIFO queues end in ".fifo"
    fifo: bool = False
    visibility_timeout: int = 30  # seconds
    message_retention: int = 345_600  # seconds (4 days, SQS's default)
    delay: int = 0  # seconds
    dead_letter_queue: str | None = None  # another queue's name or ARN
    max_receive_count: int | None = None  # redrive after this many receives


@dataclass(frozen=True, slots=True)
class SqsTrigger:
    """An `sqs` event: the function consumes a queue (an event source mapping)."""

    queue: str  # queue name or ARN
    batch_size: int = 10
    maximum_batching_window: int = 0  # seconds
    report_batch_item_failures: bool = False  # functionResponseType: ReportBatchItemFailures
    enabled: bool = True
    maximum_concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class ScheduleTrigger:
    """A `schedule` event: `rate(5 minutes)` or `cron(0 0-6 ? * MON-FRI *)`."""

    expression: str
    enabled: bool = True
    input: str | None = None  # JSON text sent instead of the Scheduled Event
    input_path: str | None = None
    timezone: str = "UTC"
    name: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class AsyncConfig:
    """How asynchronous invocations of the function are retried and where results go.
    Targets are a function name/ARN or a queue ARN (`arn:aws:sqs:<region>:<acct>:<name>`)."""

    maximum_retry_attempts: int = 2
    maximum_event_age: int = 21_600  # seconds
    on_success: str | None = None
    on_failure: str | None = None
    dead_letter: str | None = None  # onError (legacy DLQ)


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    key: str  # key in serverless.yml
    name: str  # deployed name, `<service>-<stage>-<key>` unless `name:` is set
    runtime: str
    handler: str
    code_sha256: str  # an already uploaded bundle (PUT /lamina/v1/bundles/<sha>)
    memory_size: int = 1024
    timeout: int = 6
    environment: dict[str, str] = field(default_factory=dict)
    layers: tuple[str, ...] = ()  # layer version ARNs, or "layer:<key>" for LayerSpec keys
    description: str = ""
    reserved_concurrency: int | None = None
    provisioned_concurrency: int | None = None
    routes: tuple[Route, ...] = ()  # service/stage/function_name already filled in
    schedules: tuple[ScheduleTrigger, ...] = ()
    sqs: tuple[SqsTrigger, ...] = ()
    async_config: AsyncConfig | None = None


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    service: str
    stage: str
    region: str
    functions: tuple[FunctionSpec, ...]
    layers: tuple[LayerSpec, ...] = ()
    version_functions: bool = True
    queues: tuple[QueueSpec, ...] = ()


def to_json(spec: DeploymentSpec) -> dict[str, Any]:
    return asdict(spec)


def from_json(data: dict[str, Any]) -> DeploymentSpec:
    """Inverse of `to_json`. Raises KeyError/TypeError/ValueError on a malformed document."""
    functions = tuple(
        FunctionSpec(
            **{
                **f,
                "environment": dict(f.get("environment") or {}),
                "layers": tuple(f.get("layers") or ()),
                "routes": tuple(_route(r) for r in f.get("routes") or ()),
                "schedules": tuple(ScheduleTrigger(**t) for t in f.get("schedules") or ()),
                "sqs": tuple(SqsTrigger(**t) for t in f.get("sqs") or ()),
                "async_config": (
                    AsyncConfig(**f["async_config"]) if f.get("async_config") else None
                ),
            }
        )
        for f in data["functions"]
    )
    layers = tuple(
        LayerSpec(**{**layer, "compatible_runtimes": tuple(layer.get("compatible_runtimes") or ())})
        for layer in data.get("layers") or ()
    )
    return DeploymentSpec(
        service=data["service"],
        stage=data["stage"],
        region=data["region"],
        functions=functions,
        layers=layers,
        version_functions=bool(data.get("version_functions", True)),
        queues=tuple(QueueSpec(**q) for q in data.get("queues") or ()),
    )


def _route(data: dict[str, Any]) -> Route:
    conditions = data.get("conditions") or {}
    return Route(
        **{
            **data,
            "conditions": AlbConditions(
                paths=tuple(conditions.get("paths") or ()),
                methods=tuple(conditions.get("methods") or ()),
                hosts=tuple(conditions.get("hosts") or ()),
                headers=tuple(
                    (name, tuple(values)) for name, values in conditions.get("headers") or ()
                ),
                query=tuple((k, v) for k, v in conditions.get("query") or ()),
                source_ips=tuple(conditions.get("source_ips") or ()),
            ),
        }
    )
