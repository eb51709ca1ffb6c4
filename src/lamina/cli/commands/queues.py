"""`lamina queues`: the built-in queues (SQS API) from the command line.

The commands speak the SQS API on the control port, as `aws sqs --endpoint-url` would, so
they see exactly what boto3 and functions see. `receive` peeks by default: the messages
stay queued (visible again at once), though each look counts as a receive, as on SQS.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from lamina.cli.shared import CliState, reports_errors, state_of

JSON_1_0 = "application/x-amz-json-1.0"

queues = typer.Typer(
    name="queues",
    help="Queues (SQS API): ls, send, receive, purge.",
    no_args_is_help=True,
)


def call(state: CliState, operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """One SQS API call; errors arrive as `ControlApiError`s with SQS's code."""
    answer = state.client().call(
        "POST",
        "/",
        body=json.dumps(request).encode(),
        headers={"Content-Type": JSON_1_0, "X-Amz-Target": f"AmazonSQS.{operation}"},
        timeout=60,
    )
    data = answer.json()
    return data if isinstance(data, dict) else {}


def _url(state: CliState, name: str) -> str:
    return str(call(state, "GetQueueUrl", {"QueueName": name})["QueueUrl"])


@queues.command("ls")
@reports_errors
def ls(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="Only the queues whose name starts so")] = "",
) -> None:
    """List queues with their message counts."""
    state = state_of(ctx)
    urls = call(state, "ListQueues", {"QueueNamePrefix": prefix} if prefix else {})
    found = urls.get("QueueUrls") or []
    if not found:
        state.err.print("No queues. Declare one under `queues:` in serverless.yml.", markup=False)
        return
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("name", overflow="fold")
    for column in ("visible", "in flight", "delayed"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("dead-letter queue", overflow="fold")
    for url in found:
        attributes = call(state, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]})
        a = attributes.get("Attributes") or {}
        redrive = json.loads(a["RedrivePolicy"]) if a.get("RedrivePolicy") else {}
        dlq = ""
        if redrive:
            dlq = f"{str(redrive['deadLetterTargetArn']).rsplit(':', 1)[-1]} "
            dlq += f"after {redrive['maxReceiveCount']}"
        table.add_row(
            Text(str(url).rsplit("/", 1)[-1]),
            str(a.get("ApproximateNumberOfMessages", "")),
            str(a.get("ApproximateNumberOfMessagesNotVisible", "")),
            str(a.get("ApproximateNumberOfMessagesDelayed", "")),
            "FIFO" if a.get("FifoQueue") == "true" else "standard",
            Text(dlq),
        )
    state.out.print(table)


@queues.command("send")
@reports_errors
def send(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Queue name")],
    body: Annotated[str, typer.Argument(help="Message body")],
    group: Annotated[str | None, typer.Option("--group", help="MessageGroupId (FIFO)")] = None,
    dedup: Annotated[
        str | None, typer.Option("--dedup", help="MessageDeduplicationId (FIFO)")
    ] = None,
    delay: Annotated[int | None, typer.Option("--delay", help="DelaySeconds, 0-900")] = None,
) -> None:
    """Send one message."""
    state = state_of(ctx)
    request: dict[str, Any] = {"QueueUrl": _url(state, name), "MessageBody": body}
    for key, value in (
        ("MessageGroupId", group),
        ("MessageDeduplicationId", dedup),
        ("DelaySeconds", delay),
    ):
        if value is not None:
            request[key] = value
    answer = call(state, "SendMessage", request)
    state.out.print(
        Text.assemble(("sent ", "green"), (str(answer.get("MessageId")), "bold"), f" to {name}"),
        soft_wrap=True,
    )


@queues.command("receive")
@reports_errors
def receive(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Queue name")],
    max_messages: Annotated[int, typer.Option("--max", "-n", help="At most this many, 1-10")] = 10,
    wait: Annotated[int, typer.Option("--wait", help="Long poll, 0-20 seconds")] = 0,
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete what was received (consume it)")
    ] = False,
) -> None:
    """Print messages as JSON lines; they stay queued unless --delete."""
    state = state_of(ctx)
    url = _url(state, name)
    request: dict[str, Any] = {
        "QueueUrl": url,
        "MaxNumberOfMessages": max_messages,
        "WaitTimeSeconds": wait,
        "MessageSystemAttributeNames": ["All"],
        "MessageAttributeNames": ["All"],
    }
    if not delete:
        request["VisibilityTimeout"] = 0
    messages = call(state, "ReceiveMessage", request).get("Messages") or []
    for message in messages:
        line = {
            "MessageId": message.get("MessageId"),
            "Body": message.get("Body"),
            "Attributes": message.get("Attributes", {}),
            "MessageAttributes": message.get("MessageAttributes", {}),
        }
        state.out.print(Text(json.dumps(line)), soft_wrap=True)
    if delete and messages:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        call(state, "DeleteMessageBatch", {"QueueUrl": url, "Entries": entries})
    if not messages:
        state.err.print(f"No messages visible in {name}.", markup=False)


@queues.command("purge")
@reports_errors
def purge(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Queue name")]) -> None:
    """Delete every message of a queue (once a minute, as SQS allows)."""
    state = state_of(ctx)
    call(state, "PurgeQueue", {"QueueUrl": _url(state, name)})
    state.out.print(Text.assemble(("purged ", "green"), (name, "bold")), soft_wrap=True)
