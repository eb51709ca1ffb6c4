"""The queue service end to end against a real `lamina up`: boto3 and the aws CLI (clients we
did not write) on the control port, `lamina queues`, long polling, a kill -9 that must lose
no acknowledged message, and an `sqs` event source mapping deployed with a DeploymentSpec."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.e2e.harness import CREDENTIALS, LaminaServer, make_zip, wait_until

from lamina.wire.deployment import DeploymentSpec, FunctionSpec, QueueSpec, SqsTrigger, to_json

pytestmark = pytest.mark.e2e

AWS = str(Path(sys.executable).with_name("aws"))


def sqs(server: LaminaServer) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=server.control_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60),
    )


def aws(server: LaminaServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **CREDENTIALS, "AWS_PAGER": ""}
    return subprocess.run(
        [AWS, "--endpoint-url", server.control_url, "--output", "json", "sqs", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def lamina_cli(server: LaminaServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAMINA_ENDPOINT": server.control_url, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_boto3_round_trip(lamina: LaminaServer) -> None:
    client = sqs(lamina)
    url = client.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "30"})[
        "QueueUrl"
    ]
    assert url == f"{lamina.control_url}/000000000000/orders"
    sent = client.send_message(
        QueueUrl=url,
        MessageBody="first order",
        MessageAttributes={"customer": {"DataType": "String", "StringValue": "c-42"}},
    )
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"first order").hexdigest()
    batch = client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"order {i}"} for i in range(5)]
    )
    assert len(batch["Successful"]) == 5 and not batch.get("Failed")

    received = client.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )["Messages"]
    assert len(received) == 6
    first = next(m for m in received if m["MessageId"] == sent["MessageId"])
    assert first["MessageAttributes"]["customer"]["StringValue"] == "c-42"
    assert first["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    assert first["Attributes"]["SenderId"] == "testing"

    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "6"
    deleted = client.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)
        ],
    )
    assert len(deleted["Successful"]) == 6
    attributes = client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "0"}

    with pytest.raises(client.exceptions.QueueDoesNotExist) as missing:
        client.get_queue_url(QueueName="nope")
    assert missing.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(ClientError) as too_long:
        client.send_message(QueueUrl=url, MessageBody="x" * (1024 * 1024 + 1))
    assert too_long.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(client.exceptions.ReceiptHandleIsInvalid):
        client.delete_message(QueueUrl=url, ReceiptHandle="garbage")
    client.delete_queue(QueueUrl=url)
    assert "QueueUrls" not in client.list_queues()


def test_a_long_poll_returns_as_soon_as_a_message_arrives(lamina: LaminaServer) -> None:
    client = sqs(lamina)
    url = client.create_queue(QueueName="waiting")["QueueUrl"]
    sender = threading.Timer(0.5, lambda: sqs(lamina).send_message(QueueUrl=url, MessageBody="hi"))
    started = time.monotonic()
    sender.start()
    try:
        messages = client.receive_message(QueueUrl=url, WaitTimeSeconds=20)["Messages"]
    finally:
        sender.join()
    assert [m["Body"] for m in messages] == ["hi"]
    assert time.monotonic() - started < 10


def test_fifo_with_boto3(lamina: LaminaServer) -> None:
    client = sqs(lamina)
    url = client.create_queue(
        QueueName="jobs.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for i in range(3):
        client.send_message(QueueUrl=url, MessageBody=f"step {i}", MessageGroupId="g")
    duplicate = client.send_message(QueueUrl=url, MessageBody="step 0", MessageGroupId="g")
    first = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in first] == ["step 0", "step 1", "step 2"]
    assert duplicate["MessageId"] == first[0]["MessageId"]


def test_the_aws_cli(lamina: LaminaServer) -> None:
    created = aws(lamina, "create-queue", "--queue-name", "cli")
    assert created.returncode == 0, created.stderr
    url = json.loads(created.stdout)["QueueUrl"]
    sent = aws(lamina, "send-message", "--queue-url", url, "--message-body", "from the cli")
    assert sent.returncode == 0, sent.stderr
    received = aws(lamina, "receive-message", "--queue-url", url, "--attribute-names", "All")
    assert received.returncode == 0, received.stderr
    (message,) = json.loads(received.stdout)["Messages"]
    assert message["Body"] == "from the cli"
    handle = message["ReceiptHandle"]
    deleted = aws(lamina, "delete-message", "--queue-url", url, "--receipt-handle", handle)
    assert deleted.returncode == 0, deleted.stderr
    listed = aws(lamina, "list-queues")
    assert json.loads(listed.stdout)["QueueUrls"] == [url]
    missing = aws(lamina, "get-queue-url", "--queue-name", "absent")
    assert missing.returncode != 0
    assert "AWS.SimpleQueueService.NonExistentQueue" in missing.stderr
    assert aws(lamina, "purge-queue", "--queue-url", url).returncode == 0


def test_lamina_queues_commands(lamina: LaminaServer) -> None:
    sqs(lamina).create_queue(QueueName="inbox")
    sent = lamina_cli(lamina, "queues", "send", "inbox", "hello there")
    assert sent.returncode == 0, sent.stderr
    listed = lamina_cli(lamina, "queues", "ls")
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith("inbox")]
    assert row.split()[:4] == ["inbox", "1", "0", "0"]
    peeked = lamina_cli(lamina, "queues", "receive", "inbox")
    assert json.loads(peeked.stdout)["Body"] == "hello there"
    consumed = lamina_cli(lamina, "queues", "receive", "inbox", "--delete")
    assert json.loads(consumed.stdout)["Attributes"]["ApproximateReceiveCount"] == "2"
    empty = lamina_cli(lamina, "queues", "receive", "inbox")
    assert empty.returncode == 0 and "No messages" in empty.stderr
    assert lamina_cli(lamina, "queues", "purge", "inbox").returncode == 0
    missing = lamina_cli(lamina, "queues", "send", "nowhere", "x")
    assert missing.returncode == 1 and "QueueDoesNotExist" in missing.stderr


def test_kill_9_loses_no_acknowledged_message(lamina_factory: Any) -> None:
    lamina = lamina_factory()
    client = sqs(lamina)
    url = client.create_queue(QueueName="durable")["QueueUrl"]
    acknowledged: list[str] = []
    for start in range(0, 200, 10):
        batch = client.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)],
        )
        acknowledged += [e["MessageId"] for e in batch["Successful"]]
    # Some of them were in flight when the process died: they come back after the timeout.
    client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1)
    assert lamina.stop(signal.SIGKILL) == -signal.SIGKILL
    lamina.start()

    client = sqs(lamina)
    url = client.get_queue_url(QueueName="durable")["QueueUrl"]
    seen: dict[str, str] = {}

    def drained() -> bool:
        answer = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            seen[message["MessageId"]] = message["Body"]
        return len(seen) >= 200

    wait_until(drained, timeout=60, interval=0)
    assert sorted(seen) == sorted(acknowledged)
    assert sorted(seen.values()) == sorted(f"m{i}" for i in range(200))


# --- an sqs event source mapping, deployed ---------------------------------------------------

CONSUMER = """
import json, os, urllib.request

def _sqs(operation, **params):
    request = urllib.request.Request(
        os.environ["AWS_ENDPOINT_URL"], data=json.dumps(params).encode(), method="POST",
        headers={"Content-Type": "application/x-amz-json-1.0",
                 "X-Amz-Target": "AmazonSQS." + operation})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")

def handler(event, context):
    url = _sqs("GetQueueUrl", QueueName="results")["QueueUrl"]
    failures = []
    for record in event["Records"]:
        if record["body"].startswith("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        summary = {k: record[k] for k in ("body", "eventSource", "eventSourceARN", "awsRegion")}
        summary["receiveCount"] = record["attributes"]["ApproximateReceiveCount"]
        summary["batch"] = len(event["Records"])
        _sqs("SendMessage", QueueUrl=url, MessageBody=json.dumps(summary))
    return {"batchItemFailures": failures}
"""


def _request(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _deploy(lamina: LaminaServer, spec: DeploymentSpec) -> None:
    status, body = _request(
        "POST", f"{lamina.control_url}/lamina/v1/deployments", json.dumps(to_json(spec)).encode()
    )
    assert status == 201, body


def test_an_sqs_event_source_mapping(lamina: LaminaServer) -> None:
    bundle = make_zip({"app.py": CONSUMER})
    sha = hashlib.sha256(bundle).hexdigest()
    status, _ = _request("PUT", f"{lamina.control_url}/lamina/v1/bundles/{sha}", bundle)
    assert status == 201
    worker = FunctionSpec(
        key="worker",
        name="pipe-dev-worker",
        runtime="python3.12",
        handler="app.handler",
        code_sha256=sha,
        timeout=10,
        sqs=(SqsTrigger("work", batch_size=5, report_batch_item_failures=True),),
    )
    spec = DeploymentSpec(
        service="pipe",
        stage="dev",
        region="us-east-1",
        functions=(worker,),
        queues=(
            QueueSpec(
                "work", visibility_timeout=1, dead_letter_queue="work-dlq", max_receive_count=2
            ),
            QueueSpec("work-dlq"),
            QueueSpec("results"),
        ),
    )
    _deploy(lamina, spec)
    client = sqs(lamina)
    work = client.get_queue_url(QueueName="work")["QueueUrl"]
    entries = [{"Id": str(i), "MessageBody": f"doc {i}"} for i in range(10)]
    entries[9] = {"Id": "9", "MessageBody": "fail me"}
    client.send_message_batch(QueueUrl=work, Entries=entries)

    results = client.get_queue_url(QueueName="results")["QueueUrl"]
    summaries: list[dict[str, Any]] = []

    def collected() -> bool:
        answer = client.receive_message(QueueUrl=results, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            summaries.append(json.loads(message["Body"]))
            client.delete_message(QueueUrl=results, ReceiptHandle=message["ReceiptHandle"])
        return len(summaries) >= 9

    wait_until(collected, timeout=60, interval=0)
    assert sorted(s["body"] for s in summaries) == sorted(f"doc {i}" for i in range(9))
    assert {s["eventSource"] for s in summaries} == {"aws:sqs"}
    assert {s["eventSourceARN"] for s in summaries} == {"arn:aws:sqs:us-east-1:000000000000:work"}
    assert all(1 <= s["batch"] <= 5 for s in summaries)

    # The reported failure is received twice, then moves to the dead-letter queue.
    dlq = client.get_queue_url(QueueName="work-dlq")["QueueUrl"]

    def dead() -> list[Any]:
        answer = client.receive_message(
            QueueUrl=dlq, MessageSystemAttributeNames=["All"], WaitTimeSeconds=1
        )
        return list(answer.get("Messages", []))

    (parked,) = wait_until(dead, timeout=60, interval=0)
    assert parked["Body"] == "fail me"
    assert parked["Attributes"]["DeadLetterQueueSourceArn"].endswith(":work")
    counts = client.get_queue_attributes(QueueUrl=work, AttributeNames=["All"])["Attributes"]
    assert (
        counts["ApproximateNumberOfMessages"]
        == counts["ApproximateNumberOfMessagesNotVisible"]
        == "0"
    )

    # Removing the stack stops the consumer and deletes its queues.
    status, _ = _request("DELETE", f"{lamina.control_url}/lamina/v1/stacks/pipe/dev")
    assert status == 204
    with pytest.raises(client.exceptions.QueueDoesNotExist):
        client.get_queue_url(QueueName="work")
