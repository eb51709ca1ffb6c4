"""Lambda's async retry contract against a real `lamina up`: a failing function deployed
with `maximumRetryAttempts: 2` is tried three times and its on-failure destination (another
function) receives AWS's invocation record; a dead event is listed and re-driven with the
CLI; a queue destination and DLQ when the queue service is there; the event invoke config
API; and `kill -9` in the middle of a burst of 200 events loses none of them.

Functions report to a `Collector`, an HTTP server in the test process, so what they saw
survives the server being killed and needs no file shared with the sandbox."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from tests.e2e.harness import LaminaServer, create_function, invoke, wait_until

pytestmark = pytest.mark.e2e

APP = """
import json
import os
import time
import urllib.request

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def tell(kind, body):
    request = urllib.request.Request(
        os.environ["COLLECTOR"] + "/" + kind, data=json.dumps(body).encode(), method="POST"
    )
    with _OPENER.open(request, timeout=10) as answer:
        return json.loads(answer.read())


def work(event, context):
    # Fails as long as this request id has been tried no more than event["failures"] times.
    seen = tell("try", {"id": context.aws_request_id, "event": event})
    if seen["count"] <= event.get("failures", 0):
        raise ValueError(f"no luck on try {seen['count']}")
    return {"done": context.aws_request_id}


def record(event, context):
    tell("record", {"id": context.aws_request_id, "event": event})
    return "recorded"


def mark(event, context):
    # A gated event waits until the test opens the gate.
    while event.get("gated") and not tell("gate", {"id": context.aws_request_id})["open"]:
        time.sleep(0.1)
    time.sleep(event.get("sleep", 0))
    tell("mark", {"id": context.aws_request_id})
    return "ok"
"""


class _Server(ThreadingHTTPServer):
    # A burst of functions reports at once: the default listen backlog of 5 drops some.
    request_queue_size = 256
    daemon_threads = True


class Collector:
    """What functions report: POST /<kind> with a JSON body, kept with the time it arrived;
    the answer says how many reports of that kind carried the same `id` so far, and whether
    the test opened the gate (`open`)."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, float, dict[str, Any]]] = []
        self.open = False
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                kind = self.path.strip("/")
                with collector._lock:
                    collector.reports.append((kind, time.monotonic(), body))
                    count = sum(
                        1 for k, _, b in collector.reports if k == kind and b["id"] == body["id"]
                    )
                answer = json.dumps({"count": count, "open": collector.open}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def of(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            return [(at, body) for k, at, body in self.reports if k == kind]

    def ids(self, kind: str) -> set[str]:
        return {body["id"] for _, body in self.of(kind)}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    yield found
    found.close()


def cli(server: LaminaServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAMINA_ENDPOINT": server.control_url, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def service(tmp_path: Path, collector: Collector, body: str) -> Path:
    """A service directory with APP and a serverless.yml of `body` under a common head."""
    root = tmp_path / "service"
    root.mkdir(exist_ok=True)
    (root / "app.py").write_text(APP)
    head = f"""
        service: retries
        provider:
          name: aws
          runtime: python3.12
          environment:
            COLLECTOR: {collector.url}
    """
    (root / "serverless.yml").write_text(textwrap.dedent(head) + textwrap.dedent(body))
    return root


def deploy(server: LaminaServer, root: Path) -> subprocess.CompletedProcess[str]:
    result = cli(server, root, "deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def request_id(response: dict[str, Any]) -> str:
    assert response["StatusCode"] == 202
    return str(response["ResponseMetadata"]["RequestId"])


def test_a_failing_event_is_tried_three_times_then_recorded_by_its_destination(
    lamina_factory: Any, collector: Collector, tmp_path: Path
) -> None:
    lamina = lamina_factory(LAMINA_ASYNC_RETRY_DELAY="0.2")
    root = service(
        tmp_path,
        collector,
        """
        functions:
          flaky:
            handler: app.work
            maximumRetryAttempts: 2
            destinations:
              onFailure: recorder
          recorder:
            handler: app.record
        """,
    )
    deploy(lamina, root)
    payload = {"failures": 99, "order": 42}

    event_id = request_id(invoke(lamina, "retries-dev-flaky", payload, InvocationType="Event"))

    wait_until(lambda: collector.of("record"), timeout=60)
    tries = collector.of("try")
    assert [body["id"] for _, body in tries] == [event_id] * 3
    assert [body["event"] for _, body in tries] == [payload] * 3
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(tries)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps  # base delay, then twice that

    ((_, delivered),) = collector.of("record")
    record = delivered["event"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    error = record["responsePayload"]
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "no luck on try 3")
    assert record == {
        "version": "1.0",
        "timestamp": record["timestamp"],
        "requestContext": {
            "requestId": event_id,
            "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:"
            "retries-dev-flaky:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": payload,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": error,
    }
    failed = lamina.get("/lamina/v1/events?status=failed")["events"]
    assert [(e["id"], e["attempts"], e["delivered"]) for e in failed] == [
        (event_id, 3, [["on_failure", "retries-dev-recorder"]])
    ]


def test_a_dead_event_is_listed_and_redriven_with_the_cli(
    lamina_factory: Any, collector: Collector, tmp_path: Path
) -> None:
    lamina = lamina_factory(LAMINA_ASYNC_RETRY_DELAY="0.2")
    root = service(
        tmp_path,
        collector,
        """
        functions:
          once:
            handler: app.work
            maximumRetryAttempts: 0
        """,
    )
    deploy(lamina, root)

    event_id = request_id(
        invoke(lamina, "retries-dev-once", {"failures": 1}, InvocationType="Event")
    )

    wait_until(lambda: lamina.get("/lamina/v1/events?status=dead")["events"], timeout=30)
    listed = cli(lamina, root, "events", "--status", "dead", "-f", "once")
    assert listed.returncode == 0, listed.stderr
    assert event_id in listed.stdout
    assert "RetriesExhausted" in listed.stdout and "no luck on try 1" in listed.stdout
    default = cli(lamina, root, "events")  # dead events are shown without asking
    assert event_id in default.stdout

    redriven = cli(lamina, root, "events", "redrive", event_id)
    assert redriven.returncode == 0, redriven.stderr
    assert f"Event {event_id} is queued again" in redriven.stdout

    wait_until(lambda: len(collector.of("try")) == 2, timeout=30)
    wait_until(
        lambda: (
            [e["status"] for e in lamina.get("/lamina/v1/events?status=all")["events"]]
            == ["succeeded"]
        ),
        timeout=30,
    )
    again = cli(lamina, root, "events", "redrive", event_id)
    assert again.returncode == 1
    assert "only dead events can be re-driven" in again.stderr


def test_the_event_invoke_config_api_sets_the_retry_policy(
    lamina_factory: Any, collector: Collector
) -> None:
    lamina = lamina_factory(LAMINA_ASYNC_RETRY_DELAY="0.2")
    create_function(
        lamina,
        "solo",
        {"app.py": APP},
        handler="app.work",
        Environment={"Variables": {"COLLECTOR": collector.url}},
    )
    client = lamina.client()
    put = client.put_function_event_invoke_config(
        FunctionName="solo", MaximumRetryAttempts=1, MaximumEventAgeInSeconds=600
    )
    assert (put["MaximumRetryAttempts"], put["MaximumEventAgeInSeconds"]) == (1, 600)
    got = client.get_function_event_invoke_config(FunctionName="solo")
    assert got["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:solo:$LATEST"
    assert got["MaximumRetryAttempts"] == 1

    event_id = request_id(invoke(lamina, "solo", {"failures": 99}, InvocationType="Event"))

    wait_until(lambda: lamina.get("/lamina/v1/events?status=dead")["events"], timeout=30)
    assert [body["id"] for _, body in collector.of("try")] == [event_id] * 2
    client.delete_function_event_invoke_config(FunctionName="solo")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function_event_invoke_config(FunctionName="solo")


def test_a_queue_destination_and_dead_letter_queue_receive_failures(
    lamina_factory: Any, collector: Collector, tmp_path: Path
) -> None:
    lamina = lamina_factory(LAMINA_ASYNC_RETRY_DELAY="0.2")
    root = service(
        tmp_path,
        collector,
        """
        queues:
          failures: {}
          dlq: {}
        functions:
          doomed:
            handler: app.work
            maximumRetryAttempts: 0
            destinations:
              onFailure: failures
            onError: dlq
        """,
    )
    result = cli(lamina, root, "deploy")
    if "queue service is not available" in result.stderr:
        pytest.skip("this Lamina has no queue service")
    assert result.returncode == 0, result.stdout + result.stderr
    sqs = boto3.client(
        "sqs",
        endpoint_url=lamina.control_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    event_id = request_id(
        invoke(lamina, "retries-dev-doomed", {"failures": 9}, InvocationType="Event")
    )

    def receive(name: str) -> list[dict[str, Any]]:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        answer = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1)
        return list(answer.get("Messages", []))

    failures: list[dict[str, Any]] = wait_until(lambda: receive("retries-dev-failures"), timeout=30)
    record = json.loads(failures[0]["Body"])
    assert record["requestContext"]["requestId"] == event_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    dead: list[dict[str, Any]] = wait_until(lambda: receive("retries-dev-dlq"), timeout=30)
    assert json.loads(dead[0]["Body"]) == {"failures": 9}
    attributes = dead[0]["MessageAttributes"]
    assert attributes["RequestID"]["StringValue"] == event_id
    assert attributes["ErrorCode"]["StringValue"] == "200"
    assert attributes["ErrorMessage"]["StringValue"] == "no luck on try 1"


def test_kill_9_in_the_middle_of_a_burst_loses_no_event(
    lamina_factory: Any, collector: Collector
) -> None:
    lamina = lamina_factory(LAMINA_ASYNC_RETRY_DELAY="0.2")
    create_function(
        lamina,
        "mark",
        {"app.py": APP},
        handler="app.mark",
        Timeout=30,
        Environment={"Variables": {"COLLECTOR": collector.url}},
    )
    client = lamina.client()
    # Each event takes a second and at most 64 run at once: the 200 need over 3 seconds,
    # longer than it takes to send them, so the kill lands in the middle of the burst.
    ids = [
        request_id(invoke(lamina, "mark", {"sleep": 1.0}, InvocationType="Event", client=client))
        for _ in range(200)
    ]

    assert lamina.stop(signal.SIGKILL) == -signal.SIGKILL
    done_before = collector.ids("mark") & set(ids)
    assert len(done_before) < len(ids), "every event was done before the kill"
    lamina.start()

    wait_until(lambda: set(ids) <= collector.ids("mark"), timeout=120)
    # At least once: an event killed mid-run may run twice, but none is lost.
    assert len(collector.of("mark")) >= len(ids)
