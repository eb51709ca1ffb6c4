"""HTTP routes: how requests on the data plane reach functions (API Gateway REST `http`,
HTTP API `httpApi`, and Application Load Balancer `alb` events).

Every service/stage has its own base URL on the data plane, `/<service>/<stage>`, under which
its `http` and `httpApi` routes are mounted (like an API Gateway API's own hostname); a
request whose Host is `<service>-<stage>.localhost` reaches the same routes without the
prefix. ALB rules mount at the root of the data plane when a single service/stage has them
(otherwise under its base URL, like the other kinds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

RouteKind = Literal["http", "httpApi", "alb"]
PayloadVersion = Literal["1.0", "2.0"]
ANY = "ANY"
DEFAULT_ROUTE = "$default"  # the httpApi '*' catch-all


@dataclass(frozen=True, slots=True)
class AlbConditions:
    """An ALB listener rule's conditions; every non-empty one must match."""

    paths: tuple[str, ...] = ()  # patterns with * and ? wildcards
    methods: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, accepted values)
    query: tuple[tuple[str, str], ...] = ()
    source_ips: tuple[str, ...] = ()  # CIDR blocks


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    service: str
    stage: str
    function_name: str  # deployed name
    qualifier: str | None = None  # the version a deployment published, None for $LATEST
    method: str = ANY  # upper case, or ANY
    path: str = DEFAULT_ROUTE  # "/users/{id}", "/{proxy+}", or $default (httpApi '*')
    payload_version: PayloadVersion = "2.0"  # httpApi; `http` is always 1.0, `alb` its own
    priority: int = 0  # alb: lower wins
    conditions: AlbConditions = field(default_factory=AlbConditions)  # alb
    multi_value_headers: bool = False  # alb
    cors: bool = False

    @property
    def api_id(self) -> str:
        return f"{self.service}-{self.stage}"

    @property
    def route_key(self) -> str:
        """API Gateway's routeKey: `GET /users/{id}`, or `$default`."""
        if self.path == DEFAULT_ROUTE:
            return DEFAULT_ROUTE
        return f"{self.method} {self.path}"
