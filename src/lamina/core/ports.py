"""Ports: what services need from the outside world. Adapters implement them.

`Store` is implemented by `lamina.store.sqlite.SqliteStore`; `SandboxDriver` by the drivers in
`lamina.sandbox`. Services depend on these Protocols only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lamina.core.invocation import Invocation
from lamina.core.models import FunctionConfig, LayerVersion, LogEvent
from lamina.core.routes import Route


class Store(Protocol):
    """Durable state. Every method is one transaction: it fully happens or not at all."""

    # functions ($LATEST and published versions share one table, keyed by name + version)
    def get_function(self, name: str, version: str = "$LATEST") -> FunctionConfig | None: ...
    def list_functions(self) -> list[FunctionConfig]: ...  # $LATEST of each, by name
    def put_function(self, config: FunctionConfig) -> None: ...  # insert or replace
    def delete_function(self, name: str) -> bool: ...  # every version; False if absent

    # layers
    def publish_layer_version(self, layer: LayerVersion) -> LayerVersion: ...  # assigns version
    def get_layer_version(self, name: str, version: int) -> LayerVersion | None: ...
    def list_layer_versions(self, name: str) -> list[LayerVersion]: ...  # newest first

    # (the queue of asynchronous invocations is `lamina.store.events`, on the same file)

    # logs
    def append_logs(self, events: Sequence[LogEvent]) -> None: ...
    def query_logs(
        self, function_name: str, since_ms: int, after_id: int = 0, limit: int = 10_000
    ) -> list[tuple[int, LogEvent]]: ...  # (id, event) ordered by id

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What an execution environment is started with."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path  # the task root
    task_root: Path
    opt_root: Path | None
    tmp_dir: Path
    memory_mb: int
    log_fd: int  # write end: the process's stdout and stderr go here
    # A directory Lamina and the process share read-write at the same path (for example
    # php-fpm's FastCGI socket); None when the runtime needs none.
    socket_dir: Path | None = None
    timeout_s: float = 0.0  # the function's timeout (drivers may use it for limits)
    network: str = "shared"  # "shared" (the host's network) or "none" (loopback only)


class ExecFailed(OSError):
    """The environment's program could not be run (not found, not executable, not a valid
    executable): the function's fault, `Runtime.InvalidEntrypoint`, with the path the
    function sees (Lambda: "fork/exec /var/task/bootstrap: permission denied"). Any other
    OSError out of a start is the platform's."""


class SandboxProcess(Protocol):
    """A started execution environment's process (group)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait_exit(self) -> int: ...

    def kill(self) -> None:
        """Kill the process and everything it started. Idempotent."""
        ...

    def memory_used_mb(self) -> int:
        """Peak resident memory of the process tree so far, in MB (0 if unknown)."""
        ...


class SandboxDriver(Protocol):
    name: str

    async def start(self, spec: SandboxSpec) -> SandboxProcess: ...

    def remaps_paths(self) -> bool:
        """True when the function sees /var/task, /opt, /tmp; False when it sees real paths."""
        ...


class RuntimeTarget(Protocol):
    """What a Runtime API endpoint serves: one execution environment's side of the API."""

    async def wait_next(self) -> Invocation:
        """The next invocation for the runtime (a long poll; raises on invalid state)."""
        ...

    def post_response(self, request_id: str, body: bytes, content_type: str) -> None: ...

    def post_error(self, request_id: str, body: bytes, content_type: str) -> None: ...

    def post_init_error(self, body: bytes, content_type: str) -> None: ...

    def post_too_large(self) -> None:
        """The runtime posted a body over the Runtime API's payload limit."""
        ...


class RuntimeEndpoint(Protocol):
    @property
    def address(self) -> str:  # host:port, given to the runtime as AWS_LAMBDA_RUNTIME_API
        ...

    def close(self) -> None: ...


class RuntimeApiServer(Protocol):
    async def open(self, target: RuntimeTarget) -> RuntimeEndpoint: ...


class RouteTable(Protocol):
    """The data plane's routes (the gateway). Replaced as a whole, so that a deployment's
    routes go live together; `set_routes` raises InvalidParameterValueException, changing
    nothing, when routes conflict."""

    def set_routes(self, routes: Sequence[Route]) -> None: ...

    def endpoints(self, base_url: str) -> list[tuple[Route, str]]:
        """Each live route with the URL it answers on under `base_url`."""
        ...


class QueueBroker(Protocol):
    """The built-in queue service as other services see it (deployments, async destinations).

    Implemented by `lamina.services.queues`; the deploy service declares a stack's queues
    and its functions' `sqs` event source mappings after its transaction commits (they are
    validated before it).
    """

    def validate_queues(self, service: str, stage: str, queues: Sequence[object]) -> list[str]:
        """Problems with these `QueueSpec`s (empty when they can be declared)."""
        ...

    def declare_queues(self, service: str, stage: str, queues: Sequence[object]) -> None: ...

    def set_mappings(
        self, service: str, stage: str, mappings: Sequence[tuple[str, str | None, object]]
    ) -> None:
        """The stack's event source mappings: (function name, qualifier, `SqsTrigger`)."""
        ...

    def send(self, queue: str, body: str, attributes: dict[str, str] | None = None) -> None:
        """Enqueue one message on a queue named by name or ARN (for DLQs and destinations).
        Raises ResourceNotFoundException for an unknown queue."""
        ...
