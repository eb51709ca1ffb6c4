"""The SSM Parameter Store API of a real `lamina up`, spoken to by clients we did not write:
boto3 and the aws CLI."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.e2e.harness import CREDENTIALS, LaminaServer

pytestmark = pytest.mark.e2e

SECRET = "7391:AAF-telegram-bot-token"


def ssm_client(server: LaminaServer) -> Any:
    return boto3.client(
        "ssm",
        endpoint_url=server.control_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_boto3_puts_and_gets_every_type(lamina: LaminaServer) -> None:
    ssm = ssm_client(lamina)

    assert ssm.put_parameter(Name="/shop/url", Value="https://shop", Type="String")["Version"] == 1
    ssm.put_parameter(Name="/shop/hosts", Value="a.example,b.example", Type="StringList")
    ssm.put_parameter(Name="/shop/bot-token", Value=SECRET, Type="SecureString")

    url = ssm.get_parameter(Name="/shop/url")["Parameter"]
    assert (url["Value"], url["Type"], url["Version"]) == ("https://shop", "String", 1)
    assert url["ARN"] == "arn:aws:ssm:us-east-1:000000000000:parameter/shop/url"
    assert ssm.get_parameter(Name="/shop/hosts")["Parameter"]["Value"] == "a.example,b.example"
    hidden = ssm.get_parameter(Name="/shop/bot-token")["Parameter"]
    assert hidden["Type"] == "SecureString" and hidden["Value"] != SECRET
    shown = ssm.get_parameter(Name="/shop/bot-token", WithDecryption=True)["Parameter"]
    assert shown["Value"] == SECRET

    # The database never holds the plaintext (nor does its write-ahead log).
    for db_file in lamina.home.glob("lamina.db*"):
        assert SECRET.encode() not in db_file.read_bytes()
    key_file = lamina.home / "keys" / "parameters.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700


def test_boto3_error_codes_and_versions(lamina: LaminaServer) -> None:
    ssm = ssm_client(lamina)
    ssm.put_parameter(Name="/app/level", Value="1", Type="String")

    with pytest.raises(ClientError) as exists:
        ssm.put_parameter(Name="/app/level", Value="2", Type="String")
    assert error_code(exists) == "ParameterAlreadyExists"
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name="/app/missing")

    assert ssm.put_parameter(Name="/app/level", Value="2", Overwrite=True)["Version"] == 2
    assert ssm.get_parameter(Name="/app/level")["Parameter"]["Value"] == "2"
    assert ssm.get_parameter(Name="/app/level:1")["Parameter"]["Value"] == "1"
    history = ssm.get_parameter_history(Name="/app/level")["Parameters"]
    assert [h["Version"] for h in history] == [1, 2]


def test_bref_style_get_parameters_with_invalid_parameters(lamina: LaminaServer) -> None:
    ssm = ssm_client(lamina)
    ssm.put_parameter(Name="/bref/a", Value="1", Type="String")
    ssm.put_parameter(Name="/bref/b", Value=SECRET, Type="SecureString")

    answer = ssm.get_parameters(Names=["/bref/b", "/bref/a", "/bref/nope"], WithDecryption=True)

    assert [(p["Name"], p["Value"]) for p in answer["Parameters"]] == [
        ("/bref/a", "1"),
        ("/bref/b", SECRET),
    ]
    assert answer["InvalidParameters"] == ["/bref/nope"]


def test_by_path_recursive_with_pagination(lamina: LaminaServer) -> None:
    ssm = ssm_client(lamina)
    names = [f"/tree/{i:02d}" for i in range(12)] + ["/tree/deep/x", "/treetop"]
    for name in names:
        ssm.put_parameter(Name=name, Value=name, Type="String")

    first = ssm.get_parameters_by_path(Path="/tree", Recursive=True, MaxResults=5)
    assert len(first["Parameters"]) == 5 and "NextToken" in first
    pages = ssm.get_paginator("get_parameters_by_path").paginate(
        Path="/tree", Recursive=True, PaginationConfig={"PageSize": 5}
    )
    found = [p["Name"] for page in pages for p in page["Parameters"]]
    assert found == sorted(names[:-1])
    one_level = ssm.get_parameters_by_path(Path="/tree/")["Parameters"]
    assert "/tree/deep/x" not in [p["Name"] for p in one_level]


def test_the_aws_cli_puts_and_decrypts(lamina: LaminaServer) -> None:
    aws = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
    if aws is None:
        pytest.fail("the aws CLI is a test dependency (pip install awscli)")
    env = {**os.environ, **CREDENTIALS}

    def run(*args: str) -> Any:
        result = subprocess.run(
            [aws, "ssm", *args, "--endpoint-url", lamina.control_url, "--output", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    put = run("put-parameter", "--name", "/cli/token", "--value", SECRET, "--type", "SecureString")
    assert put["Version"] == 1
    got = run("get-parameter", "--name", "/cli/token", "--with-decryption")
    assert got["Parameter"]["Value"] == SECRET
    listed = run("get-parameters-by-path", "--path", "/cli")
    assert [p["Name"] for p in listed["Parameters"]] == ["/cli/token"]

    missing = subprocess.run(
        [aws, "ssm", "get-parameter", "--name", "/cli/nope", "--endpoint-url", lamina.control_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert missing.returncode != 0
    assert "(ParameterNotFound)" in missing.stderr
