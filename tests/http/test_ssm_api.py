"""The SSM API in-process: requests serialised and answers parsed by botocore itself (the
code boto3 and the aws CLI run), plus raw requests botocore would never send."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.parsers
import botocore.serialize
import botocore.session
import orjson
import pytest

from lamina.core.clock import FakeClock
from lamina.core.models import Account
from lamina.core.params import SecretUnavailable
from lamina.http.server import Request, Response
from lamina.http.ssm_api import SsmApi
from lamina.services.params import ParameterService
from lamina.services.secrets import AesGcmCipher
from lamina.store.params import SqliteParameterStore
from lamina.store.sqlite import SqliteStore

MODEL = botocore.session.get_session().get_service_model("ssm")
JSON_1_1 = "application/x-amz-json-1.1"
RID = "11111111-2222-3333-4444-555555555555"
T0 = 1_714_557_600.5  # 2024-05-01T10:00:00.5Z


@pytest.fixture
def api(tmp_path: Path) -> Iterator[SsmApi]:
    sqlite = SqliteStore(tmp_path / "lamina.db")
    service = ParameterService(
        SqliteParameterStore(sqlite), AesGcmCipher.for_home(tmp_path), FakeClock(start=T0)
    )
    yield SsmApi(service, Account("eu-west-1", "123456789012"))
    sqlite.close()


async def send(api: SsmApi, request: Request) -> Response:
    [(method, pattern, handler)] = api.routes()
    match = pattern.fullmatch(request.path)
    assert method == request.method and match is not None
    return await handler(request, match, RID)


async def raw(api: SsmApi, target: str | None, body: bytes) -> tuple[Response, Any]:
    headers = {"content-type": JSON_1_1}
    if target is not None:
        headers["x-amz-target"] = target
    response = await send(api, Request("POST", "/", "", headers, body))
    return response, orjson.loads(response.body)


async def call(api: SsmApi, operation: str, **params: Any) -> dict[str, Any]:
    """Serialise as botocore does, answer in-process, parse as botocore does."""
    model = MODEL.operation_model(operation)
    serialised = botocore.serialize.create_serializer("json").serialize_to_request(params, model)
    headers = {k.lower(): v for k, v in serialised["headers"].items()}
    request = Request("POST", serialised["url_path"], "", headers, serialised["body"])
    response = await send(api, request)
    assert response.content_type == JSON_1_1
    assert ("x-amzn-RequestId", RID) in response.headers
    parsed: dict[str, Any] = botocore.parsers.create_parser("json").parse(
        {
            "status_code": response.status,
            "headers": dict(response.headers) | {"content-type": JSON_1_1},
            "body": response.body,
        },
        model.output_shape,
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


async def test_put_and_get_as_botocore_sees_them(api: SsmApi) -> None:
    assert await call(api, "PutParameter", Name="/app/url", Value="http://a", Type="String") == {
        "Version": 1,
        "Tier": "Standard",
    }
    answer = await call(api, "GetParameter", Name="/app/url")
    assert answer["Parameter"] == {
        "Name": "/app/url",
        "Type": "String",
        "Value": "http://a",
        "Version": 1,
        "LastModifiedDate": datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC).astimezone(),
        "ARN": "arn:aws:ssm:eu-west-1:123456789012:parameter/app/url",
        "DataType": "text",
    }


async def test_errors_carry_the_code_in_type_and_are_400(api: SsmApi) -> None:
    await call(api, "PutParameter", Name="/a", Value="1", Type="String")
    duplicate = await call(api, "PutParameter", Name="/a", Value="2", Type="String")
    missing = await call(api, "GetParameter", Name="/nope")

    assert duplicate["Error"]["Code"] == "ParameterAlreadyExists"
    assert "Overwrite" in duplicate["Error"]["Message"]
    assert missing["Error"] == {
        "Code": "ParameterNotFound",
        "Message": "Parameter /nope not found.",
    }


async def test_error_response_shape(api: SsmApi) -> None:
    response, body = await raw(api, "AmazonSSM.GetParameter", b'{"Name": "/nope"}')
    assert response.status == 400
    assert response.content_type == JSON_1_1
    assert response.headers == [("x-amzn-RequestId", RID)]
    assert body == {"__type": "ParameterNotFound", "message": "Parameter /nope not found."}


async def test_secure_string_with_and_without_decryption(api: SsmApi) -> None:
    await call(api, "PutParameter", Name="/bot/token", Value="hunter2", Type="SecureString")
    hidden = (await call(api, "GetParameter", Name="/bot/token"))["Parameter"]["Value"]
    shown = await call(api, "GetParameter", Name="/bot/token", WithDecryption=True)
    assert hidden != "hunter2" and re.fullmatch(r"[A-Za-z0-9+/]+=*", hidden)
    assert shown["Parameter"]["Value"] == "hunter2"


async def test_get_parameters_reports_invalid_parameters(api: SsmApi) -> None:
    await call(api, "PutParameter", Name="/b", Value="2", Type="String")
    await call(api, "PutParameter", Name="/a", Value="1", Type="String")
    answer = await call(api, "GetParameters", Names=["/b", "/missing", "/a"])
    assert [p["Name"] for p in answer["Parameters"]] == ["/a", "/b"]
    assert answer["InvalidParameters"] == ["/missing"]
    too_many = await call(api, "GetParameters", Names=[f"/n{i}" for i in range(11)])
    assert too_many["Error"]["Code"] == "ValidationException"


async def test_by_path_pages_and_selector(api: SsmApi) -> None:
    for name in ("/app/a", "/app/b", "/app/c/d"):
        await call(api, "PutParameter", Name=name, Value=name, Type="String")
    first = await call(api, "GetParametersByPath", Path="/app", Recursive=True, MaxResults=2)
    rest = await call(
        api, "GetParametersByPath", Path="/app", Recursive=True, NextToken=first["NextToken"]
    )
    assert [p["Name"] for p in first["Parameters"] + rest["Parameters"]] == [
        "/app/a",
        "/app/b",
        "/app/c/d",
    ]
    assert "NextToken" not in rest
    selected = await call(api, "GetParameter", Name="/app/a:1")
    assert selected["Parameter"]["Selector"] == ":1"
    bad_key = await call(
        api, "GetParametersByPath", Path="/app", ParameterFilters=[{"Key": "Name", "Values": ["x"]}]
    )
    assert bad_key["Error"]["Code"] == "InvalidFilterKey"


async def test_describe_history_label_and_delete(api: SsmApi) -> None:
    await call(
        api, "PutParameter", Name="/s", Value="one", Type="SecureString", Description="token"
    )
    await call(api, "PutParameter", Name="/s", Value="two", Overwrite=True)
    labelled = await call(
        api, "LabelParameterVersion", Name="/s", ParameterVersion=1, Labels=["prod", "9x"]
    )
    assert labelled == {"InvalidLabels": ["9x"], "ParameterVersion": 1}

    [meta] = (await call(api, "DescribeParameters"))["Parameters"]
    assert {k: meta[k] for k in ("Name", "Type", "KeyId", "Description", "Version", "Tier")} == {
        "Name": "/s",
        "Type": "SecureString",
        "KeyId": "alias/aws/ssm",
        "Description": "token",
        "Version": 2,
        "Tier": "Standard",
    }
    assert "Value" not in meta
    history = (await call(api, "GetParameterHistory", Name="/s", WithDecryption=True))["Parameters"]
    assert [(h["Version"], h["Value"], h["Labels"]) for h in history] == [
        (1, "one", ["prod"]),
        (2, "two", []),
    ]
    assert await call(api, "DeleteParameters", Names=["/s", "/x"]) == {
        "DeletedParameters": ["/s"],
        "InvalidParameters": ["/x"],
    }
    gone = await call(api, "DeleteParameter", Name="/s")
    assert gone["Error"]["Code"] == "ParameterNotFound"


async def test_describe_legacy_filters(api: SsmApi) -> None:
    for name in ("/app/a", "/apx", "/other"):
        await call(api, "PutParameter", Name=name, Value="v", Type="String")
    answer = await call(api, "DescribeParameters", Filters=[{"Key": "Name", "Values": ["/ap"]}])
    assert [p["Name"] for p in answer["Parameters"]] == ["/app/a", "/apx"]
    both = await call(
        api,
        "DescribeParameters",
        Filters=[{"Key": "Name", "Values": ["/ap"]}],
        ParameterFilters=[{"Key": "Type", "Values": ["String"]}],
    )
    assert both["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize(
    ("target", "body", "code", "message"),
    [
        ("AmazonSSM.Nope", b"{}", "UnknownOperationException", "'AmazonSSM.Nope'"),
        (None, b"{}", "UnknownOperationException", "X-Amz-Target = ''"),
        ("Other.GetParameter", b"{}", "UnknownOperationException", "Other.GetParameter"),
        ("AmazonSSM.GetParameter", b"{not json", "SerializationException", "not JSON"),
        ("AmazonSSM.GetParameter", b"[]", "SerializationException", "JSON object"),
        ("AmazonSSM.GetParameter", b"{}", "ValidationException", "Value null at 'name'"),
        ("AmazonSSM.GetParameter", b'{"Name": 5}', "SerializationException", "Name: must be a"),
        (
            "AmazonSSM.PutParameter",
            b'{"Name": "/a", "Value": 918273, "Type": "String"}',
            "SerializationException",
            "Value: must be a string, not a number",
        ),
        ("AmazonSSM.GetParameters", b'{"Names": [1]}', "SerializationException", "Names"),
        (
            "AmazonSSM.GetParametersByPath",
            b'{"Path": "/a", "ParameterFilters": [{"Values": ["x"]}]}',
            "InvalidFilterKey",
            "The filter key ''",
        ),
        (
            "AmazonSSM.PutParameter",
            b'{"Name": "/a", "Value": "v", "Type": "Bad"}',
            "UnsupportedParameterType",
            "Type = 'Bad'",
        ),
        (
            "AmazonSSM.LabelParameterVersion",
            b'{"Name": "/a", "Labels": ["x"], "ParameterVersion": true}',
            "SerializationException",
            "ParameterVersion",
        ),
    ],
)
async def test_requests_botocore_would_not_send(
    api: SsmApi, target: str | None, body: bytes, code: str, message: str
) -> None:
    response, answer = await raw(api, target, body)
    assert response.status == 400
    assert answer["__type"] == code
    assert message in answer["message"]


async def test_platform_faults_are_500_internal_server_error(
    api: SsmApi, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise SecretUnavailable("SecureString /a (version 1) cannot be decrypted")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire: /secret/path")

    monkeypatch.setattr(api.params, "get", unavailable)
    response, body = await raw(api, "AmazonSSM.GetParameter", b'{"Name": "/a"}')
    assert (response.status, body["__type"]) == (500, "InternalServerError")
    assert "cannot be decrypted" in body["message"]

    monkeypatch.setattr(api.params, "get", broken)
    with caplog.at_level(logging.ERROR):
        response, body = await raw(api, "AmazonSSM.GetParameter", b'{"Name": "/a"}')
    assert (response.status, body["__type"]) == (500, "InternalServerError")
    assert body["message"] == f"Internal error (request {RID})"
    assert RID in caplog.text and "disk on fire" in caplog.text


def test_the_route_is_post_slash_only(api: SsmApi) -> None:
    [(method, pattern, _)] = api.routes()
    assert method == "POST"
    assert pattern.fullmatch("/") and not pattern.fullmatch("/2015-03-31/functions")
