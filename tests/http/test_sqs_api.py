"""The SQS API in-process: requests serialised and answers parsed by botocore itself (the
code boto3 and the aws CLI run, JSON 1.0 in query-compatible mode), plus raw requests
botocore would never send, and the `POST /` dispatcher SQS shares with SSM."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.parsers
import botocore.serialize
import botocore.session
import orjson
import pytest

from lamina.core.clock import FakeClock
from lamina.core.models import Account
from lamina.http.server import Request, Response
from lamina.http.sqs_api import SqsApi
from lamina.http.targets import TargetRouter
from lamina.services.queues import QueueService
from lamina.store.queues import SqliteQueueStore
from lamina.store.sqlite import SqliteStore

MODEL = botocore.session.get_session().get_service_model("sqs")
JSON_1_0 = "application/x-amz-json-1.0"
RID = "11111111-2222-3333-4444-555555555555"
BASE = "http://127.0.0.1:8081"
URL = f"{BASE}/000000000000/jobs"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[SqsApi]:
    sqlite = SqliteStore(tmp_path / "lamina.db")
    queues = QueueService(
        store=SqliteQueueStore(sqlite), clock=FakeClock(), account=Account(), base_url=BASE
    )
    yield SqsApi(queues)
    sqlite.close()


async def send(api: SqsApi, request: Request) -> Response:
    [(method, pattern, handler)] = api.routes()
    match = pattern.fullmatch(request.path)
    assert method == request.method and match is not None
    return await handler(request, match, RID)


def parse(response: Response, operation: str) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in response.headers}
    parsed: dict[str, Any] = botocore.parsers.create_parser("json").parse(
        {
            "status_code": response.status,
            "headers": headers | {"content-type": str(response.content_type)},
            "body": response.body,
        },
        MODEL.operation_model(operation).output_shape,
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


def request_for(operation: str, params: dict[str, Any]) -> Request:
    model = MODEL.operation_model(operation)
    serialised = botocore.serialize.create_serializer("json").serialize_to_request(params, model)
    headers = {k.lower(): v for k, v in serialised["headers"].items()}
    headers["authorization"] = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/sqs/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )
    return Request("POST", serialised["url_path"], "", headers, serialised["body"])


async def call(api: SqsApi, operation: str, **params: Any) -> dict[str, Any]:
    """Serialise as botocore does, answer in-process, parse as botocore does."""
    response = await send(api, request_for(operation, params))
    assert response.content_type == JSON_1_0
    assert ("x-amzn-RequestId", RID) in response.headers
    return parse(response, operation)


async def fails(api: SqsApi, operation: str, **params: Any) -> dict[str, Any]:
    response = await send(api, request_for(operation, params))
    assert response.status >= 400
    error: dict[str, Any] = parse(response, operation)["Error"]
    return error


async def test_the_request_botocore_builds_is_json_1_0_with_a_target() -> None:
    request = request_for("ListQueues", {})
    assert request.headers["x-amz-target"] == "AmazonSQS.ListQueues"
    assert request.headers["content-type"] == JSON_1_0
    assert request.path == "/"


async def test_create_send_receive_delete(api: SqsApi) -> None:
    created = await call(api, "CreateQueue", QueueName="jobs", Attributes={"DelaySeconds": "0"})
    assert created == {"QueueUrl": URL}
    assert await call(api, "GetQueueUrl", QueueName="jobs") == {"QueueUrl": URL}
    assert await call(api, "ListQueues") == {"QueueUrls": [URL]}
    sent = await call(
        api,
        "SendMessage",
        QueueUrl=URL,
        MessageBody="This is a test message",
        MessageAttributes={
            "timestamp": {"DataType": "Number", "StringValue": "1493147359900"},
            "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    assert sent["MD5OfMessageBody"] == "fafb00f5732ab283681e124bf8747ed1"
    assert re.fullmatch(r"[0-9a-f]{32}", sent["MD5OfMessageAttributes"])
    received = await call(
        api,
        "ReceiveMessage",
        QueueUrl=URL,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["timestamp"],
        MessageSystemAttributeNames=["SenderId", "ApproximateReceiveCount"],
    )
    (message,) = received["Messages"]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "This is a test message"
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert message["Attributes"] == {"SenderId": "AKIDEXAMPLE", "ApproximateReceiveCount": "1"}
    # Only the attribute asked for, and the MD5 of what is returned (SQS's vector).
    assert message["MessageAttributes"] == {
        "timestamp": {"DataType": "Number", "StringValue": "1493147359900"}
    }
    assert message["MD5OfMessageAttributes"] == "235c5c510d26fb653d073faed50ae77c"
    await call(api, "DeleteMessage", QueueUrl=URL, ReceiptHandle=message["ReceiptHandle"])
    assert await call(api, "ReceiveMessage", QueueUrl=URL) == {}
    await call(api, "DeleteQueue", QueueUrl=URL)
    assert await call(api, "ListQueues") == {}


async def test_binary_attributes_come_back_as_bytes(api: SqsApi) -> None:
    await call(api, "CreateQueue", QueueName="jobs")
    await call(
        api,
        "SendMessage",
        QueueUrl=URL,
        MessageBody="b",
        MessageAttributes={"raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}},
    )
    (message,) = (await call(api, "ReceiveMessage", QueueUrl=URL, MessageAttributeNames=["All"]))[
        "Messages"
    ]
    assert message["MessageAttributes"]["raw"] == {"DataType": "Binary", "BinaryValue": b"\x00\xff"}


async def test_errors_carry_the_exception_and_the_query_code(api: SqsApi) -> None:
    response = await send(api, request_for("GetQueueUrl", {"QueueName": "nope"}))
    assert response.status == 400
    assert ("x-amzn-query-error", "AWS.SimpleQueueService.NonExistentQueue;Sender") in (
        response.headers
    )
    assert orjson.loads(response.body)["__type"] == "com.amazonaws.sqs#QueueDoesNotExist"
    error = parse(response, "GetQueueUrl")["Error"]
    # What boto3 shows, and the name of the exception class it raises.
    assert error["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert error["QueryErrorCode"] == "QueueDoesNotExist"
    assert error["Type"] == "Sender"


@pytest.mark.parametrize(
    ("operation", "params", "code"),
    [
        ("SendMessage", {"QueueUrl": URL, "MessageBody": "x"}, "NonExistentQueue"),
        ("CreateQueue", {"QueueName": "bad name"}, "InvalidParameterValue"),
        ("CreateQueue", {"QueueName": "q", "Attributes": {"Bogus": "1"}}, "InvalidAttributeName"),
        (
            "CreateQueue",
            {"QueueName": "q", "Attributes": {"VisibilityTimeout": "-1"}},
            "InvalidAttributeValue",
        ),
    ],
)
async def test_error_codes(api: SqsApi, operation: str, params: dict[str, Any], code: str) -> None:
    error = await fails(api, operation, **params)
    assert error["Code"].endswith(code), error


async def test_message_and_receive_errors(api: SqsApi) -> None:
    await call(api, "CreateQueue", QueueName="jobs", Attributes={"MaximumMessageSize": "1024"})
    error = await fails(api, "SendMessage", QueueUrl=URL, MessageBody="x" * 1025)
    assert error["Code"] == "InvalidParameterValue"
    assert "Message must be shorter than 1024 bytes" in error["Message"]
    error = await fails(api, "SendMessage", QueueUrl=URL, MessageBody="\x00")
    assert error["Code"] == "InvalidMessageContents"
    error = await fails(api, "ReceiveMessage", QueueUrl=URL, MaxNumberOfMessages=11)
    assert error["Code"] == "InvalidParameterValue"
    assert "MaxNumberOfMessages" in error["Message"]
    error = await fails(api, "ReceiveMessage", QueueUrl=URL, WaitTimeSeconds=21)
    assert "WaitTimeSeconds" in error["Message"]
    error = await fails(api, "DeleteMessage", QueueUrl=URL, ReceiptHandle="garbage")
    assert (error["Code"], error["QueryErrorCode"]) == (
        "ReceiptHandleIsInvalid",
        "ReceiptHandleIsInvalid",
    )
    await call(api, "SendMessage", QueueUrl=URL, MessageBody="x")
    (message,) = (await call(api, "ReceiveMessage", QueueUrl=URL, VisibilityTimeout=0))["Messages"]
    error = await fails(
        api,
        "ChangeMessageVisibility",
        QueueUrl=URL,
        ReceiptHandle=message["ReceiptHandle"],
        VisibilityTimeout=5,
    )
    assert error["Code"] == "AWS.SimpleQueueService.MessageNotInflight"
    await call(api, "PurgeQueue", QueueUrl=URL)
    error = await fails(api, "PurgeQueue", QueueUrl=URL)
    assert error["Code"] == "AWS.SimpleQueueService.PurgeQueueInProgress"


async def test_batches(api: SqsApi) -> None:
    await call(api, "CreateQueue", QueueName="jobs")
    result = await call(
        api,
        "SendMessageBatch",
        QueueUrl=URL,
        Entries=[
            {"Id": "a", "MessageBody": "one"},
            {"Id": "b", "MessageBody": "two", "DelaySeconds": 901},
            {"Id": "c", "MessageBody": "three"},
        ],
    )
    assert [e["Id"] for e in result["Successful"]] == ["a", "c"]
    (failed,) = result["Failed"]
    assert (failed["Id"], failed["SenderFault"], failed["Code"]) == (
        "b",
        True,
        "InvalidParameterValue",
    )
    messages = (await call(api, "ReceiveMessage", QueueUrl=URL, MaxNumberOfMessages=10))["Messages"]
    entries = [{"Id": f"e{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    entries.append({"Id": "bad", "ReceiptHandle": "garbage"})
    deleted = await call(api, "DeleteMessageBatch", QueueUrl=URL, Entries=entries)
    assert [e["Id"] for e in deleted["Successful"]] == ["e0", "e1"]
    assert [(e["Id"], e["Code"]) for e in deleted["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    changed = await call(
        api,
        "ChangeMessageVisibilityBatch",
        QueueUrl=URL,
        Entries=[{"Id": "x", "ReceiptHandle": "garbage", "VisibilityTimeout": 1}],
    )
    assert changed["Successful"] == [] and changed["Failed"][0]["Id"] == "x"


@pytest.mark.parametrize(
    ("entries", "code"),
    [
        ([], "EmptyBatchRequest"),
        ([{"Id": str(i), "MessageBody": "x"} for i in range(11)], "TooManyEntriesInBatchRequest"),
        ([{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}], "NotDistinct"),
        ([{"Id": "no spaces", "MessageBody": "x"}], "InvalidBatchEntryId"),
        (
            [{"Id": "a", "MessageBody": "x" * 600_000}, {"Id": "b", "MessageBody": "y" * 600_000}],
            "BatchRequestTooLong",
        ),
    ],
)
async def test_batch_request_errors(api: SqsApi, entries: list[dict[str, Any]], code: str) -> None:
    await call(api, "CreateQueue", QueueName="jobs")
    error = await fails(api, "SendMessageBatch", QueueUrl=URL, Entries=entries)
    assert error["Code"].startswith("AWS.SimpleQueueService.") and error["Code"].endswith(code)


async def test_fifo_over_the_wire(api: SqsApi) -> None:
    fifo = f"{BASE}/000000000000/jobs.fifo"
    await call(api, "CreateQueue", QueueName="jobs.fifo", Attributes={"FifoQueue": "true"})
    sent = await call(
        api,
        "SendMessage",
        QueueUrl=fifo,
        MessageBody="x",
        MessageGroupId="g",
        MessageDeduplicationId="d",
    )
    assert len(sent["SequenceNumber"]) == 20
    error = await fails(api, "SendMessage", QueueUrl=fifo, MessageBody="x", MessageGroupId="g")
    assert "ContentBasedDeduplication" in error["Message"]
    (message,) = (
        await call(api, "ReceiveMessage", QueueUrl=fifo, MessageSystemAttributeNames=["All"])
    )["Messages"]
    assert message["Attributes"]["MessageGroupId"] == "g"
    assert message["Attributes"]["MessageDeduplicationId"] == "d"
    assert message["Attributes"]["SequenceNumber"] == sent["SequenceNumber"]


async def test_queue_attributes_over_the_wire(api: SqsApi) -> None:
    await call(api, "CreateQueue", QueueName="jobs")
    await call(api, "SetQueueAttributes", QueueUrl=URL, Attributes={"VisibilityTimeout": "90"})
    got = await call(
        api, "GetQueueAttributes", QueueUrl=URL, AttributeNames=["VisibilityTimeout", "QueueArn"]
    )
    assert got == {
        "Attributes": {
            "VisibilityTimeout": "90",
            "QueueArn": "arn:aws:sqs:us-east-1:000000000000:jobs",
        }
    }
    assert await call(api, "GetQueueAttributes", QueueUrl=URL) == {}


async def test_raw_requests_botocore_would_not_send(api: SqsApi) -> None:
    def raw(target: str, body: bytes) -> Request:
        headers = {"content-type": JSON_1_0, "x-amz-target": target}
        return Request("POST", "/", "", headers, body)

    response = await send(api, raw("AmazonSQS.SendMessage", b"{not json"))
    assert orjson.loads(response.body)["__type"] == "com.amazonaws.sqs#SerializationException"
    response = await send(api, raw("AmazonSQS.SendMessage", b'{"MessageBody": "x"}'))
    assert ("x-amzn-query-error", "MissingParameter;Sender") in response.headers
    response = await send(api, raw("AmazonSQS.TagQueue", b"{}"))
    assert orjson.loads(response.body)["__type"] == "com.amazonaws.sqs#UnsupportedOperation"
    response = await send(api, raw("AmazonSQS.Nothing", b"{}"))
    assert response.status == 400 and b"not an SQS operation" in response.body
    body = b'{"QueueUrl": "%s", "MessageBody": "x", "MessageAttributes": {"a": 1}}' % URL.encode()
    await send(api, raw("AmazonSQS.CreateQueue", b'{"QueueName": "jobs"}'))
    response = await send(api, raw("AmazonSQS.SendMessage", body))
    assert ("x-amzn-query-error", "InvalidParameterValue;Sender") in response.headers
    binary = base64.b64encode(b"ok").decode()
    good = {
        "QueueUrl": URL,
        "MessageBody": "x",
        "MessageAttributes": {"a": {"DataType": "Binary", "BinaryValue": binary}},
    }
    assert (await send(api, raw("AmazonSQS.SendMessage", orjson.dumps(good)))).status == 200


async def test_the_target_router_shares_post_slash_between_apis(api: SqsApi) -> None:
    async def ssm(request: Request, match: re.Match[str], rid: str) -> Response:
        return Response(200, b'{"from": "ssm"}')

    router = TargetRouter({"AmazonSSM.": ssm, "AmazonSQS.": api.handle})
    [(_, pattern, handle)] = router.routes()
    match = pattern.fullmatch("/")
    assert match is not None

    async def post(headers: dict[str, str], body: bytes = b"{}") -> Response:
        return await handle(Request("POST", "/", "", headers, body), match, RID)

    assert (await post({"x-amz-target": "AmazonSSM.GetParameter"})).body == b'{"from": "ssm"}'
    listed = await post({"x-amz-target": "AmazonSQS.ListQueues"})
    assert listed.status == 200 and listed.content_type == JSON_1_0
    unknown = await post({"x-amz-target": "AmazonS3.GetObject"})
    assert unknown.status == 400
    assert orjson.loads(unknown.body)["__type"] == "UnknownOperationException"
    query = await post({}, b"Action=ListQueues&Version=2012-11-05")
    assert b"Query-protocol" in query.body
