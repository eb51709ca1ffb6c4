"""Provisioned concurrency end to end with boto3 against a real `lamina up`: two
environments started ahead of time for an alias, READY, visible to the function as
`provisioned-concurrency`, serving the first invocations warm; re-applied after a restart.
And `lamina deploy` of a serverless.yml with `provisionedConcurrency`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.harness import LaminaServer, create_function, invoke, wait_until

pytestmark = pytest.mark.e2e

SOURCE = """
import os, time, uuid

TOKEN = uuid.uuid4().hex  # one per execution environment, made at init

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"], "env": TOKEN}
"""


def ready(client: Any) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        state: dict[str, Any] = client.get_provisioned_concurrency_config(
            FunctionName="fn", Qualifier="live"
        )
        assert state["Status"] != "FAILED", state
        return state if state["Status"] == "READY" else None

    result: dict[str, Any] = wait_until(check, timeout=60)
    return result


def call(lamina: LaminaServer) -> tuple[dict[str, Any], str]:
    response = invoke(lamina, "fn", {"sleep": 1}, Qualifier="live", LogType="Tail")
    assert "FunctionError" not in response, response["Body"]
    return json.loads(response["Body"]), base64.b64decode(response["LogResult"]).decode()


def test_provisioned_environments_are_initialised_ahead_and_serve_warm(
    lamina: LaminaServer,
) -> None:
    client = lamina.client()
    create_function(lamina, "fn", {"app.py": SOURCE}, MemorySize=128, Timeout=30)
    client.publish_version(FunctionName="fn")
    client.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")

    put = client.put_provisioned_concurrency_config(
        FunctionName="fn", Qualifier="live", ProvisionedConcurrentExecutions=2
    )
    assert (put["RequestedProvisionedConcurrentExecutions"], put["Status"]) == (2, "IN_PROGRESS")
    state = ready(client)
    assert state["AllocatedProvisionedConcurrentExecutions"] == 2
    assert state["AvailableProvisionedConcurrentExecutions"] == 2
    envs = lamina.environments("fn")
    assert [(e["version"], e["invocations"]) for e in envs] == [("1", 0), ("1", 0)]
    listed = client.list_provisioned_concurrency_configs(FunctionName="fn")
    assert [
        c["FunctionArn"].rsplit(":", 1)[1] for c in listed["ProvisionedConcurrencyConfigs"]
    ] == ["live"]

    with ThreadPoolExecutor(2) as pool:  # two at once: one on each environment
        results = list(pool.map(lambda _: call(lamina), range(2)))

    bodies = [body for body, _ in results]
    assert [b["type"] for b in bodies] == ["provisioned-concurrency"] * 2
    assert len({b["env"] for b in bodies}) == 2
    for _, tail in results:
        report = next(line for line in tail.splitlines() if line.startswith("REPORT"))
        assert "Init Duration" not in report  # init was done before the invocation came
    assert len(lamina.environments("fn")) == 2
    assert lamina.get("/lamina/v1/status")["pool"]["cold_starts"] == 0

    # A restart re-applies the stored configuration.
    lamina.stop()
    lamina.start()
    client = lamina.client()
    assert ready(client)["AllocatedProvisionedConcurrentExecutions"] == 2
    body, tail = call(lamina)
    assert body["type"] == "provisioned-concurrency"
    assert "Init Duration" not in next(
        line for line in tail.splitlines() if line.startswith("REPORT")
    )

    client.delete_provisioned_concurrency_config(FunctionName="fn", Qualifier="live")
    wait_until(lambda: lamina.environments("fn") == [])


SERVERLESS_YML = """
service: warm
provider:
  name: aws
  runtime: python3.11
  memorySize: 128
functions:
  api:
    handler: app.handler
    provisionedConcurrency: {count}
    events:
      - httpApi: 'GET /hello'
"""


def test_lamina_deploy_applies_provisioned_concurrency_from_serverless_yml(
    lamina: LaminaServer, tmp_path: Path
) -> None:
    service = tmp_path / "warm"
    service.mkdir()
    (service / "app.py").write_text(SOURCE)
    (service / "serverless.yml").write_text(SERVERLESS_YML.format(count=1))
    env = {**os.environ, "LAMINA_ENDPOINT": lamina.control_url, "NO_COLOR": "1"}

    def deploy() -> None:
        done = subprocess.run(
            [sys.executable, "-m", "lamina", "deploy"],
            cwd=service,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    deploy()
    client = lamina.client()
    alias = client.get_alias(FunctionName="warm-dev-api", Name="provisioned")
    assert alias["FunctionVersion"] == "1"

    def state() -> dict[str, Any] | None:
        got: dict[str, Any] = client.get_provisioned_concurrency_config(
            FunctionName="warm-dev-api", Qualifier="provisioned"
        )
        return got if got["Status"] == "READY" else None

    assert wait_until(state, timeout=60)["AllocatedProvisionedConcurrentExecutions"] == 1
    with urllib.request.urlopen(f"{lamina.data_url}/warm/dev/hello", timeout=30) as answer:
        assert json.loads(answer.read())["type"] == "provisioned-concurrency"

    (service / "serverless.yml").write_text(SERVERLESS_YML.format(count=0))
    deploy()
    assert client.list_aliases(FunctionName="warm-dev-api")["Aliases"] == []
    wait_until(lambda: lamina.environments("warm-dev-api") == [] or None)
