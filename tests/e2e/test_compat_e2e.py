"""Clients and runtimes we did not write: boto3, the aws CLI, AWS's own runtime client."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from tests.e2e.harness import CREDENTIALS, LaminaServer, create_function, invoke, make_zip

pytestmark = pytest.mark.e2e

AWSLAMBDARIC_BOOTSTRAP = f"""#!/bin/sh
exec {sys.executable} -m awslambdaric "$_HANDLER"
"""

HANDLER = """
import os

def handler(event, context):
    print("handled", event)
    if event.get("fail"):
        raise RuntimeError("failed on purpose")
    return {"echo": event, "arn": context.invoked_function_arn, "version": context.function_version}
"""


def test_awslambdaric_runs_unmodified_as_a_custom_runtime(lamina: LaminaServer) -> None:
    create_function(
        lamina,
        "ric",
        {"bootstrap": AWSLAMBDARIC_BOOTSTRAP, "app.py": HANDLER},
        runtime="provided.al2023",
        executable=("bootstrap",),
    )
    body = json.loads(invoke(lamina, "ric", {"x": 1})["Body"])
    assert body == {
        "echo": {"x": 1},
        "arn": "arn:aws:lambda:us-east-1:000000000000:function:ric",
        "version": "$LATEST",
    }
    failed = invoke(lamina, "ric", {"fail": True}, LogType="Tail")
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Body"])
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "failed on purpose"
    assert (
        "[ERROR] RuntimeError: failed on purpose" in base64.b64decode(failed["LogResult"]).decode()
    )


def _client_error(call) -> dict:  # type: ignore[no-untyped-def, type-arg]
    with pytest.raises(ClientError) as info:
        call()
    return dict(info.value.response)


def test_invoke_api_errors_are_what_boto3_expects(lamina: LaminaServer) -> None:
    client = lamina.client()
    missing = _client_error(lambda: client.invoke(FunctionName="nope", Payload=b"{}"))
    assert missing["Error"]["Code"] == "ResourceNotFoundException"
    assert missing["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "function:nope" in missing["Error"]["Message"]

    create_function(lamina, "ok", {"app.py": HANDLER})
    bad_json = _client_error(lambda: client.invoke(FunctionName="ok", Payload=b"{not json"))
    assert bad_json["Error"]["Code"] == "InvalidRequestContentException"
    assert bad_json["ResponseMetadata"]["HTTPStatusCode"] == 400

    too_big = json.dumps({"x": "y" * (6 * 1024 * 1024)}).encode()
    large = _client_error(lambda: client.invoke(FunctionName="ok", Payload=too_big))
    assert large["Error"]["Code"] == "RequestTooLargeException"
    assert large["ResponseMetadata"]["HTTPStatusCode"] == 413

    qualifier = _client_error(lambda: client.invoke(FunctionName="ok", Qualifier="7"))
    assert qualifier["Error"]["Code"] == "ResourceNotFoundException"

    by_arn = client.invoke(
        FunctionName="arn:aws:lambda:us-east-1:000000000000:function:ok:$LATEST", Payload=b"{}"
    )
    assert json.loads(by_arn["Payload"].read())["echo"] == {}

    zipped = make_zip({"app.py": HANDLER})
    bad_name = _client_error(
        lambda: client.create_function(
            FunctionName="bad name!",
            Runtime="python3.11",
            Handler="app.handler",
            Role="r",
            Code={"ZipFile": zipped},
        )
    )
    assert bad_name["Error"]["Code"] == "InvalidParameterValueException"
    assert "bad name!" in bad_name["Error"]["Message"]
    reserved = _client_error(
        lambda: client.create_function(
            FunctionName="reserved",
            Runtime="python3.11",
            Handler="app.handler",
            Role="r",
            Code={"ZipFile": zipped},
            Environment={"Variables": {"AWS_REGION": "x"}},
        )
    )
    assert reserved["Error"]["Code"] == "InvalidParameterValueException"
    assert "AWS_REGION" in reserved["Error"]["Message"]
    bad_zip = _client_error(
        lambda: client.create_function(
            FunctionName="badzip",
            Runtime="python3.11",
            Handler="app.handler",
            Role="r",
            Code={"ZipFile": b"not a zip"},
        )
    )
    assert bad_zip["Error"]["Code"] == "InvalidZipFileException"
    # Nothing half-created by the refused requests.
    names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
    assert names == ["ok"]
    duplicate = _client_error(
        lambda: client.create_function(
            FunctionName="ok",
            Runtime="python3.11",
            Handler="app.handler",
            Role="r",
            Code={"ZipFile": zipped},
        )
    )
    assert duplicate["Error"]["Code"] == "ResourceConflictException"
    client.delete_function(FunctionName="ok")
    assert client.list_functions()["Functions"] == []


def test_the_aws_cli_invokes_functions(lamina: LaminaServer, tmp_path: Path) -> None:
    aws = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
    if aws is None:
        pytest.fail("the aws CLI is a test dependency (pip install awscli)")
    create_function(lamina, "cli", {"app.py": HANDLER})
    out = tmp_path / "out.json"
    env = {**os.environ, **CREDENTIALS}
    result = subprocess.run(
        [
            aws,
            "lambda",
            "invoke",
            "--endpoint-url",
            lamina.control_url,
            "--function-name",
            "cli",
            "--payload",
            '{"from": "cli"}',
            "--log-type",
            "Tail",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    meta = json.loads(result.stdout)
    assert meta["StatusCode"] == 200
    assert meta["ExecutedVersion"] == "$LATEST"
    assert "START RequestId" in base64.b64decode(meta["LogResult"]).decode()
    assert json.loads(out.read_text())["echo"] == {"from": "cli"}
