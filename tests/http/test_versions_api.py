"""Lambda's version and alias routes and the qualified GetFunction/DeleteFunction, in-process
through the real ControlApi, in the shapes boto3 reads."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.http.test_lamina_api import Client, data, error_type
from tests.services.test_deploy_fakes import bundle, platform

FN = "/2015-03-31/functions/fn"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with platform(tmp_path) as p:
        p.functions.create("fn", bundle(1), {"runtime": "python3.12", "handler": "app.handler"})
        yield Client(p)


async def test_publish_version_and_list_versions(client: Client) -> None:
    published = await client("POST", f"{FN}/versions", {"Description": "first"})
    again = await client("POST", f"{FN}/versions", {})
    client.p.functions.update_code("fn", bundle(2))
    second = await client("POST", f"{FN}/versions", {})
    listed = await client("GET", f"{FN}/versions")
    paged = await client("GET", f"{FN}/versions", query="MaxItems=2")
    rest = await client("GET", f"{FN}/versions", query=f"Marker={data(paged)['NextMarker']}")

    assert published.status == 201
    body = data(published)
    assert (body["Version"], body["FunctionArn"], body["Description"]) == ("1", f"{ARN}:1", "first")
    assert (again.status, data(again)["Version"]) == (201, "1")
    assert data(second)["Version"] == "2"
    assert [v["Version"] for v in data(listed)["Versions"]] == ["$LATEST", "1", "2"]
    assert "NextMarker" not in data(listed)
    assert [v["Version"] for v in data(paged)["Versions"]] == ["$LATEST", "1"]
    assert [v["Version"] for v in data(rest)["Versions"]] == ["2"]


async def test_publish_version_checks_code_sha256(client: Client) -> None:
    sha = client.p.functions.get("fn").code_sha256
    good = base64.b64encode(bytes.fromhex(sha)).decode()
    wrong = base64.b64encode(b"\0" * 32).decode()

    ok = await client("POST", f"{FN}/versions", {"CodeSha256": good})
    refused = await client("POST", f"{FN}/versions", {"CodeSha256": wrong})
    garbage = await client("POST", f"{FN}/versions", {"CodeSha256": "%%"})
    missing = await client("POST", "/2015-03-31/functions/nope/versions", {})

    assert ok.status == 201
    assert (refused.status, error_type(refused)) == (400, "InvalidParameterValueException")
    assert garbage.status == 400
    assert (missing.status, error_type(missing)) == (404, "ResourceNotFoundException")


async def test_alias_lifecycle(client: Client) -> None:
    await client("POST", f"{FN}/versions", {})
    client.p.functions.update_code("fn", bundle(2))
    await client("POST", f"{FN}/versions", {})

    created = await client(
        "POST", f"{FN}/aliases", {"Name": "live", "FunctionVersion": "1", "Description": "d"}
    )
    duplicate = await client("POST", f"{FN}/aliases", {"Name": "live", "FunctionVersion": "1"})
    weights = {"RoutingConfig": {"AdditionalVersionWeights": {"2": 0.5}}}
    updated = await client("PUT", f"{FN}/aliases/live", weights)
    fetched = await client("GET", f"{FN}/aliases/live")
    listed = await client("GET", f"{FN}/aliases", query="FunctionVersion=2")
    deleted = await client("DELETE", f"{FN}/aliases/live")
    missing = await client("GET", f"{FN}/aliases/live")

    assert created.status == 201
    assert data(created) == {
        "AliasArn": f"{ARN}:live",
        "Name": "live",
        "FunctionVersion": "1",
        "Description": "d",
        "RevisionId": data(created)["RevisionId"],
    }
    assert (duplicate.status, error_type(duplicate)) == (409, "ResourceConflictException")
    assert data(updated)["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    assert data(updated)["Description"] == "d"
    assert data(fetched) == data(updated)
    assert [a["Name"] for a in data(listed)["Aliases"]] == ["live"]
    assert (deleted.status, deleted.body) == (204, b"")
    assert (missing.status, error_type(missing)) == (404, "ResourceNotFoundException")


async def test_bad_aliases_are_400(client: Client) -> None:
    numeric = await client("POST", f"{FN}/aliases", {"Name": "42", "FunctionVersion": "$LATEST"})
    routing = await client(
        "POST",
        f"{FN}/aliases",
        {"Name": "x", "FunctionVersion": "$LATEST", "RoutingConfig": "half"},
    )
    for response in (numeric, routing):
        assert (response.status, error_type(response)) == (400, "InvalidParameterValueException")


async def test_get_function_takes_a_qualifier(client: Client) -> None:
    await client("POST", f"{FN}/versions", {})
    client.p.functions.update_configuration("fn", {"timeout": 9})
    await client("POST", f"{FN}/aliases", {"Name": "live", "FunctionVersion": "1"})

    by_query = await client("GET", FN, query="Qualifier=1")
    by_suffix = await client("GET", "/2015-03-31/functions/fn%3Alive/configuration")
    latest = await client("GET", f"{FN}/configuration")
    clash = await client("GET", "/2015-03-31/functions/fn%3A1", query="Qualifier=2")
    missing = await client("GET", f"{FN}/configuration", query="Qualifier=7")

    assert data(by_query)["Configuration"]["Version"] == "1"
    assert data(by_query)["Configuration"]["Timeout"] == 3
    assert (data(by_suffix)["Version"], data(by_suffix)["FunctionArn"]) == ("1", f"{ARN}:live")
    assert (data(latest)["Version"], data(latest)["Timeout"]) == ("$LATEST", 9)
    assert clash.status == 400
    assert (missing.status, error_type(missing)) == (404, "ResourceNotFoundException")
    assert f"{ARN}:7" in data(missing)["Message"]


async def test_delete_function_with_a_qualifier_deletes_one_version(client: Client) -> None:
    await client("POST", f"{FN}/versions", {})
    client.p.functions.update_code("fn", bundle(2))
    await client("POST", f"{FN}/versions", {})
    await client("POST", f"{FN}/aliases", {"Name": "live", "FunctionVersion": "2"})

    in_use = await client("DELETE", FN, query="Qualifier=2")
    deleted = await client("DELETE", FN, query="Qualifier=1")
    versions = data(await client("GET", f"{FN}/versions"))["Versions"]
    everything = await client("DELETE", FN)

    assert (in_use.status, error_type(in_use)) == (409, "ResourceConflictException")
    assert deleted.status == 204
    assert [v["Version"] for v in versions] == ["$LATEST", "2"]
    assert everything.status == 204
    assert (await client("GET", f"{FN}/aliases/live")).status == 404
