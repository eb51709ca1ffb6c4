"""The deploy API end to end against a real `lamina up`, driven as `lamina deploy` drives it:
upload bundles, apply a DeploymentSpec, redeploy, roll back, remove."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.e2e.harness import LaminaServer, make_zip

from lamina.core.routes import Route
from lamina.wire.deployment import DeploymentSpec, FunctionSpec, to_json

pytestmark = pytest.mark.e2e

NAME = "shop-dev-api"


def request(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def upload(lamina: LaminaServer, generation: int) -> str:
    source = (
        "def handler(event, context):\n"
        f"    return {{'statusCode': 200, 'body': 'generation {generation}'}}\n"
    )
    zip_bytes = make_zip({"app.py": source})
    sha = hashlib.sha256(zip_bytes).hexdigest()
    url = f"{lamina.control_url}/lamina/v1/bundles/{sha}"
    if request("HEAD", url)[0] == 404:
        status, body = request("PUT", url, zip_bytes)
        assert (status, json.loads(body)["CodeSha256"]) == (201, sha)
    assert request("HEAD", url)[0] == 200
    return sha


def document(sha: str) -> dict[str, Any]:
    route = Route(
        kind="httpApi", service="shop", stage="dev", function_name=NAME, method="GET", path="/hi"
    )
    spec = DeploymentSpec(
        service="shop",
        stage="dev",
        region="us-east-1",
        functions=(
            FunctionSpec(
                key="api",
                name=NAME,
                runtime="python3.12",
                handler="app.handler",
                code_sha256=sha,
                routes=(route,),
            ),
        ),
    )
    return to_json(spec)


def post(lamina: LaminaServer, path: str, payload: object) -> tuple[int, Any]:
    status, body = request("POST", f"{lamina.control_url}{path}", json.dumps(payload).encode())
    return status, json.loads(body) if body else None


def served(lamina: LaminaServer, deployment: dict[str, Any]) -> tuple[str, str]:
    """What the function answers through the Invoke API and through its route."""
    result = lamina.client().invoke(FunctionName=NAME, Payload=b"{}")
    invoked = json.loads(result["Payload"].read())["body"]
    (endpoint,) = deployment["endpoints"]
    status, body = request("GET", endpoint["url"])
    assert status == 200, body
    return invoked, body.decode()


def test_deploy_redeploy_rollback_and_remove(lamina: LaminaServer) -> None:
    status, first = post(lamina, "/lamina/v1/deployments", document(upload(lamina, 1)))
    assert status == 201, first
    first = first["deployment"]
    assert [(f["name"], f["version"], f["changed"]) for f in first["functions"]] == [
        (NAME, "1", True)
    ]
    assert served(lamina, first) == ("generation 1", "generation 1")

    status, second = post(lamina, "/lamina/v1/deployments", document(upload(lamina, 2)))
    second = second["deployment"]
    assert (status, second["id"], second["functions"][0]["version"]) == (201, 2, "2")
    assert served(lamina, second) == ("generation 2", "generation 2")

    status, back = post(lamina, "/lamina/v1/stacks/shop/dev/rollback", {"deployment": 1})
    back = back["deployment"]
    assert (status, back["id"], back["functions"][0]["version"]) == (201, 1, "1")
    assert served(lamina, back) == ("generation 1", "generation 1")
    stack = lamina.get("/lamina/v1/stacks/shop/dev")
    assert stack["deployment"]["id"] == 1
    history = lamina.get("/lamina/v1/stacks/shop/dev/deployments")["deployments"]
    assert [d["id"] for d in history] == [2, 1]

    status, _ = request("DELETE", f"{lamina.control_url}/lamina/v1/stacks/shop/dev")
    assert status == 204
    with pytest.raises(ClientError) as gone:
        lamina.client().get_function(FunctionName=NAME)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert request("GET", back["endpoints"][0]["url"])[0] == 404
    assert lamina.get("/lamina/v1/stacks")["stacks"] == []


def test_a_failed_deployment_leaves_the_live_one_serving(lamina: LaminaServer) -> None:
    status, first = post(lamina, "/lamina/v1/deployments", document(upload(lamina, 1)))
    assert status == 201
    bad = document(upload(lamina, 2))
    (api,) = bad["functions"]
    bad["functions"] = [api, {**api, "key": "other", "name": "x", "timeout": 0, "routes": []}]

    status, refused = post(lamina, "/lamina/v1/deployments", bad)

    assert status == 400
    assert "functions.other: Timeout = 0" in refused["Message"]
    assert served(lamina, first["deployment"]) == ("generation 1", "generation 1")
    assert lamina.get("/lamina/v1/stacks/shop/dev")["deployment"]["id"] == 1


def test_routes_survive_a_restart(lamina_factory: Any) -> None:
    lamina = lamina_factory()
    status, first = post(lamina, "/lamina/v1/deployments", document(upload(lamina, 1)))
    assert status == 201
    lamina.stop()
    lamina.start()

    # The data plane listens on a new port: the stack's endpoints say where.
    deployment = lamina.get("/lamina/v1/stacks/shop/dev")["deployment"]
    assert deployment["id"] == first["deployment"]["id"]
    assert served(lamina, deployment) == ("generation 1", "generation 1")
