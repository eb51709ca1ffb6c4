"""Parallel environments, keep-alive, concurrency limits and the memory budget."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from tests.e2e.harness import LaminaServer, create_function, invoke, pid_alive, wait_until

pytestmark = pytest.mark.e2e

# Each invocation announces itself in a shared folder and waits until `expected` have done
# so: they all finish only if they all ran at the same time, on separate environments.
BARRIER = """
import os, time

def handler(event, context):
    folder = event["folder"]
    open(os.path.join(folder, context.aws_request_id), "w").close()
    deadline = time.time() + event.get("wait", 20)
    while len(os.listdir(folder)) < event["expected"] and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(event.get("hold", 0))
    return {"pid": os.getpid(), "seen": len(os.listdir(folder))}
"""


def test_concurrent_invocations_run_on_separate_environments(
    lamina: LaminaServer, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "barrier"
    tmp_path.mkdir()
    create_function(lamina, "barrier", {"app.py": BARRIER}, Timeout=60)
    client = lamina.client()
    event = {"folder": str(tmp_path), "expected": 20, "hold": 0.5}
    with ThreadPoolExecutor(20) as executor:
        futures = [
            executor.submit(invoke, lamina, "barrier", event, client=client) for _ in range(20)
        ]
        results = [json.loads(f.result()["Body"]) for f in futures]
    assert all(r["seen"] == 20 for r in results), results
    assert len({r["pid"] for r in results}) == 20
    assert len(lamina.environments("barrier")) == 20
    # Warm now: the same 20 environments serve the next round.
    for path in tmp_path.iterdir():
        path.unlink()
    with ThreadPoolExecutor(20) as executor:
        futures = [
            executor.submit(invoke, lamina, "barrier", event, client=client) for _ in range(20)
        ]
        again = {json.loads(f.result()["Body"])["pid"] for f in futures}
    assert again == {r["pid"] for r in results}


def test_idle_environments_are_stopped_after_the_keep_alive(lamina_factory) -> None:  # type: ignore[no-untyped-def]
    lamina = lamina_factory(LAMINA_KEEP_ALIVE="1")
    create_function(
        lamina, "idle", {"app.py": "import os\ndef handler(e, c):\n    return os.getpid()\n"}
    )
    pid = json.loads(invoke(lamina, "idle")["Body"])
    assert len(lamina.environments("idle")) == 1
    wait_until(lambda: not lamina.environments("idle"))
    wait_until(lambda: not pid_alive(pid))


def _throttled(call) -> dict:  # type: ignore[no-untyped-def, type-arg]
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Error"]["Code"] == "TooManyRequestsException"
    return dict(error)


def test_reserved_concurrency_throttles_past_the_reservation(
    lamina: LaminaServer, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "barrier"
    tmp_path.mkdir()
    create_function(lamina, "one", {"app.py": BARRIER}, Timeout=60)
    client = lamina.client()
    client.put_function_concurrency(FunctionName="one", ReservedConcurrentExecutions=1)
    assert client.get_function(FunctionName="one")["Concurrency"] == {
        "ReservedConcurrentExecutions": 1
    }
    event = {"folder": str(tmp_path), "expected": 2, "wait": 30}
    with ThreadPoolExecutor(1) as executor:
        running = executor.submit(invoke, lamina, "one", event, client=lamina.client())
        wait_until(lambda: any(tmp_path.iterdir()))
        error = _throttled(lambda: invoke(lamina, "one", event))
        assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
        (tmp_path / "release").touch()
        assert json.loads(running.result()["Body"])["seen"] == 2
    client.put_function_concurrency(FunctionName="one", ReservedConcurrentExecutions=0)
    _throttled(lambda: invoke(lamina, "one", event))
    client.delete_function_concurrency(FunctionName="one")
    (tmp_path / "x").touch()
    assert invoke(lamina, "one", event)["StatusCode"] == 200


def test_account_concurrency_limit_throttles(lamina_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lamina = lamina_factory(LAMINA_CONCURRENCY="1")
    tmp_path = tmp_path / "barrier"
    tmp_path.mkdir()
    create_function(lamina, "one", {"app.py": BARRIER}, Timeout=60)
    create_function(lamina, "other", {"app.py": "def handler(e, c):\n    return 1\n"})
    event = {"folder": str(tmp_path), "expected": 2, "wait": 30}
    with ThreadPoolExecutor(1) as executor:
        running = executor.submit(invoke, lamina, "one", event, client=lamina.client())
        wait_until(lambda: any(tmp_path.iterdir()))
        error = _throttled(lambda: invoke(lamina, "other"))
        assert error["Reason"] == "ConcurrentInvocationLimitExceeded"
        (tmp_path / "release").touch()
        running.result()
    assert json.loads(invoke(lamina, "other")["Body"]) == 1


def test_memory_budget_evicts_idle_environments_first(lamina_factory) -> None:  # type: ignore[no-untyped-def]
    lamina = lamina_factory(LAMINA_MEMORY_BUDGET="384")
    code = "import os\ndef handler(e, c):\n    return os.getpid()\n"
    create_function(lamina, "small", {"app.py": code}, MemorySize=128)
    create_function(lamina, "large", {"app.py": code}, MemorySize=256)
    create_function(lamina, "huge", {"app.py": code}, MemorySize=512)
    small = json.loads(invoke(lamina, "small")["Body"])
    json.loads(invoke(lamina, "large")["Body"])
    assert pid_alive(small)  # 128 + 256 fit in 384
    # 512 MB can never fit: throttled, and nothing is evicted for nothing.
    _throttled(lambda: invoke(lamina, "huge"))
    assert len(lamina.environments()) == 2
    create_function(lamina, "medium", {"app.py": code}, MemorySize=128)
    json.loads(invoke(lamina, "medium")["Body"])
    # Making room for 128 MB evicted the least recently used idle environment only.
    wait_until(lambda: not pid_alive(small))
    assert {e["function"] for e in lamina.environments()} == {"large", "medium"}
