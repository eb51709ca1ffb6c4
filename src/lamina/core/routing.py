"""Route matching on the data plane: a list of `Route`s compiled into a table, once per change.

Where a request goes (the mounts):

- A Host of `<service>-<stage>.localhost[:port]` addresses that service/stage; the whole path
  is matched against its routes.
- Otherwise a path starting `/<service>/<stage>` addresses that service/stage (its base URL);
  the rest of the path (or `/`) is matched against its routes.
- Otherwise, when exactly one service/stage has `alb` routes, they are matched at the root;
  they stay reachable through the base URL and the Host as well.
- Anything else is a miss.

Within one service/stage, routes are tried in this order:

1. API Gateway routes (`http` and `httpApi` together, as they share the base URL), the most
   specific path first: segment by segment a literal beats `{param}`, which beats `{proxy+}`.
   For the same path a method beats `ANY`. A route whose path matches but whose method does
   not is skipped, so a less specific path may still answer. `{param}` is one non-empty
   segment; `{name+}` is one or more segments and must come last (`/{proxy+}` misses `/`).
2. `alb` rules, lowest priority number first; every condition given must hold (within one
   condition any value may match). Paths are case-sensitive, hosts, headers and query
   strings are not; `*` is any run of characters and `?` any one.
3. The `httpApi` `$default` route.

Paths are matched as received (percent-encoded); literal segments of templates are encoded
the way clients encode them. Path parameters come back as they appear in the URL: decoding
them is the event format's business (REST leaves them encoded, HTTP APIs decode them).

Everything is checked when the table is compiled, and every problem is reported at once:
two routes answering the same method and path in one service/stage, two `alb` rules with one
priority, two service/stages with one host name, and malformed templates. Matching itself
does no I/O and allocates little: one dict lookup for the mount, one for an exact path, then
an ordered list of regular expressions.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl, quote

from lamina.core.errors import InvalidParameterValueException
from lamina.core.routes import ANY, DEFAULT_ROUTE, AlbConditions, Route, RouteKind

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", ANY})
HOST_SUFFIX = ".localhost"

_EMPTY: Mapping[str, str] = MappingProxyType({})
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_PCHAR_SAFE = "!$&'()*+,;=:@-._~"  # RFC 3986 pchar: what clients leave unencoded


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    path: str  # the path inside the service/stage: percent-encoded, base URL removed
    path_parameters: Mapping[str, str]  # as they appear in the URL


@dataclass(frozen=True, slots=True)
class Miss:
    kinds: frozenset[RouteKind]  # what the addressed service/stage serves; empty: none addressed


Lookup = Match | Miss


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: re.Pattern[str]
    names: tuple[str, ...]
    methods: dict[str, Route]


@dataclass(frozen=True, slots=True)
class _AlbRule:
    route: Route
    paths: tuple[re.Pattern[str], ...]
    methods: frozenset[str]
    hosts: tuple[re.Pattern[str], ...]
    headers: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]
    query: tuple[tuple[re.Pattern[str] | None, re.Pattern[str]], ...]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def matches(
        self, method: str, path: str, host: str, headers: Mapping[str, str], query: str, ip: str
    ) -> bool:
        if self.paths and not any(p.fullmatch(path) for p in self.paths):
            return False
        if self.methods and method not in self.methods:
            return False
        if self.hosts and not any(p.fullmatch(_hostname(host)) for p in self.hosts):
            return False
        for name, patterns in self.headers:
            value = headers.get(name)
            # Repeated headers arrive joined with ", "; any one of them may match.
            if value is None or not any(
                p.fullmatch(v) for p in patterns for v in (value, *value.split(", "))
            ):
                return False
        if self.query and not _query_matches(self.query, query):
            return False
        return not self.networks or _ip_in(ip, self.networks)


@dataclass(slots=True)
class _Api:
    """The routes of one service/stage."""

    kinds: frozenset[RouteKind]
    exact: dict[str, dict[str, Route]] = field(default_factory=dict)
    patterns: list[_Pattern] = field(default_factory=list)
    alb: list[_AlbRule] = field(default_factory=list)
    default: Route | None = None

    def match(
        self,
        method: str,
        path: str,
        host: str,
        headers: Mapping[str, str],
        query: str,
        source_ip: str,
    ) -> Lookup:
        by_method = self.exact.get(path)
        if by_method is not None:
            route = by_method.get(method) or by_method.get(ANY)
            if route is not None:
                return Match(route, path, _EMPTY)
        for pattern in self.patterns:
            found = pattern.regex.fullmatch(path)
            if found is None:
                continue
            route = pattern.methods.get(method) or pattern.methods.get(ANY)
            if route is not None:
                return Match(route, path, dict(zip(pattern.names, found.groups(), strict=True)))
        for rule in self.alb:
            if rule.matches(method, path, host, headers, query, source_ip):
                return Match(rule.route, path, _EMPTY)
        if self.default is not None:
            return Match(self.default, path, _EMPTY)
        return Miss(self.kinds)


class CompiledRoutes:
    """Compiled routes; immutable, so swapping one in is atomic. Build with `compile_routes`."""

    __slots__ = ("_by_host", "_by_prefix", "_root", "alb_root", "routes")

    def __init__(
        self,
        routes: tuple[Route, ...],
        by_prefix: dict[str, _Api],
        by_host: dict[str, _Api],
        root: _Api | None,
        alb_root: tuple[str, str] | None,
    ) -> None:
        self.routes = routes
        self._by_prefix = by_prefix
        self._by_host = by_host
        self._root = root
        self.alb_root = alb_root  # the (service, stage) whose alb rules answer at the root

    def __repr__(self) -> str:
        return f"<CompiledRoutes routes={len(self.routes)} apis={len(self._by_prefix)}>"

    def match(
        self,
        method: str,
        path: str,
        *,
        host: str = "",
        headers: Mapping[str, str] = _EMPTY,
        query: str = "",
        source_ip: str = "",
    ) -> Lookup:
        """`path` percent-encoded without the query string; `headers` with lower-case names."""
        if host and self._by_host:
            name = _hostname(host).lower()
            if name.endswith(HOST_SUFFIX):
                api = self._by_host.get(name[: -len(HOST_SUFFIX)])
                if api is not None:
                    return api.match(method, path or "/", host, headers, query, source_ip)
        second = path.find("/", 1)
        if second > 1:
            third = path.find("/", second + 1)
            key = path[1:third] if third > 0 else path[1:]
            api = self._by_prefix.get(key)
            if api is not None:
                rest = path[third:] if third > 0 else "/"
                return api.match(method, rest, host, headers, query, source_ip)
        if self._root is not None:
            return self._root.match(method, path, host, headers, query, source_ip)
        return Miss(frozenset())


def compile_routes(routes: Sequence[Route]) -> CompiledRoutes:
    """Raises `InvalidParameterValueException` naming every conflict and malformed route."""
    problems: list[str] = []
    grouped: dict[tuple[str, str], list[Route]] = {}
    for route in routes:
        grouped.setdefault((route.service, route.stage), []).append(route)

    by_prefix: dict[str, _Api] = {}
    by_host: dict[str, _Api] = {}
    host_owner: dict[str, tuple[str, str]] = {}
    alb_owners: list[tuple[str, str]] = []
    for (service, stage), members in grouped.items():
        api = _compile_api(service, stage, members, problems)
        by_prefix[f"{service}/{stage}"] = api
        host = f"{service}-{stage}".lower()
        owner = host_owner.setdefault(host, (service, stage))
        if owner != (service, stage):
            problems.append(
                f"{service}/{stage}: host name {host}{HOST_SUFFIX} is also the host of "
                f"{owner[0]}/{owner[1]}: rename a service or a stage"
            )
        else:
            by_host[host] = api
        if api.alb:
            alb_owners.append((service, stage))
    if problems:
        raise InvalidParameterValueException("invalid routes: " + "; ".join(problems))

    root: _Api | None = None
    alb_root: tuple[str, str] | None = None
    if len(alb_owners) == 1:
        alb_root = alb_owners[0]
        root = _Api(frozenset({"alb"}), alb=by_prefix["/".join(alb_root)].alb)
    return CompiledRoutes(tuple(routes), by_prefix, by_host, root, alb_root)


def _compile_api(service: str, stage: str, routes: Iterable[Route], problems: list[str]) -> _Api:
    place = f"{service}/{stage}"
    api = _Api(frozenset(r.kind for r in routes))
    seen: dict[tuple[str, str], Route] = {}  # (method, path shape) -> route
    patterns: dict[str, tuple[tuple[int, ...], _Pattern]] = {}  # template -> (ranks, pattern)
    priorities: dict[int, Route] = {}
    for route in routes:
        if route.method not in METHODS:
            problems.append(
                f"{place}: {_describe(route)}: method {route.method!r} must be one of "
                f"{', '.join(sorted(METHODS))}"
            )
        elif route.kind == "alb":
            other = priorities.setdefault(route.priority, route)
            if other is not route:
                problems.append(
                    f"{place}: alb priority {route.priority} is used by {other.function_name} "
                    f"and {route.function_name}: priorities must be unique"
                )
            rule = _compile_alb(place, route, problems)
            if rule is not None:
                api.alb.append(rule)
        elif route.path == DEFAULT_ROUTE:
            if route.kind != "httpApi":
                problems.append(f"{place}: {_describe(route)}: only httpApi has a $default route")
            elif api.default is not None:
                problems.append(_conflict(place, api.default, route))
            else:
                api.default = route
        else:
            template = normalize_path(route.path)
            compiled = _compile_template(template)
            if isinstance(compiled, str):
                problems.append(f"{place}: {_describe(route)}: {compiled}")
                continue
            shape, ranks, regex, names = compiled
            other = seen.setdefault((route.method, shape), route)
            if other is not route:
                problems.append(_conflict(place, other, route))
            elif regex is None:
                api.exact.setdefault(shape, {})[route.method] = route  # literal: shape is the path
            else:
                entry = patterns.setdefault(template, (ranks, _Pattern(regex, names, {})))
                entry[1].methods[route.method] = route
    ordered = sorted(patterns.items(), key=lambda item: (item[1][0], item[0]))
    api.patterns = [pattern for _, (_, pattern) in ordered]
    api.alb.sort(key=lambda rule: rule.route.priority)
    return api


def normalize_path(path: str) -> str:
    """serverless.yml writes `users/{id}` as well as `/users/{id}/`: both are `/users/{id}`."""
    return "/" + path.strip("/")


def resource_path(route: Route) -> str:
    """The route's path as API Gateway shows it (`resource`, `resourcePath`)."""
    return route.path if route.path == DEFAULT_ROUTE else normalize_path(route.path)


def route_key(route: Route) -> str:
    """`GET /users/{id}`, or `$default`, with the path normalized."""
    if route.path == DEFAULT_ROUTE:
        return DEFAULT_ROUTE
    return f"{route.method} {normalize_path(route.path)}"


def _conflict(place: str, first: Route, second: Route) -> str:
    return (
        f"{place}: {_describe(first)} and {_describe(second)} answer the same requests: "
        "one route per method and path in a service/stage"
    )


def _describe(route: Route) -> str:
    name = route_key(route) if route.kind != "alb" else f"alb priority {route.priority}"
    return f"{route.kind} {name} ({route.function_name})"


def _compile_template(
    template: str,
) -> tuple[str, tuple[int, ...], re.Pattern[str] | None, tuple[str, ...]] | str:
    """(shape, precedence ranks, regex or None for a literal path, parameter names), or why
    the template is malformed."""
    if template == "/":
        return "/", (), None, ()
    segments = template[1:].split("/")
    shape: list[str] = []
    ranks: list[int] = []
    parts: list[str] = []
    names: list[str] = []
    for index, segment in enumerate(segments):
        if not segment:
            return f"path {template!r} has an empty segment"
        if segment.startswith("{") and segment.endswith("}"):
            name = segment[1:-1]
            greedy = name.endswith("+")
            name = name.removesuffix("+")
            if not _NAME.fullmatch(name):
                return f"path {template!r}: parameter {segment!r} must be {{name}} or {{name+}}"
            if name in names:
                return f"path {template!r} names parameter {name!r} twice"
            if greedy and index != len(segments) - 1:
                return f"path {template!r}: greedy parameter {segment!r} must be the last segment"
            names.append(name)
            shape.append("{+}" if greedy else "{}")
            ranks.append(2 if greedy else 1)
            parts.append("(.+)" if greedy else "([^/]+)")
        elif "{" in segment or "}" in segment:
            return f"path {template!r}: segment {segment!r} must be a literal or a whole {{param}}"
        else:
            encoded = quote(segment, safe=_PCHAR_SAFE)
            shape.append(encoded)
            ranks.append(0)
            parts.append(re.escape(encoded))
    regex = re.compile("/" + "/".join(parts)) if names else None
    return "/" + "/".join(shape), tuple(ranks), regex, tuple(names)


def _compile_alb(place: str, route: Route, problems: list[str]) -> _AlbRule | None:
    conditions: AlbConditions = route.conditions
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for block in conditions.source_ips:
        try:
            networks.append(ipaddress.ip_network(block, strict=False))
        except ValueError:
            problems.append(
                f"{place}: {_describe(route)}: source IP {block!r} must be a CIDR block "
                "such as 192.0.2.0/24"
            )
            return None
    return _AlbRule(
        route=route,
        paths=tuple(_wildcard(p, ignore_case=False) for p in conditions.paths),
        methods=frozenset(m.upper() for m in conditions.methods),
        hosts=tuple(_wildcard(h) for h in conditions.hosts),
        headers=tuple(
            (name.lower(), tuple(_wildcard(v) for v in values))
            for name, values in conditions.headers
        ),
        query=tuple(
            (_wildcard(key) if key else None, _wildcard(value)) for key, value in conditions.query
        ),
        networks=tuple(networks),
    )


def _wildcard(pattern: str, *, ignore_case: bool = True) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _hostname(host: str) -> str:
    """The Host header without its port (`[::1]:80` keeps its brackets)."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.partition(":")[0]


def _query_matches(
    wanted: tuple[tuple[re.Pattern[str] | None, re.Pattern[str]], ...], query: str
) -> bool:
    pairs = parse_qsl(query, keep_blank_values=True)
    return any(
        (key is None or key.fullmatch(k)) and value.fullmatch(v)
        for key, value in wanted
        for k, v in pairs
    )


def _ip_in(ip: str, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in networks)
