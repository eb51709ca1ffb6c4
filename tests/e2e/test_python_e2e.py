"""A Python function through the whole platform: deploy, invoke, context, env, logs, layers."""

from __future__ import annotations

import base64
import json
import re

import pytest
from tests.e2e.harness import LaminaServer, create_function, invoke, make_zip, wait_until

pytestmark = pytest.mark.e2e

ECHO = """
import os

def handler(event, context):
    print("got", event)
    return {
        "event": event,
        "pid": os.getpid(),
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "env": {k: v for k, v in os.environ.items()},
        "cwd": os.getcwd(),
    }
"""


def test_invoke_returns_the_result_with_lambda_context_and_environment(
    lamina: LaminaServer,
) -> None:
    create_function(
        lamina,
        "echo",
        {"app.py": ECHO},
        MemorySize=256,
        Timeout=10,
        Environment={"Variables": {"GREETING": "hello"}},
    )
    response = invoke(lamina, "echo", {"a": 1})
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    body = json.loads(response["Body"])
    assert body["event"] == {"a": 1}
    assert body["function_name"] == "echo"
    assert body["function_version"] == "$LATEST"
    assert body["invoked_function_arn"] == "arn:aws:lambda:us-east-1:000000000000:function:echo"
    assert int(body["memory_limit_in_mb"]) == 256
    assert body["log_group_name"] == "/aws/lambda/echo"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", body["log_stream_name"])
    assert 0 < body["remaining"] <= 10_000
    env = body["env"]
    assert env["GREETING"] == "hello"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "echo"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/echo"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == body["log_stream_name"]
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["TZ"] == ":UTC"
    assert env["LAMBDA_TASK_ROOT"] == body["cwd"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert env["AWS_ENDPOINT_URL"] == lamina.control_url
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert env[key]
    # The platform's own settings never reach a function.
    assert not [k for k in env if k.startswith("LAMINA_")]


def test_warm_environment_is_reused_and_logs_have_start_end_report(lamina: LaminaServer) -> None:
    create_function(lamina, "echo", {"app.py": ECHO})
    first = json.loads(invoke(lamina, "echo", {"n": 1})["Body"])
    second = invoke(lamina, "echo", {"n": 2}, LogType="Tail")
    assert json.loads(second["Body"])["pid"] == first["pid"]
    tail = base64.b64decode(second["LogResult"]).decode()
    request_id = json.loads(second["Body"])["aws_request_id"]
    assert tail.startswith(f"START RequestId: {request_id} Version: $LATEST\n")
    assert "got {'n': 2}\n" in tail
    assert f"\nEND RequestId: {request_id}\n" in tail
    report = tail.rstrip("\n").splitlines()[-1]
    assert re.fullmatch(
        rf"REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\t",
        report,
    )

    def stored() -> list[str]:
        lines = lamina.logs("echo")
        return lines if sum(line.startswith("REPORT") for line in lines) == 2 else []

    lines = wait_until(stored)
    assert sum(line.startswith("START RequestId:") for line in lines) == 2
    assert sum(line.startswith("END RequestId:") for line in lines) == 2
    reports = [line for line in lines if line.startswith("REPORT")]
    assert "Init Duration:" in reports[0]  # the cold start
    assert "Init Duration:" not in reports[1]
    assert any(line.startswith("INIT_START Runtime Version:") for line in lines)


def test_handler_exception_is_an_unhandled_function_error(lamina: LaminaServer) -> None:
    code = "def handler(event, context):\n    raise ValueError('boom')\n"
    create_function(lamina, "fails", {"app.py": code})
    response = invoke(lamina, "fails")
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Body"])
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "boom"
    assert body["requestId"]
    assert any("raise ValueError('boom')" in frame for frame in body["stackTrace"])
    # A handled error keeps the environment warm, as on Lambda.
    assert len(lamina.environments("fails")) == 1


def test_import_error_is_an_init_error(lamina: LaminaServer) -> None:
    create_function(lamina, "broken", {"app.py": "import not_a_module\n"})
    response = invoke(lamina, "broken")
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Body"])
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"] == "Unable to import module 'app': No module named 'not_a_module'"
    create_function(lamina, "nohandler", {"app.py": "x = 1\n"})
    body = json.loads(invoke(lamina, "nohandler")["Body"])
    assert body["errorType"] == "Runtime.HandlerNotFound"


def test_layers_are_merged_in_order_and_importable(lamina: LaminaServer) -> None:
    client = lamina.client()
    first = client.publish_layer_version(
        LayerName="libs",
        Content={"ZipFile": make_zip({"python/shared.py": "NAME = 'first'\nONLY = 1\n"})},
    )
    second = client.publish_layer_version(
        LayerName="override",
        Content={"ZipFile": make_zip({"python/shared.py": "NAME = 'second'\n"})},
    )
    assert first["Version"] == 1
    code = "import shared\n\ndef handler(event, context):\n    return shared.NAME\n"
    create_function(
        lamina,
        "layered",
        {"app.py": code},
        Layers=[first["LayerVersionArn"], second["LayerVersionArn"]],
    )
    assert json.loads(invoke(lamina, "layered")["Body"]) == "second"


def test_updating_code_replaces_warm_environments(lamina: LaminaServer) -> None:
    create_function(lamina, "v", {"app.py": "def handler(e, c):\n    return 1\n"})
    assert json.loads(invoke(lamina, "v")["Body"]) == 1
    client = lamina.client()
    updated = client.update_function_code(
        FunctionName="v", ZipFile=make_zip({"app.py": "def handler(e, c):\n    return 2\n"})
    )
    assert updated["CodeSha256"]
    assert json.loads(invoke(lamina, "v")["Body"]) == 2
    client.update_function_configuration(FunctionName="v", Environment={"Variables": {"XX": "3"}})
    code = "import os\n\ndef handler(e, c):\n    return os.environ['XX']\n"
    client.update_function_code(FunctionName="v", ZipFile=make_zip({"app.py": code}))
    assert json.loads(invoke(lamina, "v")["Body"]) == "3"
    wait_until(lambda: len(lamina.environments("v")) == 1)
