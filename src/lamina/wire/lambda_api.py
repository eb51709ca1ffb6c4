"""Wire shapes of the Lambda REST API (protocol rest-json, 2015-03-31), as boto3 reads them."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote

from lamina.core.errors import InvalidParameterValueException
from lamina.core.models import Account, FunctionConfig, LayerVersion


def parse_function_name(raw: str) -> tuple[str, str | None]:
    """`name`, `name:qualifier`, `arn:aws:lambda:<region>:<acct>:function:name[:q]` or
    `<acct>:function:name[:q]` -> (name, qualifier or None). SDKs percent-encode the path."""
    text = unquote(raw)
    parts = text.split(":")
    if text.startswith("arn:"):
        if len(parts) not in (7, 8) or parts[5] != "function":
            raise InvalidParameterValueException(f"FunctionName = {text!r}: not a function ARN")
        parts = parts[6:]
    elif len(parts) >= 3 and parts[1] == "function":
        parts = parts[2:]
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2 and parts[1]:
        return parts[0], parts[1]
    raise InvalidParameterValueException(
        f"FunctionName = {text!r}: must be a name, name:qualifier or a function ARN"
    )


def code_sha256_b64(hex_sha: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_sha)).decode()


def function_configuration(config: FunctionConfig, account: Account) -> dict[str, Any]:
    qualifier = None if config.version == "$LATEST" else config.version
    return {
        "FunctionName": config.name,
        "FunctionArn": account.function_arn(config.name, qualifier),
        "Runtime": config.runtime,
        "Role": f"arn:aws:iam::{account.account_id}:role/lamina-execution",
        "Handler": config.handler,
        "CodeSize": config.code_size,
        "Description": config.description,
        "Timeout": config.timeout,
        "MemorySize": config.memory_size,
        "LastModified": config.last_modified,
        "CodeSha256": code_sha256_b64(config.code_sha256),
        "Version": config.version,
        "Environment": {"Variables": dict(config.environment)},
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": config.revision_id,
        "Layers": [{"Arn": arn} for arn in config.layers],
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
    }


def get_function(config: FunctionConfig, account: Account, location: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Configuration": function_configuration(config, account),
        "Code": {"RepositoryType": "Lamina", "Location": location},
    }
    if config.reserved_concurrency is not None:
        body["Concurrency"] = {"ReservedConcurrentExecutions": config.reserved_concurrency}
    return body


def layer_version(layer: LayerVersion, account: Account, location: str) -> dict[str, Any]:
    return {
        "Content": {
            "Location": location,
            "CodeSha256": code_sha256_b64(layer.code_sha256),
            "CodeSize": layer.code_size,
        },
        "LayerArn": account.layer_arn(layer.name),
        "LayerVersionArn": account.layer_arn(layer.name, layer.version),
        "Description": layer.description,
        "CreatedDate": layer.created_date,
        "Version": layer.version,
        "CompatibleRuntimes": list(layer.compatible_runtimes),
    }


def function_settings(body: dict[str, Any]) -> dict[str, Any]:
    """CreateFunction / UpdateFunctionConfiguration members -> FunctionService settings."""
    names = {
        "Runtime": "runtime",
        "Handler": "handler",
        "MemorySize": "memory_size",
        "Timeout": "timeout",
        "Layers": "layers",
        "Description": "description",
    }
    settings = {names[key]: value for key, value in body.items() if key in names}
    if "Environment" in body:
        environment = body["Environment"] or {}
        if not isinstance(environment, dict):
            raise InvalidParameterValueException("Environment must be {'Variables': {...}}")
        settings["environment"] = environment.get("Variables") or {}
    return settings


def zip_file(body: dict[str, Any], member: str = "ZipFile") -> bytes:
    """The base64 `ZipFile` member of CreateFunction's `Code`, UpdateFunctionCode, or
    PublishLayerVersion's `Content`."""
    value = body.get(member)
    if not isinstance(value, str) or not value:
        if "S3Bucket" in body or "ImageUri" in body:
            raise InvalidParameterValueException(
                "Code: only ZipFile uploads are supported (no S3 or container images)"
            )
        raise InvalidParameterValueException(f"{member} is required (base64 of a zip file)")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise InvalidParameterValueException(f"{member} must be base64") from None
