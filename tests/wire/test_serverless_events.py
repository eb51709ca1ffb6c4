"""serverless.yml events: `http`, `httpApi` and `alb` become `Route`s; other event types are
warned about, never dropped silently; malformed events are golden error messages."""

from __future__ import annotations

import pytest

from lamina.core.routes import AlbConditions, Route
from lamina.wire.serverless import ServerlessConfigError, Service, parse_service

HEAD = """\
service: shop
provider:
  name: aws
  runtime: python3.12
functions:
  api:
    handler: h.api
    events:
"""


def _service(events: str, head: str = HEAD) -> Service:
    return parse_service(head + events)


def _routes(events: str, head: str = HEAD) -> tuple[Route, ...]:
    return _service(events, head).functions["api"].routes


def _problems(events: str, head: str = HEAD) -> list[str]:
    with pytest.raises(ServerlessConfigError) as caught:
        parse_service(head + events)
    return caught.value.problems


def _route(**fields: object) -> Route:
    base: dict[str, object] = {
        "service": "shop",
        "stage": "dev",
        "function_name": "shop-dev-api",
    }
    return Route(**{**base, **fields})  # type: ignore[arg-type]


def test_http_api_string_forms() -> None:
    routes = _routes(
        "      - httpApi: '*'\n"
        "      - httpApi: 'GET /users/{id}'\n"
        "      - httpApi: 'post /users'\n"
        "      - httpApi: '* /any/{proxy+}'\n"
    )

    assert routes == (
        _route(kind="httpApi", method="ANY", path="$default"),
        _route(kind="httpApi", method="GET", path="/users/{id}"),
        _route(kind="httpApi", method="POST", path="/users"),
        _route(kind="httpApi", method="ANY", path="/any/{proxy+}"),
    )
    assert routes[1].route_key == "GET /users/{id}"


def test_http_api_map_form_and_provider_settings() -> None:
    head = HEAD.replace(
        "  runtime: python3.12\n",
        "  runtime: python3.12\n  httpApi:\n    payload: '1.0'\n    cors: true\n",
    )

    routes = _routes(
        "      - httpApi:\n          method: GET\n          path: /a\n"
        "      - httpApi:\n          path: '*'\n",
        head,
    )

    assert routes == (
        _route(kind="httpApi", method="GET", path="/a", payload_version="1.0", cors=True),
        _route(kind="httpApi", method="ANY", path="$default", payload_version="1.0", cors=True),
    )


def test_http_rest_routes_get_a_leading_slash_and_payload_1_0() -> None:
    routes = _routes(
        "      - http: 'GET users/{id}'\n"
        "      - http:\n          path: /orders/\n          method: any\n          cors: true\n"
        "      - http: 'GET /'\n"
    )

    assert routes == (
        _route(kind="http", method="GET", path="/users/{id}", payload_version="1.0"),
        _route(kind="http", method="ANY", path="/orders", payload_version="1.0", cors=True),
        _route(kind="http", method="GET", path="/", payload_version="1.0"),
    )


def test_alb_rules() -> None:
    routes = _routes(
        "      - alb:\n"
        "          listenerArn: arn:aws:elasticloadbalancing:listener/app/x\n"
        "          priority: 3\n"
        "          multiValueHeaders: true\n"
        "          conditions:\n"
        "            path: /api/*\n"
        "            method: [get, post]\n"
        "            host: [example.com]\n"
        "            header:\n"
        "              name: X-Version\n"
        "              values: ['2']\n"
        "            query:\n"
        "              debug: 1\n"
        "            ip: [10.0.0.0/8, '::1/128']\n"
    )

    assert routes == (
        _route(
            kind="alb",
            priority=3,
            multi_value_headers=True,
            conditions=AlbConditions(
                paths=("/api/*",),
                methods=("GET", "POST"),
                hosts=("example.com",),
                headers=(("X-Version", ("2",)),),
                query=(("debug", "1"),),
                source_ips=("10.0.0.0/8", "::1/128"),
            ),
        ),
    )


def test_other_event_types_are_warned_about_not_dropped() -> None:
    service = _service(
        "      - sns: arn:aws:sns:us-east-1:0:topic\n"
        "      - s3: photos\n"
        "      - htpApi: 'GET /'\n"
        "      - httpApi:\n          path: /secure\n          method: GET\n"
        "          authorizer: {name: jwt}\n"
    )

    assert service.warnings == (
        "serverless.yml:9: functions.api.events[0].sns: sns events are not "
        "supported yet; this event is ignored",
        "serverless.yml:10: functions.api.events[1].s3: s3 events are not supported yet; "
        "this event is ignored",
        "serverless.yml:11: functions.api.events[2].htpApi: unknown event type, ignored; "
        "did you mean 'httpApi'?",
        "serverless.yml:15: functions.api.events[3].httpApi.authorizer: authorizers are not "
        "supported yet; the route stays public",
    )
    assert len(service.functions["api"].routes) == 1


def test_unknown_event_types_fail_under_validation_mode_error() -> None:
    head = "configValidationMode: error\n" + HEAD

    assert _problems("      - htpApi: 'GET /'\n", head) == [
        "serverless.yml:10: functions.api.events[0].htpApi: unknown event type, ignored; "
        "did you mean 'httpApi'?"
    ]


def test_malformed_events_are_golden_errors() -> None:
    assert _problems(
        "      - httpApi: 'GET users'\n"
        "      - httpApi: 'FETCH /x'\n"
        "      - httpApi: 'GET'\n"
        "      - httpApi: {path: '*', method: GET}\n"
        "      - http: {method: get}\n"
        "      - http: 'GET /a/{rest+}/b'\n"
        "      - alb: {priority: 0}\n"
        "      - alb:\n"
        "          listenerArn: x\n"
        "          priority: 1\n"
        "          conditions: {ip: [nonsense], header: {name: X}}\n"
        "      - [not, a, map]\n"
        "      - http: 'GET /x'\n"
        "        cors: true\n"
    ) == [
        "serverless.yml:9: functions.api.events[0].httpApi = 'GET users': the path must "
        "start with '/'",
        "serverless.yml:10: functions.api.events[1].httpApi = 'FETCH /x': the method must be "
        "one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY",
        "serverless.yml:11: functions.api.events[2].httpApi = 'GET': must be '*' or "
        "'METHOD /path', such as 'GET /users/{id}'",
        "serverless.yml:12: functions.api.events[3].httpApi.method = 'GET': must be '*' when "
        "path is '*'",
        "serverless.yml:13: functions.api.events[4].http.path = null: required; a URL path "
        "such as users/{id}",
        "serverless.yml:14: functions.api.events[5].http = 'GET /a/{rest+}/b': the path may "
        "have a greedy {name+} parameter only as its last segment",
        "serverless.yml:15: functions.api.events[6].alb.listenerArn: required",
        "serverless.yml:15: functions.api.events[6].alb.priority = 0: must be between 1 and 50000",
        "serverless.yml:15: functions.api.events[6].alb.conditions: required; at least one of "
        "path, method, host, header, query, ip",
        "serverless.yml:19: functions.api.events[7].alb.conditions.ip = 'nonsense': must be "
        "CIDR blocks such as 10.0.0.0/8",
        "serverless.yml:19: functions.api.events[7].alb.conditions.header.values = null: "
        "required; a list of strings",
        "serverless.yml:20: functions.api.events[8]: must be a map with one event type, such "
        "as httpApi: 'GET /'",
        "serverless.yml:21: functions.api.events[9]: must be a map with one event type, such "
        "as httpApi: 'GET /'",
    ]


def test_one_route_for_two_functions_is_refused() -> None:
    text = HEAD + (
        "      - httpApi: 'GET /a'\n"
        "      - alb: {listenerArn: x, priority: 5, conditions: {path: /a}}\n"
        "  other:\n"
        "    handler: h.other\n"
        "    events:\n"
        "      - httpApi: 'GET /a'\n"
        "      - httpApi: 'POST /a'\n"
        "      - alb: {listenerArn: x, priority: 5, conditions: {path: /b}}\n"
    )

    with pytest.raises(ServerlessConfigError) as caught:
        parse_service(text)

    assert caught.value.problems == [
        "serverless.yml:14: functions.other.events[0].httpApi: httpApi route 'GET /a' is "
        "already used by functions.api.events[0].httpApi",
        "serverless.yml:16: functions.other.events[2].alb: priority 5 is already used by "
        "functions.api.events[1].alb",
    ]


def test_events_must_be_a_list() -> None:
    assert _problems("      httpApi: '*'\n".replace("      ", "      ")) == [
        "serverless.yml:8: functions.api.events = {...}: must be a list of events"
    ]
