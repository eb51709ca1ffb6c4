"""Parallel environments, keep-alive, concurrency limits and the memory budget."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError
from tests.e2e.harness import LaminaServer, create_function, invoke, pid_alive, wait_until
from tests.e2e.mailbox import mailbox

pytestmark = pytest.mark.e2e

# Each invocation announces itself at the test's mailbox and waits until `expected` have
# done so: they all finish only if they all ran at the same time, on separate environments.
# The log stream names the environment (inside a sandbox, os.getpid() is the sandbox's).
BARRIER = """
import time, urllib.request

def handler(event, context):
    url = "{mailbox}/arrive/{group}?expected={expected}&wait={wait}".format(**{"wait": 20, **event})
    seen = int(urllib.request.urlopen(url, timeout=60).read())
    time.sleep(event.get("hold", 0))
    return {"environment": context.log_stream_name, "seen": seen}
"""


def test_concurrent_invocations_run_on_separate_environments(lamina: LaminaServer) -> None:
    create_function(lamina, "barrier", {"app.py": BARRIER}, Timeout=60)
    client = lamina.client()
    with mailbox() as box, ThreadPoolExecutor(20) as executor:
        event = {"mailbox": box.url, "group": "cold", "expected": 20, "hold": 0.5}
        futures = [
            executor.submit(invoke, lamina, "barrier", event, client=client) for _ in range(20)
        ]
        results = [json.loads(f.result()["Body"]) for f in futures]
        assert all(r["seen"] == 20 for r in results), results
        assert len({r["environment"] for r in results}) == 20
        assert len(lamina.environments("barrier")) == 20
        # Warm now: the same 20 environments serve the next round.
        event = {**event, "group": "warm"}
        futures = [
            executor.submit(invoke, lamina, "barrier", event, client=client) for _ in range(20)
        ]
        again = {json.loads(f.result()["Body"])["environment"] for f in futures}
    assert again == {r["environment"] for r in results}


def test_idle_environments_are_stopped_after_the_keep_alive(lamina_factory) -> None:  # type: ignore[no-untyped-def]
    lamina = lamina_factory(LAMINA_KEEP_ALIVE="1")
    create_function(
        lamina, "idle", {"app.py": "import os\ndef handler(e, c):\n    return os.getpid()\n"}
    )
    invoke(lamina, "idle")
    (environment,) = lamina.environments("idle")
    pid = environment["pid"]  # the host's pid of the environment
    wait_until(lambda: not lamina.environments("idle"))
    wait_until(lambda: not pid_alive(pid))


def _throttled(call) -> dict:  # type: ignore[no-untyped-def, type-arg]
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Error"]["Code"] == "TooManyRequestsException"
    return dict(error)


def test_reserved_concurrency_throttles_past_the_reservation(lamina: LaminaServer) -> None:
    create_function(lamina, "one", {"app.py": BARRIER}, Timeout=60)
    client = lamina.client()
    client.put_function_concurrency(FunctionName="one", ReservedConcurrentExecutions=1)
    assert client.get_function(FunctionName="one")["Concurrency"] == {
        "ReservedConcurrentExecutions": 1
    }
    with mailbox() as box, ThreadPoolExecutor(1) as executor:
        event = {"mailbox": box.url, "group": "one", "expected": 2, "wait": 30}
        running = executor.submit(invoke, lamina, "one", event, client=lamina.client())
        wait_until(lambda: box.arrivals("one"))
        error = _throttled(lambda: invoke(lamina, "one", event))
        assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
        box.arrive("one")
        assert json.loads(running.result()["Body"])["seen"] == 2
        client.put_function_concurrency(FunctionName="one", ReservedConcurrentExecutions=0)
        _throttled(lambda: invoke(lamina, "one", event))
        client.delete_function_concurrency(FunctionName="one")
        assert invoke(lamina, "one", event)["StatusCode"] == 200  # the barrier is open now


def test_account_concurrency_limit_throttles(lamina_factory) -> None:  # type: ignore[no-untyped-def]
    lamina = lamina_factory(LAMINA_CONCURRENCY="1")
    create_function(lamina, "one", {"app.py": BARRIER}, Timeout=60)
    create_function(lamina, "other", {"app.py": "def handler(e, c):\n    return 1\n"})
    with mailbox() as box, ThreadPoolExecutor(1) as executor:
        event = {"mailbox": box.url, "group": "one", "expected": 2, "wait": 30}
        running = executor.submit(invoke, lamina, "one", event, client=lamina.client())
        wait_until(lambda: box.arrivals("one"))
        error = _throttled(lambda: invoke(lamina, "other"))
        assert error["Reason"] == "ConcurrentInvocationLimitExceeded"
        box.arrive("one")
        running.result()
    assert json.loads(invoke(lamina, "other")["Body"]) == 1


def test_memory_budget_evicts_idle_environments_first(lamina_factory) -> None:  # type: ignore[no-untyped-def]
    lamina = lamina_factory(LAMINA_MEMORY_BUDGET="384")
    code = "import os\ndef handler(e, c):\n    return os.getpid()\n"
    create_function(lamina, "small", {"app.py": code}, MemorySize=128)
    create_function(lamina, "large", {"app.py": code}, MemorySize=256)
    create_function(lamina, "huge", {"app.py": code}, MemorySize=512)
    invoke(lamina, "small")
    small = lamina.environments("small")[0]["pid"]  # the host's pid of the environment
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
