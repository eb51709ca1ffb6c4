"""Wire shapes of queue messages: the SQS JSON API's (`MessageAttributes`, a received
`Message`) and Lambda's SQS event (what an `sqs` event source mapping invokes with).

The SQS API's binary values are base64 strings (AWS's JSON protocol encodes blobs so);
timestamps are epoch milliseconds as strings, as SQS returns them. No I/O here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

import orjson

from lamina.core.queue_messages import Message, MessageAttribute, md5_of_attributes, md5_of_body
from lamina.core.queues import InvalidParameterValue

Json = dict[str, Any]


def parse_attributes(
    value: object, member: str = "MessageAttributes"
) -> dict[str, MessageAttribute]:
    """`{"name": {"DataType": ..., "StringValue" | "BinaryValue": ...}}` from a request."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameterValue(f"{member} must be a map of name to attribute value")
    attributes = {}
    for name, item in value.items():
        if not isinstance(item, dict) or not isinstance(item.get("DataType"), str):
            raise InvalidParameterValue(
                f"{member}.{name} must be an object with a DataType and a StringValue or "
                "BinaryValue"
            )
        if item.get("StringListValues") or item.get("BinaryListValues"):
            raise InvalidParameterValue(
                f"{member}.{name}: StringListValues and BinaryListValues are reserved by SQS "
                "and not supported"
            )
        string_value = item.get("StringValue")
        binary = item.get("BinaryValue")
        if string_value is not None and not isinstance(string_value, str):
            raise InvalidParameterValue(f"{member}.{name}.StringValue must be a string")
        attributes[name] = MessageAttribute(
            data_type=item["DataType"],
            string_value=string_value,
            binary_value=_base64(binary, f"{member}.{name}.BinaryValue")
            if binary is not None
            else None,
        )
    return attributes


def _base64(value: object, member: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidParameterValue(f"{member} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise InvalidParameterValue(f"{member} is not valid base64") from None


def render_attributes(attributes: dict[str, MessageAttribute]) -> Json:
    rendered: Json = {}
    for name, attribute in attributes.items():
        item: Json = {"DataType": attribute.data_type}
        if attribute.binary_value is not None:
            item["BinaryValue"] = base64.b64encode(attribute.binary_value).decode()
        else:
            item["StringValue"] = attribute.string_value
        rendered[name] = item
    return rendered


def system_attributes(message: Message) -> dict[str, str]:
    """Every system attribute SQS would report for `message` (all values strings)."""
    attributes = {
        "SenderId": message.system.get("SenderId", ""),
        "SentTimestamp": _ms(message.sent_at),
        "ApproximateReceiveCount": str(message.receive_count),
        "ApproximateFirstReceiveTimestamp": _ms(message.first_receive_at or message.sent_at),
    }
    for name in ("AWSTraceHeader", "DeadLetterQueueSourceArn"):
        if name in message.system:
            attributes[name] = message.system[name]
    if message.dedup_id is not None:  # FIFO
        attributes["SequenceNumber"] = message.sequence_number
        attributes["MessageDeduplicationId"] = message.dedup_id
    if message.group_id is not None:
        attributes["MessageGroupId"] = message.group_id
    return attributes


def selected(attributes: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The attributes a receive asked for: `All`, `.*`, `prefix.*` or exact names."""
    wanted = list(names)
    if "All" in wanted or ".*" in wanted:
        return dict(attributes)
    prefixes = tuple(n[:-1] for n in wanted if n.endswith(".*"))
    exact = set(wanted)
    return {
        k: v for k, v in attributes.items() if k in exact or (prefixes and k.startswith(prefixes))
    }


def received_message(
    message: Message, system_names: Iterable[str], attribute_names: Iterable[str]
) -> Json:
    """One entry of ReceiveMessage's `Messages`."""
    shape: Json = {
        "MessageId": message.id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": md5_of_body(message.body),
        "Body": message.body,
    }
    system = selected(system_attributes(message), system_names)
    if system:
        shape["Attributes"] = system
    attributes = selected(message.attributes, attribute_names)
    if attributes:
        # Of the attributes returned, so that a client can check what it got.
        shape["MD5OfMessageAttributes"] = md5_of_attributes(attributes)
        shape["MessageAttributes"] = render_attributes(attributes)
    return shape


def lambda_record(message: Message, queue_arn: str, region: str) -> Json:
    """One record of Lambda's SQS event (reference 2.5)."""
    attributes: Json = {}
    for name, attribute in message.attributes.items():
        item: Json = {
            "stringValue": attribute.string_value,
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": attribute.data_type,
        }
        if attribute.binary_value is not None:
            del item["stringValue"]
            item["binaryValue"] = base64.b64encode(attribute.binary_value).decode()
        attributes[name] = item
    record: Json = {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": system_attributes(message),
        "messageAttributes": attributes,
        "md5OfBody": md5_of_body(message.body),
    }
    if message.attributes:
        record["md5OfMessageAttributes"] = md5_of_attributes(message.attributes)
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def _ms(epoch: float) -> str:
    return str(int(epoch * 1000))


def batch_item_failures(payload: bytes, message_ids: Iterable[str]) -> set[str] | None:
    """The messages a function reported as failed (`ReportBatchItemFailures`), or None when
    its answer makes the whole batch a failure, as Lambda reads it: no answer, `null` or an
    empty/null `batchItemFailures` is complete success; invalid JSON, or an
    `itemIdentifier` that is missing, empty or not a message of the batch, complete failure.
    """
    if not payload.strip():
        return set()
    try:
        response = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    batch = set(message_ids)
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in batch:
            return None
        failed.add(identifier)
    return failed
