"""A tiny SQS client for the functions of this example.

On AWS (and anywhere boto3 is importable) it is boto3's SQS client. Lamina's Python runtime
runs with only the task root on its path, so there it speaks SQS's JSON protocol with
urllib to `AWS_ENDPOINT_URL`, which Lamina sets to its own control API (Lamina does not
check request signatures). Vendor boto3 into the package to use it everywhere instead.
"""

import json
import os
import urllib.error
import urllib.request

try:
    import boto3
except ImportError:  # Lamina's runtime: nothing but the standard library
    boto3 = None


class _JsonSqs:
    """The few SQS calls this example makes, with boto3's names and shapes."""

    def __init__(self, endpoint):
        self.endpoint = endpoint.rstrip("/") + "/"

    def _call(self, operation, **params):
        request = urllib.request.Request(
            self.endpoint,
            data=json.dumps(params).encode(),
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "AmazonSQS." + operation,
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            detail = json.loads(error.read() or b"{}")
            raise RuntimeError(f"SQS {operation}: {detail.get('message', error)}") from None

    def get_queue_url(self, QueueName):
        return self._call("GetQueueUrl", QueueName=QueueName)

    def send_message(self, QueueUrl, MessageBody, **params):
        return self._call("SendMessage", QueueUrl=QueueUrl, MessageBody=MessageBody, **params)

    def receive_message(self, QueueUrl, **params):
        return self._call("ReceiveMessage", QueueUrl=QueueUrl, **params)

    def delete_message_batch(self, QueueUrl, Entries):
        return self._call("DeleteMessageBatch", QueueUrl=QueueUrl, Entries=Entries)


def client():
    if boto3 is not None:
        return boto3.client("sqs")
    return _JsonSqs(os.environ["AWS_ENDPOINT_URL"])
