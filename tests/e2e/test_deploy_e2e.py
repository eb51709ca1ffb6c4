"""`lamina deploy` of examples/http-api with the real CLI against a real `lamina up`: the
SSM parameter resolved at deploy time, its routes answering on the data plane, a second
stage, `info`, `deploy list`, `deploy function`, `rollback` and `remove`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from tests.e2e.harness import LaminaServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = re.compile(r"^\s+(?P<method>[A-Z]+) - (?P<url>https?://\S+)", re.MULTILINE)


def _cli(server: LaminaServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAMINA_ENDPOINT": server.control_url, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _endpoints(output: str) -> dict[str, str]:
    """`GET - http://.../hello` lines -> {"/hello": url}, keyed by the URL's last segments."""
    found: dict[str, str] = {}
    for match in ENDPOINT.finditer(output):
        url = match["url"]
        for suffix in ("/hello", "/users/{id}", "/status"):
            if url.endswith(suffix):
                found[suffix] = url
    return found


def _get(url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _ssm(server: LaminaServer) -> Any:
    return boto3.client(
        "ssm",
        endpoint_url=server.control_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def service(tmp_path: Path) -> Path:
    target = tmp_path / "http-api"
    shutil.copytree(ROOT / "examples" / "http-api", target)
    return target


def test_deploy_the_http_api_example(lamina: LaminaServer, service: Path) -> None:
    _ssm(lamina).put_parameter(Name="/http-api/dev/greeting", Value="Bonjour", Type="String")

    deployed = _cli(lamina, service, "deploy")

    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "service: http-api" in deployed.stdout
    assert "hello: http-api-dev-hello" in deployed.stdout
    urls = _endpoints(deployed.stdout)
    assert set(urls) == {"/hello", "/users/{id}", "/status"}, deployed.stdout

    status, body = _get(urls["/hello"] + "?name=e2e")
    assert status == 200, body
    assert body["message"] == "Bonjour, e2e!"  # the SSM parameter, read at deploy time
    assert (body["stage"], body["logLevel"]) == ("dev", "debug")
    status, body = _get(urls["/users/{id}"].replace("{id}", "42"))
    assert (status, body) == (200, {"id": "42", "route": "GET /users/{id}"}), (status, body)
    status, body = _get(urls["/status"])
    assert status == 200, (status, body)
    assert (body["status"], body["method"]) == ("ok", "GET")

    # A second stage: prod's params, and the greeting's fallback (no parameter for prod).
    prod = _cli(lamina, service, "deploy", "--stage", "prod")
    assert prod.returncode == 0, prod.stdout + prod.stderr
    status, body = _get(_endpoints(prod.stdout)["/hello"])
    assert status == 200, (status, body)
    assert body["message"] == "Hello, world!"
    assert (body["stage"], body["logLevel"]) == ("prod", "warning")

    info = _cli(lamina, service, "info")
    assert info.returncode == 0, info.stderr
    assert _endpoints(info.stdout)["/hello"] == urls["/hello"]

    # Change the greeting: a redeploy picks it up, and becomes deployment 2 of stage dev.
    _ssm(lamina).put_parameter(
        Name="/http-api/dev/greeting", Value="Hola", Type="String", Overwrite=True
    )
    again = _cli(lamina, service, "deploy")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _get(urls["/hello"])[1]["message"] == "Hola, world!"
    listed = _cli(lamina, service, "deploy", "list")
    assert listed.returncode == 0, listed.stderr
    assert len(re.findall(r"^\s+\d+\s", listed.stdout, re.MULTILINE)) == 2, listed.stdout

    unchanged = _cli(lamina, service, "deploy", "function", "-f", "hello")
    assert unchanged.returncode == 0, unchanged.stderr
    assert "Code did not change. Function deployment skipped." in unchanged.stdout

    rolled = _cli(lamina, service, "rollback")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert _get(urls["/hello"])[1]["message"] == "Bonjour, world!"

    removed = _cli(lamina, service, "remove", "--stage", "prod")
    assert removed.returncode == 0, removed.stderr
    assert "successfully removed" in removed.stdout
    assert _get(_endpoints(prod.stdout)["/hello"])[0] == 404
    assert _get(urls["/hello"])[0] == 200  # the other stage is untouched


def test_a_broken_config_deploys_nothing(lamina: LaminaServer, service: Path) -> None:
    config = service / "serverless.yml"
    text = config.read_text().replace("memorySize: 128", "memorySize: 64")
    config.write_text(text.replace("${param:logLevel}", "${param:missing}"))

    failed = _cli(lamina, service, "deploy")

    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        "error: serverless.yml:8: provider.memorySize = 64: must be between 128 and 10240 MB",
        'error: serverless.yml:16: Cannot resolve variable at "provider.environment.LOG_LEVEL": '
        'Value not found at "param" source',
    ]
    assert lamina.client().list_functions()["Functions"] == []
