"""The queue model's rules: names, queue attributes, messages, MD5s, receipt handles,
batches and event source mappings (plain data, no I/O)."""

from __future__ import annotations

import json

import pytest

from lamina.core.models import Account
from lamina.core.queue_messages import (
    MessageAttribute,
    NewMessage,
    check_message,
    content_dedup_id,
    md5_of_attributes,
    md5_of_body,
    message_size,
    parse_receipt_handle,
    receipt_handle,
)
from lamina.core.queues import (
    BatchEntryIdsNotDistinct,
    EmptyBatchRequest,
    EventSourceMapping,
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidBatchEntryId,
    InvalidMessageContents,
    InvalidParameterValue,
    MissingParameter,
    QueueDoesNotExist,
    QueueSettings,
    ReceiptHandleIsInvalid,
    Redrive,
    TooManyEntriesInBatchRequest,
    apply_attributes,
    attributes_of,
    check_batch_ids,
    mapping_problems,
    name_from_arn,
    name_problem,
    queue_arn,
    settings_from_store,
    stored_attributes,
)

FIFO = QueueSettings(fifo=True)


# --- MD5s, against vectors computed by SQS ---------------------------------------------------


def test_md5_of_body_is_the_md5_of_its_utf8_bytes() -> None:
    assert md5_of_body("This is a test message") == "fafb00f5732ab283681e124bf8747ed1"
    assert md5_of_body("héllo") == "be50e8478cf24ff3595bc7307fb91b50"


def test_md5_of_one_number_attribute() -> None:
    # The digest SQS returned for this attribute (as recorded by localstack's test suite).
    attributes = {"timestamp": MessageAttribute("Number", "1493147359900")}
    assert md5_of_attributes(attributes) == "235c5c510d26fb653d073faed50ae77c"


def test_md5_of_attributes_sorts_them_by_name() -> None:
    # SQS's digest for these two (as recorded by sqslite's tests against the AWS SDK for Go).
    attributes = {
        "ordinal": MessageAttribute("Number", "1"),
        "category": MessageAttribute("String", "test"),
    }
    assert md5_of_attributes(attributes) == "d21ae90c49061e927f57df5f5d72be1f"
    assert md5_of_attributes(dict(reversed(attributes.items()))) == (
        "d21ae90c49061e927f57df5f5d72be1f"
    )


def test_md5_of_a_binary_attribute_uses_transport_type_2() -> None:
    import hashlib
    import struct

    def sized(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    expected = hashlib.md5(sized(b"blob") + sized(b"Binary") + b"\x02" + sized(b"\x00\x01"))
    attributes = {"blob": MessageAttribute("Binary", binary_value=b"\x00\x01")}
    assert md5_of_attributes(attributes) == expected.hexdigest()
    assert md5_of_attributes({}) is None


def test_content_based_deduplication_is_the_sha256_of_the_body() -> None:
    assert content_dedup_id("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["orders", "a", "A-b_9", "x" * 80])
def test_standard_queue_names(name: str) -> None:
    assert name_problem(name, fifo=False) is None


@pytest.mark.parametrize("name", ["", "x" * 81, "has space", "dots.not.allowed", "q.fifo"])
def test_bad_standard_queue_names(name: str) -> None:
    assert name_problem(name, fifo=False) is not None


def test_fifo_names_end_in_fifo_and_count_it() -> None:
    assert name_problem("jobs.fifo", fifo=True) is None
    assert "must end with '.fifo'" in (name_problem("jobs", fifo=True) or "")
    assert name_problem("x" * 75 + ".fifo", fifo=True) is None
    assert name_problem("x" * 76 + ".fifo", fifo=True) is not None


def test_arns() -> None:
    account = Account("eu-west-1", "123456789012")
    assert queue_arn(account, "jobs") == "arn:aws:sqs:eu-west-1:123456789012:jobs"
    assert name_from_arn("arn:aws:sqs:eu-west-1:123456789012:jobs") == "jobs"
    assert name_from_arn("arn:aws:lambda:eu-west-1:123456789012:function:f") is None
    assert name_from_arn("jobs") is None


# --- queue attributes ------------------------------------------------------------------------


def test_attributes_apply_and_render_as_strings() -> None:
    settings = apply_attributes(
        QueueSettings(),
        {"VisibilityTimeout": "60", "DelaySeconds": "5", "Policy": "{}"},
        creating=True,
    )
    assert (settings.visibility_timeout, settings.delay) == (60, 5)
    rendered = attributes_of(settings, Account())
    assert rendered["VisibilityTimeout"] == "60"
    assert rendered["MaximumMessageSize"] == "1048576"
    assert rendered["Policy"] == "{}"
    assert "FifoQueue" not in rendered


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VisibilityTimeout", "43201"),
        ("VisibilityTimeout", "-1"),
        ("VisibilityTimeout", "ten"),
        ("MessageRetentionPeriod", "59"),
        ("DelaySeconds", "901"),
        ("MaximumMessageSize", "1023"),
        ("ReceiveMessageWaitTimeSeconds", "21"),
    ],
)
def test_out_of_range_attributes(name: str, value: str) -> None:
    with pytest.raises(InvalidAttributeValue, match=name):
        apply_attributes(QueueSettings(), {name: value}, creating=True)


def test_unknown_and_read_only_attributes_are_invalid_names() -> None:
    with pytest.raises(InvalidAttributeName, match="Unknown Attribute Colour"):
        apply_attributes(QueueSettings(), {"Colour": "blue"}, creating=True)
    with pytest.raises(InvalidAttributeName, match="read-only"):
        apply_attributes(QueueSettings(), {"QueueArn": "x"}, creating=False)


def test_a_queue_type_is_fixed_at_creation() -> None:
    fifo = apply_attributes(QueueSettings(), {"FifoQueue": "true"}, creating=True)
    assert fifo.fifo
    with pytest.raises(InvalidAttributeValue, match="cannot change"):
        apply_attributes(fifo, {"FifoQueue": "false"}, creating=False)
    with pytest.raises(InvalidAttributeName, match="FIFO"):
        apply_attributes(QueueSettings(), {"ContentBasedDeduplication": "true"}, creating=True)


def test_redrive_policy() -> None:
    policy = json.dumps(
        {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "maxReceiveCount": "3"}
    )
    settings = apply_attributes(QueueSettings(), {"RedrivePolicy": policy}, creating=False)
    assert settings.redrive == Redrive("dlq", 3)
    rendered = json.loads(attributes_of(settings, Account())["RedrivePolicy"])
    assert rendered == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq",
        "maxReceiveCount": 3,
    }
    removed = apply_attributes(settings, {"RedrivePolicy": ""}, creating=False)
    assert removed.redrive is None


@pytest.mark.parametrize(
    ("policy", "error"),
    [
        ("not json", InvalidAttributeValue),
        ('{"deadLetterTargetArn": "dlq", "maxReceiveCount": 3}', InvalidAttributeValue),
        (
            '{"deadLetterTargetArn": "arn:aws:sqs:r:1:dlq", "maxReceiveCount": 1001}',
            InvalidAttributeValue,
        ),
        ('{"deadLetterTargetArn": "arn:aws:sqs:r:1:dlq", "other": 1}', InvalidAttributeName),
    ],
)
def test_bad_redrive_policies(policy: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        apply_attributes(QueueSettings(), {"RedrivePolicy": policy}, creating=False)


def test_stored_attributes_round_trip() -> None:
    settings = QueueSettings(
        visibility_timeout=60,
        redrive=Redrive("dlq.fifo", 4),
        fifo=True,
        content_based_deduplication=True,
        extra=(("Policy", "{}"),),
    )
    assert settings_from_store(stored_attributes(settings)) == settings
    assert stored_attributes(QueueSettings()) == {}


# --- messages --------------------------------------------------------------------------------


def test_a_plain_message_passes() -> None:
    check_message(NewMessage("hello", {"n": MessageAttribute("Number", "-1.5e3")}), QueueSettings())


def test_size_counts_body_and_attribute_names_types_and_values() -> None:
    message = NewMessage("abc", {"k": MessageAttribute("String", "vv")})
    assert message_size(message) == 3 + 1 + 6 + 2
    small = QueueSettings(maximum_message_size=1024)
    check_message(NewMessage("x" * 1024), small)
    with pytest.raises(InvalidParameterValue, match="shorter than 1024 bytes"):
        check_message(NewMessage("x" * 1020, {"k": MessageAttribute("String", "vv")}), small)


def test_the_default_limit_is_one_mebibyte() -> None:
    check_message(NewMessage("x" * 1_048_576), QueueSettings())
    with pytest.raises(InvalidParameterValue, match="shorter than 1048576"):
        check_message(NewMessage("x" * 1_048_577), QueueSettings())


def test_body_rules() -> None:
    with pytest.raises(MissingParameter, match="MessageBody"):
        check_message(NewMessage(""), QueueSettings())
    with pytest.raises(InvalidMessageContents, match="#x1"):
        check_message(NewMessage("bad \x01 char"), QueueSettings())
    check_message(NewMessage("tabs\tand\nnewlines and emoji 🎉"), QueueSettings())


@pytest.mark.parametrize(
    "name", ["AWS.thing", "amazon.x", ".lead", "trail.", "dou..ble", "sp ace", "x" * 257]
)
def test_bad_attribute_names(name: str) -> None:
    with pytest.raises(InvalidParameterValue, match="name"):
        check_message(NewMessage("b", {name: MessageAttribute("String", "v")}), QueueSettings())


@pytest.mark.parametrize(
    "attribute",
    [
        MessageAttribute("Text", "v"),
        MessageAttribute("String", ""),
        MessageAttribute("Number", "12abc"),
        MessageAttribute("Number", "1" * 39),
        MessageAttribute("Binary"),
    ],
)
def test_bad_attribute_values(attribute: MessageAttribute) -> None:
    with pytest.raises(InvalidParameterValue):
        check_message(NewMessage("b", {"a": attribute}), QueueSettings())


def test_custom_types_and_at_most_ten_attributes() -> None:
    check_message(NewMessage("b", {"a": MessageAttribute("String.json", "{}")}), QueueSettings())
    many = {f"a{i}": MessageAttribute("String", "v") for i in range(11)}
    with pytest.raises(InvalidParameterValue, match=r"\[11\] exceeds the allowed maximum \[10\]"):
        check_message(NewMessage("b", many), QueueSettings())


def test_fifo_parameters() -> None:
    with pytest.raises(MissingParameter, match="MessageGroupId"):
        check_message(NewMessage("b", dedup_id="d"), FIFO)
    with pytest.raises(InvalidParameterValue, match="ContentBasedDeduplication"):
        check_message(NewMessage("b", group_id="g"), FIFO)
    with pytest.raises(InvalidParameterValue, match="DelaySeconds"):
        check_message(NewMessage("b", group_id="g", dedup_id="d", delay=5), FIFO)
    check_message(NewMessage("b", group_id="g", dedup_id="d"), FIFO)
    content = QueueSettings(fifo=True, content_based_deduplication=True)
    check_message(NewMessage("b", group_id="g"), content)
    with pytest.raises(InvalidParameterValue, match="MessageDeduplicationId"):
        check_message(NewMessage("b", dedup_id="d"), QueueSettings())
    with pytest.raises(InvalidParameterValue, match="MessageGroupId"):
        check_message(NewMessage("b", group_id="no spaces", dedup_id="d"), FIFO)


def test_only_aws_trace_header_is_a_system_attribute_for_sends() -> None:
    trace = {"AWSTraceHeader": MessageAttribute("String", "Root=1-5759e988-bd862e3fe1be46a9")}
    check_message(NewMessage("b", system_attributes=trace), QueueSettings())
    other = {"SenderId": MessageAttribute("String", "me")}
    with pytest.raises(InvalidParameterValue, match="SenderId"):
        check_message(NewMessage("b", system_attributes=other), QueueSettings())


# --- receipt handles, batches, mappings ------------------------------------------------------


def test_receipt_handles_round_trip_and_garbage_is_invalid() -> None:
    handle = receipt_handle("jobs", "id-1", "tok")
    assert parse_receipt_handle(handle) == ("jobs", "id-1", "tok")
    for bad in ("", "not base64!", "aGVsbG8="):
        with pytest.raises(ReceiptHandleIsInvalid):
            parse_receipt_handle(bad)


def test_batch_ids() -> None:
    check_batch_ids(["a", "b-1", "c_2"])
    with pytest.raises(EmptyBatchRequest):
        check_batch_ids([])
    with pytest.raises(TooManyEntriesInBatchRequest):
        check_batch_ids([str(i) for i in range(11)])
    with pytest.raises(BatchEntryIdsNotDistinct, match="Id a repeated"):
        check_batch_ids(["a", "a"])
    with pytest.raises(InvalidBatchEntryId):
        check_batch_ids(["no spaces"])


def test_error_codes_are_sqs_query_codes() -> None:
    error = QueueDoesNotExist()
    assert (error.error_type, error.code, error.status) == (
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        400,
    )
    assert error.message == "The specified queue does not exist."


def test_mapping_rules() -> None:
    base = EventSourceMapping("u", "s", "dev", "fn", None, "q")
    assert mapping_problems(base, fifo=False) == []
    assert mapping_problems(EventSourceMapping("u", "s", "dev", "fn", None, "q", 0), False)
    big = EventSourceMapping("u", "s", "dev", "fn", None, "q", batch_size=100)
    (problem,) = mapping_problems(big, fifo=False)
    assert "maximumBatchingWindow of at least 1 second" in problem
    assert "FIFO" in mapping_problems(big, fifo=True)[0]
    low = EventSourceMapping("u", "s", "dev", "fn", None, "q", maximum_concurrency=1)
    assert "maximumConcurrency = 1" in mapping_problems(low, None)[0]
