"""Event invocations: accepted durably, run in the background, not lost across restarts."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from tests.e2e.harness import create_function, invoke, wait_until

pytestmark = pytest.mark.e2e

MARK = """
import os

def handler(event, context):
    with open(os.path.join(event["folder"], context.aws_request_id), "w") as f:
        f.write("done")
    return "ok"
"""


def test_event_invocation_runs_in_the_background(lamina, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tmp_path = tmp_path / "marks"
    tmp_path.mkdir()
    create_function(lamina, "mark", {"app.py": MARK})
    response = invoke(lamina, "mark", {"folder": str(tmp_path)}, InvocationType="Event")
    assert response["StatusCode"] == 202
    assert response["Body"] == b""
    request_id = response["ResponseMetadata"]["RequestId"]
    wait_until(lambda: (tmp_path / request_id).exists())
    dry = invoke(lamina, "mark", {}, InvocationType="DryRun")
    assert dry["StatusCode"] == 204


def test_queued_events_survive_a_restart(lamina_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lamina = lamina_factory()
    tmp_path = tmp_path / "marks"
    tmp_path.mkdir()
    create_function(lamina, "mark", {"app.py": MARK})
    client = lamina.client()
    # Reserved concurrency 0 holds events in the queue (throttled, retried later).
    client.put_function_concurrency(FunctionName="mark", ReservedConcurrentExecutions=0)
    ids = [
        invoke(lamina, "mark", {"folder": str(tmp_path)}, InvocationType="Event")[
            "ResponseMetadata"
        ]["RequestId"]
        for _ in range(5)
    ]
    assert lamina.stop(signal.SIGKILL) == -signal.SIGKILL
    assert not list(tmp_path.iterdir())
    lamina.start()
    lamina.client().delete_function_concurrency(FunctionName="mark")
    wait_until(lambda: all((tmp_path / i).exists() for i in ids), timeout=30)
    assert json.loads(invoke(lamina, "mark", {"folder": str(tmp_path)})["Body"]) == "ok"
