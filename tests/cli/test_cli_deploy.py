from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import Result

if TYPE_CHECKING:
    from conftest import FakeControlApi

Lamina = Callable[..., Result]

SERVICE = """\
service: shop
provider:
  name: aws
  runtime: python3.12
  environment:
    TABLE: orders
    RETRIES: 3
functions:
  api:
    handler: handler.api
    memorySize: 512
    environment:
      DEBUG: true
  worker:
    handler: handler.worker
    timeout: 60
    description: Drains the queue
"""


@pytest.fixture
def service_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "serverless.yml").write_text(SERVICE)
    (tmp_path / "handler.py").write_text("def api(event, context):\n    return event\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_first_deploy_creates_every_function(
    control_api: FakeControlApi, lamina: Lamina, service_dir: Path
) -> None:
    result = lamina("deploy")

    assert result.exit_code == 0, result.output
    assert sorted(control_api.functions) == ["shop-dev-api", "shop-dev-worker"]
    api = control_api.functions["shop-dev-api"]
    assert (api["Runtime"], api["Handler"], api["MemorySize"], api["Timeout"]) == (
        "python3.12",
        "handler.api",
        512,
        6,
    )
    assert api["Environment"] == {"Variables": {"TABLE": "orders", "RETRIES": "3", "DEBUG": "true"}}
    worker = control_api.functions["shop-dev-worker"]
    assert (worker["MemorySize"], worker["Timeout"], worker["Description"]) == (
        1024,
        60,
        "Drains the queue",
    )

    artifact = (service_dir / ".serverless" / "shop.zip").read_bytes()
    assert api["CodeSha256"] == _sha256(artifact)
    assert zipfile.ZipFile(io.BytesIO(artifact)).namelist() == ["handler.py"]

    lines = result.stdout.splitlines()
    assert lines[0] == "Deploying shop to stage dev (us-east-1)"
    assert "  api: created" in lines
    assert "service: shop" in lines and "stage: dev" in lines and "region: us-east-1" in lines
    assert any(line.startswith("  api: shop-dev-api (") for line in lines)
    assert any(line.startswith("  worker: shop-dev-worker (") for line in lines)


def test_redeploy_skips_unchanged_code_and_configuration(
    control_api: FakeControlApi, lamina: Lamina, service_dir: Path
) -> None:
    lamina("deploy")
    control_api.requests.clear()

    result = lamina("deploy")

    assert result.exit_code == 0, result.output
    assert "  api: code unchanged, configuration unchanged" in result.stdout.splitlines()
    assert [r.method for r in control_api.requests] == ["GET", "GET"]


def test_redeploy_uploads_changed_code_and_changed_configuration(
    control_api: FakeControlApi, lamina: Lamina, service_dir: Path
) -> None:
    lamina("deploy")
    control_api.requests.clear()
    (service_dir / "handler.py").write_text("def api(event, context):\n    return 42\n")
    config = service_dir / "serverless.yml"
    config.write_text(config.read_text().replace("memorySize: 512", "memorySize: 256"))

    result = lamina("deploy")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "  api: code updated, configuration updated" in lines
    assert "  worker: code updated, configuration unchanged" in lines
    [put_api_config] = control_api.calls("PUT", "/shop-dev-api/configuration")
    assert put_api_config.json()["MemorySize"] == 256
    assert len(control_api.calls("PUT", "/code")) == 2
    artifact = (service_dir / ".serverless" / "shop.zip").read_bytes()
    assert control_api.functions["shop-dev-api"]["CodeSha256"] == _sha256(artifact)


def test_stage_option_names_the_functions(
    control_api: FakeControlApi, lamina: Lamina, service_dir: Path
) -> None:
    result = lamina("deploy", "--stage", "prod", "--region", "eu-west-1")

    assert result.exit_code == 0, result.output
    assert sorted(control_api.functions) == ["shop-prod-api", "shop-prod-worker"]
    assert result.stdout.splitlines()[0] == "Deploying shop to stage prod (eu-west-1)"


def test_invalid_config_reports_every_problem_and_deploys_nothing(
    control_api: FakeControlApi, lamina: Lamina, service_dir: Path
) -> None:
    config = service_dir / "serverless.yml"
    text = config.read_text().replace("memorySize: 512", "memorySize: 20")
    config.write_text(text.replace("timeout: 60", "timeout: 0"))

    result = lamina("deploy")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: serverless.yml:11: functions.api.memorySize = 20: must be between 128 and 10240 MB",
        "error: serverless.yml:16: functions.worker.timeout = 0: must be between 1 and 900 seconds",
    ]
    assert control_api.requests == []


def test_warnings_are_printed_and_do_not_stop_the_deploy(
    control_api: FakeControlApi, lamina: Lamina, service_dir: Path
) -> None:
    config = service_dir / "serverless.yml"
    config.write_text(config.read_text().replace("memorySize: 512", "memoryLimit: 512"))

    result = lamina("deploy")

    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "warning: serverless.yml:11: functions.api.memoryLimit: unknown key; "
        "did you mean 'memorySize'?\n"
    )


def test_without_a_service_file_says_where_it_looked(
    lamina: Lamina, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = lamina("deploy")

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no serverless.yml in {tmp_path} (run this in a service directory, "
        "or pass --config)\n"
    )


def test_config_option_points_at_another_directory(
    control_api: FakeControlApi,
    lamina: Lamina,
    service_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "serverless.yml").write_text(SERVICE.replace("shop", "other"))

    result = lamina("deploy", "--config", str(elsewhere / "serverless.yml"))

    assert result.exit_code == 0, result.output
    assert sorted(control_api.functions) == ["other-dev-api", "other-dev-worker"]
    assert (elsewhere / ".serverless" / "other.zip").is_file()
