"""`/lamina/v1/events`, `/lamina/v1/schedules` and Lambda's event invoke config routes,
in-process through the real ControlApi on the real services with fakes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.services.fakes import Fail, Harness, Script, settle
from tests.services.test_async_fakes import async_invoker, stop

from lamina.core.retry import EventInvokeConfig
from lamina.core.schedules import ScheduleRule
from lamina.http.control_api import ControlApi
from lamina.http.events_api import EventsApi
from lamina.http.server import Request, Response
from lamina.services.async_invoke import AsyncInvoker
from lamina.services.functions import FunctionService
from lamina.services.schedules import ScheduleService
from lamina.store.blobs import CodeStore
from lamina.store.events import SqliteEventInvokeConfigStore, SqliteEventStore
from lamina.store.schedules import SqliteScheduleStore
from lamina.store.sqlite import SqliteStore
from lamina.store.versions import SqliteVersionStore


@dataclass
class Client:
    h: Harness
    store: SqliteStore
    events: AsyncInvoker
    schedules: ScheduleService
    api: ControlApi

    async def __call__(
        self, method: str, path: str, body: Any = None, query: str = ""
    ) -> tuple[int, Any]:
        raw = b"" if body is None else json.dumps(body).encode()
        response: Response = await self.api(Request(method, path, query, {}, raw))
        return response.status, json.loads(response.body) if response.body else None


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    store = SqliteStore(tmp_path / "lamina.db")
    try:
        async with Harness(tmp_path) as h:
            events = async_invoker(store, h)
            schedules = ScheduleService(
                store=SqliteScheduleStore(store),
                clock=h.clock,
                account=h.account,
                wake_invoker=events.wake,
            )
            functions = FunctionService(
                store=store,
                versions=SqliteVersionStore(store),
                code=CodeStore(tmp_path / "bundles"),
                registry=h.registry,
                pool=h.pool,
                ledger=h.ledger,
                account=h.account,
            )
            router = EventsApi(
                events=events,
                queue=SqliteEventStore(store),
                configs=SqliteEventInvokeConfigStore(store),
                schedules=schedules,
                invoke=h.invoker,
                account=h.account,
                clock=h.clock,
            )
            api = ControlApi(
                functions=functions,
                invoke=h.invoker,
                events=events,
                pool=h.pool,
                store=store,
                account=h.account,
                routers=[router],
            )
            yield Client(h, store, events, schedules, api)
            await stop(events)
    finally:
        store.close()


async def test_events_are_listed_by_status_and_function(client: Client) -> None:
    client.h.deploy("fn")
    client.h.deploy("other")
    queued = client.events.submit("fn", None, b'{"a": 1}')
    client.events.submit("other", None, b"{}")

    status, body = await client("GET", "/lamina/v1/events", query="function=fn")

    assert status == 200
    (event,) = body["events"]
    assert event == {
        "id": queued,
        "function": "fn",
        "qualifier": "$LATEST",
        "status": "queued",
        "attempts": 0,
        "throttles": 0,
        "enqueued": "2023-11-14T22:13:20Z",
        "updated": "2023-11-14T22:13:20Z",
        "nextAttempt": None,
        "condition": None,
        "error": None,
        "delivered": [],
        "undelivered": [],
        "redriven": 0,
        "payloadSize": 8,
    }
    assert body["counts"] == {"pending": 2}
    _, dead = await client("GET", "/lamina/v1/events", query="status=dead")
    assert dead["events"] == []


async def test_a_dead_event_shows_why_and_is_redriven(client: Client) -> None:
    client.h.deploy("fn")
    client.h.driver.default_script = Script(handler=lambda runtime, invocation: Fail())
    configs = SqliteEventInvokeConfigStore(client.store)
    configs.put("fn", "", EventInvokeConfig(maximum_retry_attempts=0), 0.0)
    client.events.start()
    event_id = client.events.submit("fn", None, b"{}")
    queue = SqliteEventStore(client.store)
    await settle(lambda: getattr(queue.get(event_id), "status", None) == "dead")

    _, body = await client("GET", "/lamina/v1/events")
    (event,) = body["events"]
    assert (event["status"], event["attempts"], event["condition"]) == (
        "dead",
        1,
        "RetriesExhausted",
    )
    assert event["error"] == {
        "statusCode": 200,
        "functionError": "Unhandled",
        "errorType": "ValueError",
        "errorMessage": "bad input",
    }

    status, body = await client("POST", f"/lamina/v1/events/{event_id}/redrive")
    assert status == 200
    assert (body["event"]["status"], body["event"]["redriven"]) == ("queued", 1)

    status, body = await client("POST", "/lamina/v1/events/nope/redrive")
    assert (status, body["Message"]) == (404, "Event not found: nope")


async def test_unknown_statuses_are_refused(client: Client) -> None:
    status, body = await client("GET", "/lamina/v1/events", query="status=lost")
    assert status == 400
    assert body["Message"] == (
        "status = 'lost': must be one of queued, retrying, running, delivering, succeeded, "
        "failed, dead or all"
    )


async def test_schedules_are_listed_with_their_next_firing(client: Client) -> None:
    rule = ScheduleRule(
        rule="tick",
        service="app",
        stage="dev",
        function_name="app-dev-job",
        qualifier="2",
        expression="rate(1 hour)",
    )
    client.schedules.set_stack("app", "dev", [rule])

    status, body = await client("GET", "/lamina/v1/schedules")

    assert status == 200
    assert body["schedules"] == [
        {
            "rule": "tick",
            "arn": "arn:aws:events:us-east-1:000000000000:rule/tick",
            "service": "app",
            "stage": "dev",
            "function": "app-dev-job",
            "qualifier": "2",
            "expression": "rate(1 hour)",
            "timezone": "UTC",
            "enabled": True,
            "description": "",
            "lastFired": None,
            "nextFire": "2023-11-14T23:13:20Z",
        }
    ]


async def test_event_invoke_configs_put_get_update_delete(client: Client) -> None:
    client.h.deploy("fn")
    path = "/2019-09-25/functions/fn/event-invoke-config"

    status, body = await client("GET", path)
    assert (status, body["Message"]) == (
        404,
        "The function arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST doesn't have "
        "an EventInvokeConfig",
    )

    status, body = await client(
        "PUT",
        path,
        {
            "MaximumRetryAttempts": 1,
            "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:0:dlq"}},
        },
    )
    assert status == 200
    assert body == {
        "LastModified": client.h.clock.time(),
        "FunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST",
        "MaximumRetryAttempts": 1,
        "MaximumEventAgeInSeconds": 21600,
        "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:0:dlq"}},
    }

    _, body = await client("POST", path, {"MaximumEventAgeInSeconds": 120})
    assert (body["MaximumRetryAttempts"], body["MaximumEventAgeInSeconds"]) == (1, 120)
    assert body["DestinationConfig"] == {
        "OnFailure": {"Destination": "arn:aws:sqs:us-east-1:0:dlq"}
    }

    status, body = await client("PUT", path, {"MaximumRetryAttempts": 5})
    assert (status, body["Message"]) == (400, "MaximumRetryAttempts = 5: must be between 0 and 2")

    status, _ = await client("DELETE", path)
    assert status == 204
    status, _ = await client("GET", path)
    assert status == 404
    status, _ = await client("GET", "/2019-09-25/functions/missing/event-invoke-config")
    assert status == 404
