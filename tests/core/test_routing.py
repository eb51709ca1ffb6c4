from __future__ import annotations

from collections.abc import Mapping

import pytest

from lamina.core.errors import InvalidParameterValueException
from lamina.core.routes import AlbConditions, Route, RouteKind
from lamina.core.routing import (
    CompiledRoutes,
    Match,
    Miss,
    compile_routes,
    resource_path,
    route_key,
)


def http(method: str, path: str, fn: str = "f", service: str = "app", stage: str = "dev") -> Route:
    return Route("http", service, stage, fn, method=method, path=path)


def api(method: str, path: str, fn: str = "f", service: str = "app", stage: str = "dev") -> Route:
    return Route("httpApi", service, stage, fn, method=method, path=path)


def alb(
    fn: str, priority: int, service: str = "app", stage: str = "dev", **conditions: object
) -> Route:
    values = {k: tuple(v) for k, v in conditions.items()}  # type: ignore[call-overload]
    return Route("alb", service, stage, fn, priority=priority, conditions=AlbConditions(**values))


def hit(table: CompiledRoutes, method: str, path: str, **kw: object) -> Match:
    found = table.match(method, path, **kw)  # type: ignore[arg-type]
    assert isinstance(found, Match), f"{method} {path}: {found}"
    return found


def fn_of(table: CompiledRoutes, method: str, path: str, **kw: object) -> str:
    return hit(table, method, path, **kw).route.function_name


def miss(table: CompiledRoutes, method: str, path: str, **kw: object) -> frozenset[RouteKind]:
    found = table.match(method, path, **kw)  # type: ignore[arg-type]
    assert isinstance(found, Miss), f"{method} {path} matched {found}"
    return found.kinds


# API Gateway precedence


def test_http_api_documentation_example() -> None:
    """The routing example of API Gateway's HTTP API guide, route for route."""
    table = compile_routes(
        [
            api("GET", "/pets/dog/1", "exact"),
            api("GET", "/pets/dog/{id}", "param"),
            api("GET", "/pets/{proxy+}", "greedy"),
            api("ANY", "/{proxy+}", "any"),
            api("ANY", "$default", "default"),
        ]
    )
    assert fn_of(table, "GET", "/app/dev/pets/dog/1") == "exact"
    assert fn_of(table, "GET", "/app/dev/pets/dog/2") == "param"
    assert fn_of(table, "GET", "/app/dev/pets/cat/1") == "greedy"
    assert fn_of(table, "POST", "/app/dev/pets/dog/1") == "any"
    assert fn_of(table, "POST", "/app/dev/") == "default"  # {proxy+} needs a segment


def test_a_literal_segment_beats_a_parameter_segment_by_segment() -> None:
    table = compile_routes([http("GET", "/a/{x}/c", "first-param"), http("GET", "/a/b/{y}", "b")])
    assert fn_of(table, "GET", "/app/dev/a/b/c") == "b"
    assert fn_of(table, "GET", "/app/dev/a/z/c") == "first-param"


def test_a_parameter_is_one_segment_and_greedy_is_one_or_more() -> None:
    table = compile_routes(
        [http("GET", "/users/{id}", "one"), http("ANY", "/files/{path+}", "all")]
    )
    match = hit(table, "GET", "/app/dev/users/42")
    assert (match.route.function_name, dict(match.path_parameters)) == ("one", {"id": "42"})
    assert miss(table, "GET", "/app/dev/users/42/posts") == {"http"}
    assert miss(table, "GET", "/app/dev/users/") == {"http"}
    match = hit(table, "DELETE", "/app/dev/files/a/b%2Fc/d.txt")
    assert dict(match.path_parameters) == {"path": "a/b%2Fc/d.txt"}
    assert match.path == "/files/a/b%2Fc/d.txt"
    assert miss(table, "GET", "/app/dev/files/") == {"http"}


def test_proxy_plus_key_is_proxy() -> None:
    table = compile_routes([http("ANY", "/{proxy+}")])
    assert dict(hit(table, "GET", "/app/dev/x/y").path_parameters) == {"proxy": "x/y"}
    assert miss(table, "GET", "/app/dev/") == {"http"}  # Bref <= 0.5 also declares `ANY /`


def test_a_method_beats_any_for_the_same_path() -> None:
    table = compile_routes([http("ANY", "/items", "any"), http("GET", "/items", "get")])
    assert fn_of(table, "GET", "/app/dev/items") == "get"
    assert fn_of(table, "PATCH", "/app/dev/items") == "any"
    table = compile_routes([http("ANY", "/i/{id}", "any"), http("GET", "/i/{id}", "get")])
    assert fn_of(table, "GET", "/app/dev/i/1") == "get"
    assert fn_of(table, "PUT", "/app/dev/i/1") == "any"


def test_a_path_whose_method_does_not_match_falls_through() -> None:
    table = compile_routes([http("GET", "/users/me", "me"), http("POST", "/users/{id}", "post")])
    assert fn_of(table, "POST", "/app/dev/users/me") == "post"
    assert miss(table, "DELETE", "/app/dev/users/me") == {"http"}


def test_paths_are_matched_as_received_and_templates_encoded_like_clients_do() -> None:
    table = compile_routes([http("GET", "/café/a:b", "lit"), http("GET", "/x/{id}", "param")])
    assert fn_of(table, "GET", "/app/dev/caf%C3%A9/a:b") == "lit"
    assert dict(hit(table, "GET", "/app/dev/x/a%20b").path_parameters) == {"id": "a%20b"}


def test_serverless_style_paths_are_normalized() -> None:
    route = http("GET", "users/{id}/")
    table = compile_routes([route, http("GET", "health")])
    assert hit(table, "GET", "/app/dev/users/1").route is route
    assert fn_of(table, "GET", "/app/dev/health") == "f"
    assert resource_path(route) == "/users/{id}"
    assert route_key(route) == "GET /users/{id}"
    assert route_key(api("ANY", "$default")) == "$default"


def test_rest_and_http_api_routes_share_the_base_url() -> None:
    table = compile_routes([http("GET", "/rest", "rest"), api("GET", "/v2", "v2")])
    assert hit(table, "GET", "/app/dev/rest").route.kind == "http"
    assert hit(table, "GET", "/app/dev/v2").route.kind == "httpApi"
    assert miss(table, "GET", "/app/dev/none") == {"http", "httpApi"}


# mounts


def test_the_base_url_root_is_slash() -> None:
    table = compile_routes([http("GET", "/", "root")])
    assert hit(table, "GET", "/app/dev").path == "/"
    assert hit(table, "GET", "/app/dev/").path == "/"
    assert miss(table, "GET", "/app") == frozenset()
    assert miss(table, "GET", "/") == frozenset()
    assert miss(table, "GET", "/app/prod/") == frozenset()


def test_host_addresses_a_service_stage_without_the_prefix() -> None:
    table = compile_routes(
        [http("GET", "/users", "dev"), http("GET", "/users", "prod", stage="prod")]
    )
    assert fn_of(table, "GET", "/users", host="app-dev.localhost:8080") == "dev"
    assert fn_of(table, "GET", "/users", host="APP-PROD.localhost") == "prod"
    assert hit(table, "GET", "/users", host="app-dev.localhost").path == "/users"
    # An unknown host name falls back to the base URLs.
    assert fn_of(table, "GET", "/app/prod/users", host="other.localhost") == "prod"
    assert miss(table, "GET", "/app/dev/users", host="app-dev.localhost") == {"http"}


def test_host_addressing_of_an_empty_path() -> None:
    table = compile_routes([http("GET", "/", "root")])
    assert fn_of(table, "GET", "", host="app-dev.localhost") == "root"


def test_alb_rules_answer_at_the_root_when_one_service_stage_has_them() -> None:
    table = compile_routes([alb("lb", 1, paths=["/*"]), http("GET", "/api", "rest")])
    assert table.alb_root == ("app", "dev")
    match = hit(table, "GET", "/anything")
    assert (match.route.function_name, match.path) == ("lb", "/anything")
    # ...and through the base URL and Host too, after the API Gateway routes.
    assert fn_of(table, "GET", "/app/dev/api") == "rest"
    assert hit(table, "GET", "/app/dev/other").path == "/other"
    assert fn_of(table, "GET", "/other", host="app-dev.localhost") == "lb"


def test_alb_rules_of_several_service_stages_stay_under_their_base_urls() -> None:
    table = compile_routes([alb("one", 1, paths=["/*"]), alb("two", 1, paths=["/*"], stage="prod")])
    assert table.alb_root is None
    assert miss(table, "GET", "/x") == frozenset()
    assert fn_of(table, "GET", "/app/dev/x") == "one"
    assert fn_of(table, "GET", "/app/prod/x") == "two"


def test_alb_rules_come_before_the_http_api_default_route() -> None:
    table = compile_routes(
        [api("ANY", "$default", "default"), api("GET", "/a", "a"), alb("lb", 5, paths=["/lb/*"])]
    )
    assert fn_of(table, "GET", "/app/dev/a") == "a"
    assert fn_of(table, "GET", "/app/dev/lb/x") == "lb"
    assert fn_of(table, "GET", "/app/dev/b") == "default"


# ALB conditions


def test_alb_lowest_priority_number_wins() -> None:
    table = compile_routes(
        [alb("late", 20, paths=["/*"]), alb("early", 3, paths=["/a*"]), alb("mid", 10, paths=["*"])]
    )
    assert fn_of(table, "GET", "/abc") == "early"
    assert fn_of(table, "GET", "/b") == "mid"


def test_alb_path_wildcards_are_case_sensitive() -> None:
    table = compile_routes([alb("lb", 1, paths=["/img/*.png", "/i?"])])
    assert fn_of(table, "GET", "/img/a/b.png") == "lb"
    assert fn_of(table, "GET", "/ix") == "lb"
    assert miss(table, "GET", "/IMG/a.png") == {"alb"}
    assert miss(table, "GET", "/ixx") == {"alb"}


def test_alb_every_condition_must_hold() -> None:
    table = compile_routes(
        [
            alb(
                "lb",
                1,
                paths=["/api/*"],
                methods=["GET", "post"],
                hosts=["*.example.com"],
                headers=[("X-Env", ("prod", "stag*"))],
                query=[("version", "v2"), ("", "beta")],
                source_ips=["10.0.0.0/8", "2001:db8::/32"],
            )
        ]
    )
    ok: dict[str, object] = {
        "host": "API.Example.com:8443",
        "headers": {"x-env": "Staging"},
        "query": "version=V2",
        "source_ip": "10.1.2.3",
    }
    assert fn_of(table, "GET", "/api/x", **ok) == "lb"
    assert fn_of(table, "POST", "/api/x", **{**ok, "query": "x=beta"}) == "lb"
    assert fn_of(table, "GET", "/api/x", **{**ok, "source_ip": "2001:db8::1"}) == "lb"
    assert fn_of(table, "GET", "/api/x", **{**ok, "headers": {"x-env": "dev, prod"}}) == "lb"
    for bad in (
        {"host": "example.org"},
        {"headers": {"x-env": "dev"}},
        {"headers": {}},
        {"query": "version=v1"},
        {"query": ""},
        {"source_ip": "192.168.0.1"},
        {"source_ip": ""},
    ):
        assert miss(table, "GET", "/api/x", **{**ok, **bad}) == {"alb"}, bad
    assert miss(table, "PUT", "/api/x", **ok) == {"alb"}
    assert miss(table, "GET", "/other", **ok) == {"alb"}


def test_alb_rule_without_conditions_matches_everything() -> None:
    table = compile_routes([alb("lb", 1)])
    assert fn_of(table, "DELETE", "/whatever") == "lb"


# conflicts and malformed routes


def _problems(routes: list[Route]) -> str:
    with pytest.raises(InvalidParameterValueException) as caught:
        compile_routes(routes)
    return caught.value.message


def test_same_method_and_path_shape_conflict() -> None:
    message = _problems([http("GET", "/users/{id}", "a"), http("GET", "/users/{userId}", "b")])
    assert "app/dev: http GET /users/{id} (a) and http GET /users/{userId} (b)" in message
    assert "one route per method and path" in message


def test_the_same_route_in_http_and_http_api_conflicts() -> None:
    message = _problems([http("GET", "/x", "a"), api("GET", "/x", "b")])
    assert "http GET /x (a) and httpApi GET /x (b)" in message


def test_different_methods_or_stages_do_not_conflict() -> None:
    compile_routes(
        [
            http("GET", "/x", "a"),
            http("ANY", "/x", "b"),
            http("GET", "/x", "c", stage="prod"),
            http("GET", "/x/{id}"),
            http("POST", "/x/{other}"),
        ]
    )


def test_every_problem_is_reported_at_once() -> None:
    message = _problems(
        [
            api("ANY", "$default", "d1"),
            api("ANY", "$default", "d2"),
            http("ANY", "$default", "rest-default"),
            http("GET", "/{proxy+}/tail", "greedy"),
            http("GET", "/a/{id}/{id}", "twice"),
            http("GET", "/a/x{id}", "partial"),
            http("GET", "/a//b", "empty"),
            http("GET", "/a/{}", "unnamed"),
            http("FETCH", "/a", "verb"),
            alb("lb1", 7, paths=["/*"]),
            alb("lb2", 7, paths=["/x"]),
            alb("lb3", 8, source_ips=["not-an-ip"]),
        ]
    )
    for expected in (
        "httpApi $default (d1) and httpApi $default (d2) answer the same requests",
        "(rest-default): only httpApi has a $default route",
        "greedy parameter '{proxy+}' must be the last segment",
        "names parameter 'id' twice",
        "segment 'x{id}' must be a literal or a whole {param}",
        "'/a//b' has an empty segment",
        "parameter '{}' must be {name} or {name+}",
        "method 'FETCH' must be one of ANY, DELETE, GET",
        "alb priority 7 is used by lb1 and lb2: priorities must be unique",
        "source IP 'not-an-ip' must be a CIDR block",
    ):
        assert expected in message, expected


def test_two_service_stages_with_one_host_name_conflict() -> None:
    message = _problems(
        [http("GET", "/", "a", "my-app", "dev"), http("GET", "/", "b", "my", "app-dev")]
    )
    assert "host name my-app-dev.localhost is also the host of my-app/dev" in message


def test_an_empty_table_misses_everything() -> None:
    table = compile_routes([])
    assert miss(table, "GET", "/") == frozenset()
    assert table.routes == ()


def test_headers_default_to_empty() -> None:
    headers: Mapping[str, str] = {}
    table = compile_routes([alb("lb", 1, headers=[("x-a", ("1",))])])
    assert miss(table, "GET", "/", headers=headers) == {"alb"}
