"""Golden vectors for the HTTP event formats, in `golden/<format>/`.

`event-*.json`: a route and a request (headers as [name, value] pairs in the order sent) go
through the real route table and the format's builder; the event must equal `event`.
`reply-*.json`: a function result (`payload` as JSON, or `payload_text` as raw bytes) must
become `reply` ({status, headers, body | body_base64}), or be rejected as malformed with a
message containing `malformed`.

Every request is made at the same instant with the same ids (`CONTEXT`), so the vectors are
exact; the few opaque ids (resourceId, extendedRequestId, targetGroupArn) are hashes of them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from lamina.core.routes import AlbConditions, Route
from lamina.core.routing import Match, compile_routes
from lamina.wire import alb, apigw_v1, apigw_v2
from lamina.wire.events import Context, HttpReply, HttpRequest, MalformedResult

GOLDEN = Path(__file__).parent / "golden"
CONTEXT = Context(
    request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    time=1_700_000_000.5,  # 14/Nov/2023:22:13:20 +0000
    account_id="123456789012",
    region="eu-west-1",
    trace_id="Root=1-6553f100-0123456789abcdef01234567",
)

Builder = Callable[[Match, HttpRequest, Context], dict[str, Any]]
BUILDERS: dict[str, Builder] = {
    "apigw_v1": apigw_v1.build_event,
    "apigw_v2": apigw_v2.build_event,
    "alb": alb.build_event,
}


def _reply(fmt: str, payload: bytes, route: Route | None) -> HttpReply:
    if fmt == "apigw_v1":
        return apigw_v1.to_reply(payload)
    if fmt == "apigw_v2":
        return apigw_v2.to_reply(payload)
    assert route is not None, "alb reply vectors name their route"
    return alb.to_reply(payload, multi_value_headers=route.multi_value_headers)


def _vectors(kind: str) -> list[Any]:
    paths = sorted(GOLDEN.glob(f"*/{kind}-*.json"))
    assert paths, f"no {kind} vectors under {GOLDEN}"
    return [pytest.param(p, id=f"{p.parent.name}/{p.stem}") for p in paths]


def _route(data: dict[str, Any]) -> Route:
    conditions = data.pop("conditions", {})
    return Route(**data, conditions=AlbConditions(**{k: tuple(v) for k, v in conditions.items()}))


def _body(data: dict[str, Any]) -> bytes:
    if "body_base64" in data:
        return base64.b64decode(data["body_base64"])
    return str(data.get("body", "")).encode()


@pytest.mark.parametrize("path", _vectors("event"))
def test_request_becomes_event(path: Path) -> None:
    vector = json.loads(path.read_text())
    route = _route(vector["route"])
    raw = vector["request"]
    request = HttpRequest(
        method=raw["method"],
        path=raw["path"],
        query=raw["query"],
        headers=tuple((name, value) for name, value in raw["headers"]),
        body=_body(raw),
        source_ip=raw["source_ip"],
    )
    lower = {}
    for name, value in request.headers:
        lower[name.lower()] = value
    match = compile_routes([route]).match(
        request.method,
        request.path,
        host=lower.get("host", ""),
        headers=lower,
        query=request.query,
        source_ip=request.source_ip,
    )
    assert isinstance(match, Match), match

    event = BUILDERS[path.parent.name](match, request, CONTEXT)

    assert event == vector["event"]
    # What the function receives is JSON; the event must survive the trip unchanged.
    assert orjson.loads(orjson.dumps(event)) == vector["event"]


@pytest.mark.parametrize("path", _vectors("reply"))
def test_result_becomes_reply(path: Path) -> None:
    vector = json.loads(path.read_text())
    route = _route(vector["route"]) if "route" in vector else None
    if "payload_text" in vector:
        payload = vector["payload_text"].encode()
    else:
        payload = orjson.dumps(vector["payload"])

    if "malformed" in vector:
        with pytest.raises(MalformedResult, match=vector["malformed"]):
            _reply(path.parent.name, payload, route)
        return
    reply = _reply(path.parent.name, payload, route)

    expected = vector["reply"]
    assert reply.status == expected["status"]
    assert reply.headers == [tuple(pair) for pair in expected["headers"]]
    assert reply.body == _body(expected)
