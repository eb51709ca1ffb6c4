"""examples/nightly-batch end to end: `lamina deploy` with the real CLI, documents posted over
HTTP during the "day", then the drain function invoked directly (rather than waiting for
its 00:00-06:59 schedule): every document is processed and the queue is left empty."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from tests.e2e.harness import LaminaServer, invoke

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = re.compile(r"POST - (?P<url>https?://\S+/documents)")
QUEUE = "nightly-batch-dev-documents"


def _cli(server: LaminaServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAMINA_ENDPOINT": server.control_url, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _post(url: str, document: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(document).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _counts(server: LaminaServer) -> tuple[int, int]:
    client = boto3.client(
        "sqs",
        endpoint_url=server.control_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    url = client.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


@pytest.fixture
def service(tmp_path: Path) -> Path:
    target = tmp_path / "nightly-batch"
    shutil.copytree(ROOT / "examples" / "nightly-batch", target)
    return target


def test_documents_queued_by_day_are_processed_by_night(
    lamina: LaminaServer, service: Path
) -> None:
    deployed = _cli(lamina, service, "deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    found = ENDPOINT.search(deployed.stdout)
    assert found is not None, deployed.stdout
    url = found["url"]

    documents = [
        {"id": f"doc-{i}", "text": f"the night shift processes document {i} of the day"}
        for i in range(25)
    ]
    for document in documents:
        status, answer = _post(url, document)
        assert status == 202, answer
        assert answer["id"] == document["id"]
    status, answer = _post(url, {"no": "text"})
    assert status == 400, answer
    assert _counts(lamina) == (25, 0)

    schedules = _cli(lamina, service, "schedules")
    assert schedules.returncode == 0, schedules.stderr
    assert "nightly-batch-dev-drain" in schedules.stdout
    assert "cron(0 0-6 ? * * *)" in schedules.stdout

    # Rather than wait for the night, run the drain now, as its schedule would.
    result = invoke(lamina, "nightly-batch-dev-drain", {})
    assert "FunctionError" not in result, result["Body"]
    summary = json.loads(result["Body"])
    assert summary["processed"] == 25
    assert sorted(d["id"] for d in summary["documents"]) == sorted(d["id"] for d in documents)
    assert {d["words"] for d in summary["documents"]} == {9}
    assert {d["top"][0] for d in summary["documents"]} == {"the"}
    assert _counts(lamina) == (0, 0)

    # Each document left a line in the drain's log.
    processed = [line for line in lamina.logs("nightly-batch-dev-drain") if '"processed"' in line]
    assert len(processed) == 25
