"""What the caller sees when the platform ends an invocation: Lambda's own error payloads."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.e2e.harness import (
    LaminaServer,
    create_function,
    invoke,
    pid_alive,
    wait_until,
)
from tests.e2e.mailbox import Mailbox, alive, descendants, mailbox

pytestmark = pytest.mark.e2e

PID_THEN = """
import os, time, json, urllib.request

def handler(event, context):
    if event.get("action") == "sleep":
        time.sleep(event["seconds"])
    if event.get("action") == "exit":
        print("exiting", flush=True)
        os._exit(event["code"])
    if event.get("action") == "big":
        return "x" * (7 * 1024 * 1024)
    if event.get("action") == "fork":
        child = os.fork()
        if child == 0:
            time.sleep(120)
            os._exit(0)
        # Exit once the test has seen the child (the mailbox lets it through).
        urllib.request.urlopen(event["mailbox"] + "/arrive/forked?expected=2&wait=20").read()
        os._exit(1)
    return os.getpid()
"""


def test_timeout_kills_the_environment_and_reports_sandbox_timedout(lamina: LaminaServer) -> None:
    create_function(lamina, "slow", {"app.py": PID_THEN}, Timeout=1)
    invoke(lamina, "slow")
    # The host's pid: inside a sandbox, os.getpid() counts in the sandbox's own namespace.
    pid = lamina.environments("slow")[0]["pid"]
    response = invoke(lamina, "slow", {"action": "sleep", "seconds": 30}, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Body"])
    assert body["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(
        r"RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds", body["errorMessage"]
    )
    wait_until(lambda: not pid_alive(pid))
    # The next invocation gets a fresh environment.
    invoke(lamina, "slow")
    assert lamina.environments("slow")[0]["pid"] != pid

    def timeout_report() -> bool:
        reports = [line for line in lamina.logs("slow") if line.startswith("REPORT")]
        return any("Duration: 1000.00 ms" in r and "Status: timeout" in r for r in reports)

    wait_until(timeout_report)


def test_runtime_exit_is_runtime_exit_error(lamina: LaminaServer) -> None:
    create_function(lamina, "exits", {"app.py": PID_THEN})
    response = invoke(lamina, "exits", {"action": "exit", "code": 3}, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Body"])
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")
    # Its last words are logged inside the invocation.
    assert "exiting" in __import__("base64").b64decode(response["LogResult"]).decode()
    assert isinstance(json.loads(invoke(lamina, "exits")["Body"]), int)


def test_children_die_with_the_environment(lamina: LaminaServer) -> None:
    create_function(lamina, "forks", {"app.py": PID_THEN})
    with mailbox() as box, ThreadPoolExecutor(1) as executor:
        running = executor.submit(invoke, lamina, "forks", {"action": "fork", "mailbox": box.url})
        env = wait_until(lambda: [e for e in lamina.environments("forks") if e["pid"]])[0]
        # The runtime and its child, seen from the host, whatever the sandbox.
        family = wait_until(lambda: settled(descendants(env["pid"]), box))
        box.arrive("forked")
        response = running.result()
    assert json.loads(response["Body"])["errorType"] == "Runtime.ExitError"
    wait_until(lambda: not alive(family))


def settled(family: set[tuple[int, str]], box: Mailbox) -> set[tuple[int, str]]:
    # Once the runtime waits at the mailbox, its child has been forked.
    return family if box.arrivals("forked") and len(family) >= 2 else set()


def test_oversized_response_is_function_response_size_too_large(lamina: LaminaServer) -> None:
    create_function(lamina, "big", {"app.py": PID_THEN}, MemorySize=512)
    response = invoke(lamina, "big", {"action": "big"})
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Body"])
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert "6291556 bytes" in body["errorMessage"]


def test_missing_bootstrap_is_invalid_entrypoint(lamina: LaminaServer) -> None:
    create_function(
        lamina, "nobootstrap", {"README": "no bootstrap here"}, runtime="provided.al2023"
    )
    response = invoke(lamina, "nobootstrap")
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Body"])
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert "Couldn't find valid bootstrap(s)" in body["errorMessage"]


def test_runtime_that_never_asks_for_work_times_out(lamina_factory) -> None:  # type: ignore[no-untyped-def]
    lamina = lamina_factory(LAMINA_INIT_TIMEOUT="0.5")
    bootstrap = "#!/bin/sh\nexec sleep 60\n"
    create_function(
        lamina,
        "stuck",
        {"bootstrap": bootstrap},
        runtime="provided.al2",
        executable=("bootstrap",),
        Timeout=1,
    )
    response = invoke(lamina, "stuck")
    body = json.loads(response["Body"])
    assert body["errorType"] == "Sandbox.Timedout"

    def reported() -> bool:
        lines = lamina.logs("stuck")
        init = any(line.startswith("INIT_REPORT") and "Status: timeout" in line for line in lines)
        invoke_ = any(line.startswith("REPORT") and "Status: timeout" in line for line in lines)
        return init and invoke_

    wait_until(reported)


RUNTIME_POSTS_TWICE = """#!/usr/bin/env python3
import http.client, json, os
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
conn = http.client.HTTPConnection(api)
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    event = r.read()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    statuses = []
    for body in (b'"first"', b'"second"'):
        conn.request("POST", f"/2018-06-01/runtime/invocation/{rid}/response", body)
        resp = conn.getresponse()
        statuses.append([resp.status, json.loads(resp.read())])
    conn.request("POST", f"/2018-06-01/runtime/invocation/{rid}/error", b"{}")
    resp = conn.getresponse()
    statuses.append([resp.status, json.loads(resp.read())])
    conn.request("POST", "/2018-06-01/runtime/invocation/not-a-request/response", b"{}")
    resp = conn.getresponse()
    statuses.append([resp.status, json.loads(resp.read())])
    print("STATUSES " + json.dumps(statuses), flush=True)
"""


def test_runtime_api_refuses_a_second_result(lamina: LaminaServer) -> None:
    create_function(
        lamina,
        "twice",
        {"bootstrap": RUNTIME_POSTS_TWICE},
        runtime="provided",
        executable=("bootstrap",),
    )
    response = invoke(lamina, "twice")
    assert json.loads(response["Body"]) == "first"

    def statuses() -> list[object] | None:
        for line in lamina.logs("twice"):
            if line.startswith("STATUSES "):
                return list(json.loads(line.removeprefix("STATUSES ")))
        return None

    first, second, error, unknown = wait_until(statuses)
    assert first == [202, {"status": "OK"}]
    assert second[0] == 400 and second[1]["errorType"] == "InvalidRequestID"
    assert error[0] == 403 and error[1]["errorType"] == "InvalidStateTransition"
    assert unknown[0] == 400 and unknown[1]["errorType"] == "InvalidRequestID"


def test_a_bootstrap_that_cannot_be_executed_is_invalid_entrypoint(lamina: LaminaServer) -> None:
    create_function(
        lamina,
        "noshebang",
        {"bootstrap": "echo this script has no #! line\n"},
        runtime="provided.al2",
        executable=("bootstrap",),
    )
    response = invoke(lamina, "noshebang")
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Body"])
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert "exec format error" in body["errorMessage"]
