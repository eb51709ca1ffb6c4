"""Nightly batch: documents are queued by day (`submit`) and processed by night (`drain`)."""

import base64
import json
import os
import re

import sqs

_client = None
_queue_url = None


def _queue():
    # Looked up once per execution environment: warm invocations reuse it.
    global _client, _queue_url
    if _queue_url is None:
        _client = sqs.client()
        _queue_url = _client.get_queue_url(QueueName=os.environ["QUEUE_NAME"])["QueueUrl"]
    return _client, _queue_url


def _answer(status, body):
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def submit(event, context):
    """POST /documents with {"id": ..., "text": ...}: queue it for tonight."""
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    try:
        document = json.loads(raw)
    except ValueError:
        return _answer(400, {"error": "the body must be a JSON document"})
    if not isinstance(document, dict) or not isinstance(document.get("text"), str):
        return _answer(400, {"error": 'expected {"id": "...", "text": "..."}'})
    client, url = _queue()
    sent = client.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(document),
        MessageAttributes={"source": {"DataType": "String", "StringValue": "http"}},
    )
    return _answer(202, {"queued": sent["MessageId"], "id": document.get("id")})


def process(document):
    """The night's work: here, a word count and the most frequent words."""
    words = re.findall(r"[\w']+", document["text"].lower())
    counts = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    top = sorted(counts, key=lambda w: (-counts[w], w))[:3]
    return {"id": document.get("id"), "words": len(words), "top": top}


def drain(event, context):
    """Receive, process and delete documents until the queue is empty or the run's time
    is nearly up (what is left waits for the next hourly run)."""
    client, url = _queue()
    results = []
    while context.get_remaining_time_in_millis() > 30_000:
        answer = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60
        )
        messages = answer.get("Messages", [])
        if not messages:
            break
        done = []
        for message in messages:
            try:
                result = process(json.loads(message["Body"]))
            except (ValueError, KeyError, TypeError) as error:
                # Left in the queue: after maxReceiveCount runs it goes to documents-failed.
                print(f"document {message['MessageId']} failed: {error!r}")
                continue
            print(json.dumps({"processed": result}))
            results.append(result)
            done.append({"Id": str(len(done)), "ReceiptHandle": message["ReceiptHandle"]})
        if done:
            client.delete_message_batch(QueueUrl=url, Entries=done)
    return {"processed": len(results), "documents": results}
