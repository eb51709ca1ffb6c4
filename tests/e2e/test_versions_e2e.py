"""Versions and aliases end to end with boto3 against a real `lamina up`: publishing,
qualified invocations, a weighted alias, and the rules on deleting."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.e2e.harness import LaminaServer, create_function, invoke, make_zip

pytestmark = pytest.mark.e2e

ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"


def source(generation: int) -> dict[str, str]:
    return {
        "app.py": (
            "import os\n"
            "def handler(event, context):\n"
            f"    return {{'generation': {generation},\n"
            "            'arn': context.invoked_function_arn,\n"
            "            'version': os.environ['AWS_LAMBDA_FUNCTION_VERSION']}\n"
        )
    }


def call(lamina: LaminaServer, client: Any, **kwargs: Any) -> tuple[dict[str, Any], str]:
    response = invoke(lamina, client=client, **kwargs)
    assert "FunctionError" not in response, response["Body"]
    return json.loads(response["Body"]), response["ExecutedVersion"]


def test_versions_aliases_and_qualified_invocations(lamina: LaminaServer) -> None:
    client = lamina.client()
    create_function(lamina, "fn", source(1))
    v1 = client.publish_version(FunctionName="fn", Description="first")
    client.update_function_code(FunctionName="fn", ZipFile=make_zip(source(2)))
    v2 = client.publish_version(FunctionName="fn")
    unchanged = client.publish_version(FunctionName="fn")
    alias = client.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")

    assert (v1["Version"], v1["FunctionArn"], v1["Description"]) == ("1", f"{ARN}:1", "first")
    assert (v2["Version"], unchanged["Version"]) == ("2", "2")
    versions = client.list_versions_by_function(FunctionName="fn")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    assert alias["AliasArn"] == f"{ARN}:live"

    by_version, executed = call(lamina, client, name="fn", Qualifier="1")
    assert (by_version, executed) == (
        {"generation": 1, "arn": f"{ARN}:1", "version": "1"},
        "1",
    )
    by_alias, executed = call(lamina, client, name="fn:live")
    assert (by_alias["generation"], by_alias["arn"], executed) == (1, f"{ARN}:live", "1")
    latest, executed = call(lamina, client, name="fn", Qualifier="$LATEST")
    assert (latest["generation"], latest["version"], executed) == (2, "$LATEST", "$LATEST")
    unqualified, executed = call(lamina, client, name="fn")
    assert (unqualified["arn"], executed) == (ARN, "$LATEST")

    config = client.get_function_configuration(FunctionName="fn", Qualifier="live")
    assert (config["Version"], config["FunctionArn"]) == ("1", f"{ARN}:live")
    with pytest.raises(ClientError) as missing:
        client.invoke(FunctionName="fn", Qualifier="9", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_weighted_alias_sends_traffic_to_both_versions(lamina: LaminaServer) -> None:
    client = lamina.client()
    create_function(lamina, "fn", source(1))
    client.publish_version(FunctionName="fn")
    client.update_function_code(FunctionName="fn", ZipFile=make_zip(source(2)))
    client.publish_version(FunctionName="fn")
    client.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")

    updated = client.update_alias(
        FunctionName="fn",
        Name="live",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    served: dict[str, int] = {}
    for _ in range(200):
        body, executed = call(lamina, client, name="fn", Qualifier="live")
        assert body["version"] == executed and body["generation"] == int(executed)
        served[executed] = served.get(executed, 0) + 1

    assert updated["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    # With weight 0.5 each version missing all 200 draws has probability 2**-200.
    assert set(served) == {"1", "2"}


def test_deleting_versions_and_functions(lamina: LaminaServer) -> None:
    client = lamina.client()
    create_function(lamina, "fn", source(1))
    client.publish_version(FunctionName="fn")
    client.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")

    with pytest.raises(ClientError) as in_use:
        client.delete_function(FunctionName="fn", Qualifier="1")
    assert in_use.value.response["Error"]["Code"] == "ResourceConflictException"
    client.delete_alias(FunctionName="fn", Name="live")
    client.delete_function(FunctionName="fn", Qualifier="1")
    assert [
        v["Version"] for v in client.list_versions_by_function(FunctionName="fn")["Versions"]
    ] == ["$LATEST"]

    client.publish_version(FunctionName="fn")
    client.delete_function(FunctionName="fn")
    with pytest.raises(ClientError) as gone:
        client.get_function(FunctionName="fn", Qualifier="2")
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
