from __future__ import annotations

import base64
import hashlib

import pytest

from lamina.core.errors import InvalidParameterValueException
from lamina.core.models import Account, FunctionConfig, LayerVersion
from lamina.wire import lambda_api

ACCOUNT = Account(region="eu-west-1", account_id="123456789012")
ARN = "arn:aws:lambda:eu-west-1:123456789012:function"
ZIP = b"PK\x05\x06" + b"\x00" * 18  # an empty zip archive
ZIP_SHA = hashlib.sha256(ZIP).hexdigest()


def _config(**changes: object) -> FunctionConfig:
    values: dict[str, object] = {
        "name": "app-dev-api",
        "runtime": "python3.12",
        "handler": "app.handler",
        "code_sha256": ZIP_SHA,
        "code_size": len(ZIP),
        "memory_size": 512,
        "timeout": 6,
        "environment": {"APP_ENV": "dev"},
        "layers": ("arn:aws:lambda:eu-west-1:123456789012:layer:php:3",),
        "description": "the API",
        "revision_id": "rev-1",
        "last_modified": "2024-01-02T03:04:05.000+0000",
    }
    values.update(changes)
    return FunctionConfig(**values)  # type: ignore[arg-type]


# parse_function_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("app-dev-api", ("app-dev-api", None)),
        ("app-dev-api:live", ("app-dev-api", "live")),
        ("app-dev-api:7", ("app-dev-api", "7")),
        ("app-dev-api:$LATEST", ("app-dev-api", "$LATEST")),
        (f"{ARN}:app-dev-api", ("app-dev-api", None)),
        (f"{ARN}:app-dev-api:live", ("app-dev-api", "live")),
        ("123456789012:function:app-dev-api", ("app-dev-api", None)),
        ("123456789012:function:app-dev-api:3", ("app-dev-api", "3")),
        ("app-dev-api%3Alive", ("app-dev-api", "live")),
        ("app-dev-api%3alive", ("app-dev-api", "live")),
        ("arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Aapi", ("api", None)),
        ("app-dev-api%3A%24LATEST", ("app-dev-api", "$LATEST")),
    ],
)
def test_parse_function_name_forms(raw: str, expected: tuple[str, str | None]) -> None:
    assert lambda_api.parse_function_name(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "arn:aws:lambda:eu-west-1:123456789012:function",
        f"{ARN}:api:live:extra",
        "arn:aws:lambda:eu-west-1:123456789012:layer:php:3",
        "arn:aws:s3:::bucket",
    ],
)
def test_parse_function_name_refuses_other_arns(raw: str) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        lambda_api.parse_function_name(raw)
    assert caught.value.message == f"FunctionName = {raw!r}: not a function ARN"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "raw", ["api:", "a:b:c", "api:live:extra", "123456789012:function:api:q:x", "api%3A"]
)
def test_parse_function_name_refuses_malformed_names(raw: str) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        lambda_api.parse_function_name(raw)
    decoded = raw.replace("%3A", ":")
    assert caught.value.message == (
        f"FunctionName = {decoded!r}: must be a name, name:qualifier or a function ARN"
    )


# function_configuration


def test_code_sha256_is_base64_of_the_raw_digest() -> None:
    expected = base64.b64encode(hashlib.sha256(ZIP).digest()).decode()
    assert lambda_api.code_sha256_b64(ZIP_SHA) == expected
    assert lambda_api.code_sha256_b64(hashlib.sha256(b"").hexdigest()) == (
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    )


def test_function_configuration_of_latest() -> None:
    body = lambda_api.function_configuration(_config(), ACCOUNT)
    assert body == {
        "FunctionName": "app-dev-api",
        "FunctionArn": f"{ARN}:app-dev-api",
        "Runtime": "python3.12",
        "Role": "arn:aws:iam::123456789012:role/lamina-execution",
        "Handler": "app.handler",
        "CodeSize": 22,
        "Description": "the API",
        "Timeout": 6,
        "MemorySize": 512,
        "LastModified": "2024-01-02T03:04:05.000+0000",
        "CodeSha256": base64.b64encode(hashlib.sha256(ZIP).digest()).decode(),
        "Version": "$LATEST",
        "Environment": {"Variables": {"APP_ENV": "dev"}},
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": "rev-1",
        "Layers": [{"Arn": "arn:aws:lambda:eu-west-1:123456789012:layer:php:3"}],
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
    }


def test_function_configuration_of_a_published_version_has_a_qualified_arn() -> None:
    body = lambda_api.function_configuration(_config(version="4"), ACCOUNT)
    assert body["FunctionArn"] == f"{ARN}:app-dev-api:4"
    assert body["Version"] == "4"


def test_function_configuration_environment_is_a_copy() -> None:
    config = _config()
    body = lambda_api.function_configuration(config, ACCOUNT)
    body["Environment"]["Variables"]["NEW"] = "x"
    assert config.environment == {"APP_ENV": "dev"}


def test_get_function_includes_concurrency_only_when_reserved() -> None:
    body = lambda_api.get_function(_config(), ACCOUNT, "http://h/code")
    assert body["Code"] == {"RepositoryType": "Lamina", "Location": "http://h/code"}
    assert "Concurrency" not in body
    body = lambda_api.get_function(_config(reserved_concurrency=0), ACCOUNT, "http://h/code")
    assert body["Concurrency"] == {"ReservedConcurrentExecutions": 0}


def test_layer_version() -> None:
    layer = LayerVersion("php", 3, ZIP_SHA, 22, "PHP 8.4", ("provided.al2023",), "2024-01-01")
    body = lambda_api.layer_version(layer, ACCOUNT, "http://h/layer")
    assert body == {
        "Content": {
            "Location": "http://h/layer",
            "CodeSha256": lambda_api.code_sha256_b64(ZIP_SHA),
            "CodeSize": 22,
        },
        "LayerArn": "arn:aws:lambda:eu-west-1:123456789012:layer:php",
        "LayerVersionArn": "arn:aws:lambda:eu-west-1:123456789012:layer:php:3",
        "Description": "PHP 8.4",
        "CreatedDate": "2024-01-01",
        "Version": 3,
        "CompatibleRuntimes": ["provided.al2023"],
    }


# function_settings


def test_function_settings_maps_members_and_drops_others() -> None:
    body = {
        "FunctionName": "api",
        "Runtime": "python3.12",
        "Handler": "app.handler",
        "MemorySize": 256,
        "Timeout": 10,
        "Layers": ["arn:l:1"],
        "Description": "d",
        "Role": "arn:aws:iam::1:role/r",
        "Code": {"ZipFile": "UEsFBg=="},
        "Environment": {"Variables": {"A1": "b"}},
    }
    assert lambda_api.function_settings(body) == {
        "runtime": "python3.12",
        "handler": "app.handler",
        "memory_size": 256,
        "timeout": 10,
        "layers": ["arn:l:1"],
        "description": "d",
        "environment": {"A1": "b"},
    }


def test_function_settings_without_members_is_empty() -> None:
    assert lambda_api.function_settings({}) == {}
    assert lambda_api.function_settings({"Publish": True}) == {}


@pytest.mark.parametrize("environment", [None, {}, {"Variables": None}, {"Variables": {}}])
def test_function_settings_empty_environment_clears_variables(environment: object) -> None:
    assert lambda_api.function_settings({"Environment": environment}) == {"environment": {}}


def test_function_settings_passes_values_through_unvalidated() -> None:
    # Validation is the service's job; the wire layer only renames.
    assert lambda_api.function_settings({"Timeout": "soon"}) == {"timeout": "soon"}


@pytest.mark.parametrize("environment", [["A=b"], "A=b"])
def test_function_settings_refuses_a_malformed_environment(environment: object) -> None:
    with pytest.raises(InvalidParameterValueException, match="Environment must be"):
        lambda_api.function_settings({"Environment": environment})


# zip_file


def test_zip_file_decodes_base64() -> None:
    assert lambda_api.zip_file({"ZipFile": base64.b64encode(ZIP).decode()}) == ZIP


def test_zip_file_with_another_member_name() -> None:
    encoded = base64.b64encode(ZIP).decode()
    assert lambda_api.zip_file({"ZipFile": encoded}, member="ZipFile") == ZIP
    assert lambda_api.zip_file({"Content": encoded}, member="Content") == ZIP


@pytest.mark.parametrize("body", [{}, {"ZipFile": ""}, {"ZipFile": None}, {"ZipFile": 12}])
def test_zip_file_is_required(body: dict[str, object]) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        lambda_api.zip_file(body)
    assert caught.value.message == "ZipFile is required (base64 of a zip file)"


def test_zip_file_required_names_the_member() -> None:
    with pytest.raises(InvalidParameterValueException, match=r"^Content is required"):
        lambda_api.zip_file({}, member="Content")


@pytest.mark.parametrize(
    "body", [{"S3Bucket": "b", "S3Key": "k"}, {"ImageUri": "123.dkr.ecr/img:1"}]
)
def test_zip_file_refuses_s3_and_images(body: dict[str, object]) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        lambda_api.zip_file(body)
    assert caught.value.message == (
        "Code: only ZipFile uploads are supported (no S3 or container images)"
    )


@pytest.mark.parametrize("value", ["not base64!", "UEsFBg=", "UEs\nFBg=="])
def test_zip_file_must_be_base64(value: str) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        lambda_api.zip_file({"ZipFile": value})
    assert caught.value.message == "ZipFile must be base64"
