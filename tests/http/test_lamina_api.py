"""`/lamina/v1` bundles, deployments and stacks, in-process through the real ControlApi
(routing, JSON, error rendering) on the real services with a fake route table."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.services.test_async_fakes import async_invoker
from tests.services.test_deploy_fakes import Platform, bundle, function, platform, spec

from lamina.http.control_api import ControlApi
from lamina.http.lamina_api import LaminaApi
from lamina.http.server import Request, Response
from lamina.http.versions_api import VersionsApi
from lamina.wire.deployment import to_json

DATA_URL = "http://127.0.0.1:9000"


class Client:
    """Requests straight into a ControlApi, as the HTTP server would hand them over."""

    def __init__(self, p: Platform) -> None:
        self.p = p
        self.api = ControlApi(
            functions=p.functions,
            invoke=p.h.invoker,
            events=async_invoker(p.store, p.h),
            pool=p.h.pool,
            store=p.store,
            account=p.h.account,
            routers=[
                VersionsApi(versions=p.versions, functions=p.functions, account=p.h.account),
                LaminaApi(deploy=p.deploy, code=p.code, data_url=DATA_URL),
            ],
        )

    async def __call__(
        self, method: str, path: str, body: bytes | Any = b"", query: str = ""
    ) -> Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.api(Request(method, path, query, {}, raw))


def data(response: Response) -> Any:
    return json.loads(response.body)


def error_type(response: Response) -> str:
    return dict(response.headers)["x-amzn-ErrorType"]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with platform(tmp_path) as p:
        yield Client(p)


async def test_bundles_are_uploaded_under_their_sha256(client: Client) -> None:
    zip_bytes = bundle("v1")
    sha = hashlib.sha256(zip_bytes).hexdigest()

    absent = await client("HEAD", f"/lamina/v1/bundles/{sha}")
    put = await client("PUT", f"/lamina/v1/bundles/{sha}", zip_bytes)
    present = await client("HEAD", f"/lamina/v1/bundles/{sha}")

    assert (absent.status, absent.body, error_type(absent)) == (
        404,
        b"",
        "ResourceNotFoundException",
    )
    assert (put.status, data(put)) == (201, {"CodeSha256": sha, "CodeSize": len(zip_bytes)})
    assert (present.status, present.body) == (200, b"")
    assert client.p.code.has(sha)


async def test_a_bundle_whose_body_does_not_match_its_url_is_refused(client: Client) -> None:
    wrong = "0" * 64
    response = await client("PUT", f"/lamina/v1/bundles/{wrong}", bundle("v1"))
    malformed = await client("PUT", "/lamina/v1/bundles/nope", bundle("v1"))
    head = await client("HEAD", "/lamina/v1/bundles/..%2F..")

    assert (response.status, error_type(response)) == (400, "InvalidParameterValueException")
    assert "SHA-256 is" in data(response)["Message"]
    assert malformed.status == 400
    assert (head.status, head.body) == (404, b"")
    assert not client.p.code.has(wrong)


async def _deploy(client: Client, result: str, **fields: Any) -> Response:
    sha = client.p.upload(bundle(result))
    route = {"method": "GET", "path": "/hello"}
    document = to_json(spec(function("api", sha, routes=[route], **fields)))
    return await client("POST", "/lamina/v1/deployments", document)


async def test_a_deployment_answers_with_functions_and_endpoints(client: Client) -> None:
    response = await _deploy(client, "v1")

    assert response.status == 201
    deployment = data(response)["deployment"]
    assert deployment["created"].endswith("Z")
    del deployment["created"]
    assert deployment == {
        "id": 1,
        "service": "app",
        "stage": "dev",
        "region": "us-east-1",
        "functions": [{"key": "api", "name": "app-dev-api", "version": "1", "changed": True}],
        "endpoints": [
            {
                "kind": "httpApi",
                "method": "GET",
                "path": "/hello",
                "url": f"{DATA_URL}/app/dev/hello",
            }
        ],
    }


async def test_a_refused_deployment_is_a_400_naming_the_problems(client: Client) -> None:
    bad = await _deploy(client, "v1", timeout=0)
    malformed = await client("POST", "/lamina/v1/deployments", {"service": "app"})
    not_json = await client("POST", "/lamina/v1/deployments", b"{")

    assert (bad.status, error_type(bad)) == (400, "InvalidParameterValueException")
    assert "functions.api: Timeout = 0" in data(bad)["Message"]
    assert (malformed.status, error_type(malformed)) == (400, "InvalidParameterValueException")
    assert "deployment document" in data(malformed)["Message"]
    assert (not_json.status, error_type(not_json)) == (400, "InvalidRequestContentException")


async def test_stacks_deployments_rollback_and_remove(client: Client) -> None:
    await _deploy(client, "v1")
    await _deploy(client, "v2")

    stacks = data(await client("GET", "/lamina/v1/stacks"))["stacks"]
    stack = data(await client("GET", "/lamina/v1/stacks/app/dev"))
    history = data(await client("GET", "/lamina/v1/stacks/app/dev/deployments"))["deployments"]
    previous = await client("POST", "/lamina/v1/stacks/app/dev/rollback", {})
    forward = await client("POST", "/lamina/v1/stacks/app/dev/rollback", {"deployment": 2})

    assert [(s["service"], s["stage"], s["deployment_id"]) for s in stacks] == [("app", "dev", 2)]
    assert (stack["service"], stack["stage"], stack["region"]) == ("app", "dev", "us-east-1")
    assert stack["deployment"]["id"] == 2
    assert stack["deployment"]["endpoints"][0]["url"] == f"{DATA_URL}/app/dev/hello"
    assert [(d["id"], d["functions"][0]["version"]) for d in history] == [(2, "2"), (1, "1")]
    assert previous.status == 201
    assert data(previous)["deployment"]["id"] == 1
    assert data(previous)["deployment"]["functions"][0]["version"] == "1"
    assert (forward.status, data(forward)["deployment"]["id"]) == (201, 2)

    removed = await client("DELETE", "/lamina/v1/stacks/app/dev")
    gone = await client("GET", "/lamina/v1/stacks/app/dev")

    assert (removed.status, removed.body) == (204, b"")
    assert (gone.status, error_type(gone)) == (404, "ResourceNotFoundException")
    assert data(await client("GET", "/lamina/v1/stacks"))["stacks"] == []


async def test_rollback_errors(client: Client) -> None:
    await _deploy(client, "v1")

    missing = await client("POST", "/lamina/v1/stacks/app/prod/rollback", {})
    no_previous = await client("POST", "/lamina/v1/stacks/app/dev/rollback", {})
    bad = await client("POST", "/lamina/v1/stacks/app/dev/rollback", {"deployment": "1"})

    assert (missing.status, error_type(missing)) == (404, "ResourceNotFoundException")
    assert (no_previous.status, error_type(no_previous)) == (404, "ResourceNotFoundException")
    assert (bad.status, error_type(bad)) == (400, "InvalidParameterValueException")
