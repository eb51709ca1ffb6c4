"""Event invocations: accepted durably, run in the background, not lost across restarts."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.harness import LaminaServer, create_function, invoke, wait_until
from tests.e2e.test_async_retry_e2e import APP, Collector

pytestmark = pytest.mark.e2e


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    yield found
    found.close()


def _mark(lamina: LaminaServer, collector: Collector) -> None:
    create_function(
        lamina,
        "mark",
        {"app.py": APP},
        handler="app.mark",
        Timeout=60,
        Environment={"Variables": {"COLLECTOR": collector.url}},
    )


def test_event_invocation_runs_in_the_background(
    lamina: LaminaServer, collector: Collector
) -> None:
    _mark(lamina, collector)
    response = invoke(lamina, "mark", {}, InvocationType="Event")
    assert response["StatusCode"] == 202
    assert response["Body"] == b""
    request_id = response["ResponseMetadata"]["RequestId"]
    wait_until(lambda: request_id in collector.ids("mark"))
    dry = invoke(lamina, "mark", {}, InvocationType="DryRun")
    assert dry["StatusCode"] == 204


def test_queued_events_survive_a_restart(lamina_factory: Any, collector: Collector) -> None:
    lamina = lamina_factory()
    _mark(lamina, collector)
    ids = [
        invoke(lamina, "mark", {"gated": True}, InvocationType="Event")["ResponseMetadata"][
            "RequestId"
        ]
        for _ in range(5)
    ]
    # Held at the gate: every event is running, none finished, when the server dies.
    wait_until(lambda: collector.ids("gate") >= set(ids))
    assert lamina.stop(signal.SIGKILL) == -signal.SIGKILL
    assert collector.ids("mark") == set()
    collector.open = True
    lamina.start()
    wait_until(lambda: collector.ids("mark") >= set(ids), timeout=30)
    assert invoke(lamina, "mark", {})["StatusCode"] == 200
