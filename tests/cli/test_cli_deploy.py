"""`lamina deploy` against a fake control API that takes deployments: what it posts, what it
uploads, what it prints, and that a failing config sends nothing."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import Result

if TYPE_CHECKING:
    from conftest import FakeDeployApi

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
    events:
      - httpApi: 'GET /orders/{id}'
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


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


NO_TRIGGERS = {"schedules": [], "sqs": [], "async_config": None}


def _route(**fields: Any) -> dict[str, Any]:
    empty = {"paths": [], "methods": [], "hosts": [], "headers": [], "query": [], "source_ips": []}
    return {
        "qualifier": None,
        "method": "ANY",
        "path": "$default",
        "payload_version": "2.0",
        "priority": 0,
        "conditions": empty,
        "multi_value_headers": False,
        "cors": False,
        **fields,
    }


def test_first_deploy_uploads_the_bundle_and_posts_the_whole_service(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    result = sls("deploy")

    assert result.exit_code == 0, result.output
    artifact = (service_dir / ".serverless" / "shop.zip").read_bytes()
    assert zipfile.ZipFile(io.BytesIO(artifact)).namelist() == ["handler.py"]
    sha = _sha(artifact)
    assert [(r.method, r.path) for r in deploy_api.requests] == [
        ("HEAD", f"/lamina/v1/bundles/{sha}"),
        ("PUT", f"/lamina/v1/bundles/{sha}"),
        ("POST", "/lamina/v1/deployments"),
    ]
    assert deploy_api.requests[1].headers["content-type"] == "application/zip"
    assert deploy_api.posted == [
        {
            "service": "shop",
            "stage": "dev",
            "region": "us-east-1",
            "functions": [
                {
                    "key": "api",
                    "name": "shop-dev-api",
                    "runtime": "python3.12",
                    "handler": "handler.api",
                    "code_sha256": sha,
                    "memory_size": 512,
                    "timeout": 6,
                    "environment": {"TABLE": "orders", "RETRIES": "3", "DEBUG": "true"},
                    "layers": [],
                    "description": "",
                    "reserved_concurrency": None,
                    "provisioned_concurrency": None,
                    **NO_TRIGGERS,
                    "routes": [
                        _route(
                            kind="httpApi",
                            service="shop",
                            stage="dev",
                            function_name="shop-dev-api",
                            method="GET",
                            path="/orders/{id}",
                        )
                    ],
                },
                {
                    "key": "worker",
                    "name": "shop-dev-worker",
                    "runtime": "python3.12",
                    "handler": "handler.worker",
                    "code_sha256": sha,
                    "memory_size": 1024,
                    "timeout": 60,
                    "environment": {"TABLE": "orders", "RETRIES": "3"},
                    "layers": [],
                    "description": "Drains the queue",
                    "reserved_concurrency": None,
                    "provisioned_concurrency": None,
                    "routes": [],
                    **NO_TRIGGERS,
                },
            ],
            "layers": [],
            "version_functions": True,
            "queues": [],
        }
    ]
    assert result.stdout.splitlines() == [
        "Deploying shop to stage dev (us-east-1)",
        f"Packaged .serverless/shop.zip (1 file, {len(artifact)} B)",
        "Uploaded 1 of 1 bundles",
        result.stdout.splitlines()[3],  # the time it took
        "",
        "service: shop",
        "stage: dev",
        "region: us-east-1",
        "stack: shop-dev",
        "deployment: 1 (2024-05-01T10:00:00Z)",
        "endpoints:",
        "  GET - http://127.0.0.1:8080/shop/dev/orders/{id}",
        "functions:",
        "  api: shop-dev-api (version 1)",
        "  worker: shop-dev-worker (version 1)",
    ]
    assert result.stdout.splitlines()[3].startswith("✔ Service deployed to stage dev (")


def test_redeploy_uploads_nothing_the_server_has(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    sls("deploy")
    deploy_api.requests.clear()

    result = sls("deploy")

    assert result.exit_code == 0, result.output
    assert [r.method for r in deploy_api.requests] == ["HEAD", "POST"]
    assert "  api: shop-dev-api (unchanged, version 1)" in result.stdout.splitlines()


def test_changed_code_is_a_new_bundle(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    sls("deploy")
    (service_dir / "handler.py").write_text("def api(event, context):\n    return 42\n")

    result = sls("deploy")

    assert result.exit_code == 0, result.output
    assert len(deploy_api.bundles) == 2
    first, second = (d["functions"][0]["code_sha256"] for d in deploy_api.posted)
    assert first != second
    assert "  api: shop-dev-api (version 2)" in result.stdout.splitlines()


def test_stage_and_region_options(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    result = sls("deploy", "--stage", "prod", "--region", "eu-west-1")

    assert result.exit_code == 0, result.output
    [posted] = deploy_api.posted
    assert (posted["stage"], posted["region"]) == ("prod", "eu-west-1")
    assert [f["name"] for f in posted["functions"]] == ["shop-prod-api", "shop-prod-worker"]
    assert result.stdout.splitlines()[0] == "Deploying shop to stage prod (eu-west-1)"


def test_invalid_config_reports_every_problem_and_sends_nothing(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    config = service_dir / "serverless.yml"
    text = config.read_text().replace("memorySize: 512", "memorySize: 20")
    text = text.replace("timeout: 60", "timeout: 0").replace("RETRIES: 3", "RETRIES: ${env:NOPE}")
    config.write_text(text)

    result = sls("deploy")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        'error: serverless.yml:7: Cannot resolve variable at "provider.environment.RETRIES": '
        'Value not found at "env" source',
        "error: serverless.yml:11: functions.api.memorySize = 20: must be between 128 and 10240 MB",
        "error: serverless.yml:18: functions.worker.timeout = 0: must be between 1 and 900 seconds",
    ]
    assert deploy_api.requests == []
    assert not (service_dir / ".serverless").exists()


def test_warnings_and_notes_are_printed_and_do_not_stop_the_deploy(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    config = service_dir / "serverless.yml"
    text = config.read_text().replace("memorySize: 512", "memoryLimit: 512")
    config.write_text(text.replace("  name: aws\n", "  name: aws\n  iam: {}\n"))

    result = sls("deploy")

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: serverless.yml:12: functions.api.memoryLimit: unknown key; "
        "did you mean 'memorySize'?",
        "note: serverless.yml:4: provider.iam: IAM roles and statements are accepted but not "
        "enforced by Lamina",
    ]


def test_without_a_service_file_says_where_it_looked(
    sls: Lamina, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = sls("deploy")

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no serverless.yml in {tmp_path} (run this in a service directory, "
        "or pass --config)\n"
    )


def test_config_option_points_at_another_directory(
    deploy_api: FakeDeployApi,
    sls: Lamina,
    service_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "serverless.yml").write_text(SERVICE.replace("shop", "other"))

    result = sls("deploy", "--config", str(elsewhere / "serverless.yml"))

    assert result.exit_code == 0, result.output
    assert deploy_api.posted[0]["service"] == "other"
    assert (elsewhere / ".serverless" / "other.zip").is_file()


def test_a_refused_deployment_is_reported_in_one_line(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    deploy_api.refuse_deployments(409, "ResourceConflictException", "A deploy is running")

    result = sls("deploy")

    assert result.exit_code == 1
    assert result.stderr == "error: ResourceConflictException: A deploy is running\n"


# --- variables from the outside world -------------------------------------------------------


VARIABLES = """\
service: shop
useDotenv: true
provider:
  name: aws
  runtime: python3.12
  stage: ${opt:stage, 'dev'}
  environment:
    TOKEN: ${ssm:/shop/${sls:stage}/token}
    GREETING: ${ssm:/shop/greeting, 'Hello'}
    LEVEL: ${param:level}
    COLOUR: ${opt:colour, 'blue'}
    FROM_DOTENV: ${env:FROM_DOTENV, 'none'}
params:
  default:
    level: debug
  prod:
    level: warning
functions:
  api:
    handler: handler.api
"""


@pytest.fixture
def variables_dir(service_dir: Path) -> Path:
    (service_dir / "serverless.yml").write_text(VARIABLES)
    (service_dir / ".env").write_text("FROM_DOTENV=plain\n")
    (service_dir / ".env.prod").write_text("FROM_DOTENV=prod # the stage's file wins\n")
    return service_dir


def _environment(api: FakeDeployApi) -> dict[str, str]:
    environment: dict[str, str] = api.posted[-1]["functions"][0]["environment"]
    return environment


def test_ssm_params_options_and_dotenv_are_resolved(
    deploy_api: FakeDeployApi, sls: Lamina, variables_dir: Path
) -> None:
    deploy_api.put_parameter("/shop/dev/token", "s3cr3t", "SecureString")

    result = sls("deploy", "--colour", "red")

    assert result.exit_code == 0, result.output
    assert _environment(deploy_api) == {
        "TOKEN": "s3cr3t",
        "GREETING": "Hello",
        "LEVEL": "debug",
        "COLOUR": "red",
        "FROM_DOTENV": "plain",
    }
    ssm = [r for r in deploy_api.requests if r.path == "/"]
    assert [r.json() for r in ssm] == [
        {"Name": "/shop/dev/token", "WithDecryption": True},
        {"Name": "/shop/greeting", "WithDecryption": True},
    ]
    assert ssm[0].headers["x-amz-target"] == "AmazonSSM.GetParameter"
    assert ssm[0].headers["content-type"] == "application/x-amz-json-1.1"
    bundle = next(iter(deploy_api.bundles.values()))
    assert zipfile.ZipFile(io.BytesIO(bundle)).namelist() == ["handler.py"]  # no .env


def test_another_stage_takes_its_params_and_dotenv(
    deploy_api: FakeDeployApi, sls: Lamina, variables_dir: Path
) -> None:
    deploy_api.put_parameter("/shop/prod/token", "p", "String")

    result = sls("deploy", "--stage", "prod", "--param", "extra=1", "--param=level=error")

    assert result.exit_code == 0, result.output
    environment = _environment(deploy_api)
    assert (environment["LEVEL"], environment["FROM_DOTENV"]) == ("error", "prod")


def test_a_missing_parameter_without_fallback_stops_the_deploy(
    deploy_api: FakeDeployApi, sls: Lamina, variables_dir: Path
) -> None:
    result = sls("deploy")

    assert result.exit_code == 1
    assert result.stderr == (
        'error: serverless.yml:8: Cannot resolve variable at "provider.environment.TOKEN": '
        'Value not found at "ssm" source\n'
    )
    assert [r.path for r in deploy_api.requests] == ["/", "/"]  # the lookups, nothing else


def test_an_unreachable_parameter_store_is_named(
    sls: Lamina, variables_dir: Path, deploy_api: FakeDeployApi
) -> None:
    result = sls("--endpoint", "http://127.0.0.1:9", "deploy")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        'error: serverless.yml:8: Cannot resolve variable at "provider.environment.TOKEN": '
        "cannot reach Lamina at http://127.0.0.1:9 (is `lamina up` running?)"
    )


def test_bad_param_option(sls: Lamina, variables_dir: Path) -> None:
    result = sls("deploy", "--param", "nokey")

    assert result.exit_code == 1
    assert result.stderr == (
        'error: Encountered invalid "--param" CLI option value: "nokey". '
        "Supported format: \"--param='<key>=<val>'\"\n"
    )


def test_stray_arguments_are_refused(sls: Lamina, service_dir: Path) -> None:
    result = sls("deploy", "everything")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: unexpected argument 'everything' (lamina deploy [function -f KEY | list])\n"
    )


# --- packaging choices and layers -----------------------------------------------------------


def test_individually_uploads_one_bundle_per_function(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    config = service_dir / "serverless.yml"
    text = config.read_text().replace(
        "    description: Drains the queue\n",
        "    description: Drains the queue\n"
        "    package:\n      patterns: ['!handler.py', 'worker.py']\n",
    )
    config.write_text(text + "package:\n  individually: true\n  patterns: ['!*.md']\n")
    (service_dir / "worker.py").write_text("def worker(event, context): pass\n")
    (service_dir / "NOTES.md").write_text("notes")

    result = sls("deploy")

    assert result.exit_code == 0, result.output
    api, worker = deploy_api.posted[0]["functions"]
    assert api["code_sha256"] != worker["code_sha256"]
    names = {
        sha: zipfile.ZipFile(io.BytesIO(data)).namelist()
        for sha, data in deploy_api.bundles.items()
    }
    assert names[api["code_sha256"]] == ["handler.py", "worker.py"]
    assert names[worker["code_sha256"]] == ["worker.py"]
    assert "Packaged .serverless/api.zip (2 files," in result.stdout


def test_own_layers_are_uploaded_and_referenced(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    (service_dir / "layer" / "python").mkdir(parents=True)
    (service_dir / "layer" / "python" / "lib.py").write_text("X = 1\n")
    config = service_dir / "serverless.yml"
    config.write_text(
        config.read_text().replace(
            "    description: Drains the queue\n",
            "    description: Drains the queue\n    layers:\n      - Ref: CommonLibsLambdaLayer\n",
        )
        + "layers:\n  commonLibs:\n    path: layer\n    description: Shared code\n"
        + "    compatibleRuntimes: [python3.12]\n"
    )

    result = sls("deploy")

    assert result.exit_code == 0, result.output
    [posted] = deploy_api.posted
    layer_zip = (service_dir / ".serverless" / "layer-commonLibs.zip").read_bytes()
    assert posted["layers"] == [
        {
            "key": "commonLibs",
            "name": "commonLibs",
            "code_sha256": _sha(layer_zip),
            "description": "Shared code",
            "compatible_runtimes": ["python3.12"],
        }
    ]
    assert zipfile.ZipFile(io.BytesIO(layer_zip)).namelist() == ["python/lib.py"]
    api, worker = posted["functions"]
    assert (api["layers"], worker["layers"]) == ([], ["layer:commonLibs"])
    code = deploy_api.bundles[api["code_sha256"]]
    assert zipfile.ZipFile(io.BytesIO(code)).namelist() == ["handler.py"]  # not the layer


def test_a_missing_artifact_is_named(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    config = service_dir / "serverless.yml"
    config.write_text(config.read_text() + "package:\n  artifact: build/app.zip\n")

    result = sls("deploy")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: serverless.yml: package.artifact = 'build/app.zip': No such file or directory\n"
    )
    assert deploy_api.requests == []


PHP = """\
service: site
plugins:
  - ./vendor/bref/bref
provider:
  name: aws
  runtime: provided.al2
functions:
  web:
    handler: public/index.php
    runtime: php-83-fpm
  cli:
    handler: bin/console
    layers:
      - ${bref:layer.php-74}
      - ${bref:layer.console}
"""


def test_php_functions_deploy_on_lamina_s_built_in_runtimes(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    (service_dir / "serverless.yml").write_text(PHP)

    result = sls("deploy")

    assert result.exit_code == 0, result.output
    functions = {f["key"]: f for f in deploy_api.posted[0]["functions"]}
    assert (functions["web"]["runtime"], functions["web"]["layers"]) == (
        "provided.al2",
        ["arn:lamina:runtime:php-83-fpm"],
    )
    assert (functions["cli"]["runtime"], functions["cli"]["layers"]) == (
        "provided.al2",
        ["arn:lamina:runtime:php-74", "arn:lamina:runtime:console"],
    )


def test_deploy_prints_the_server_s_warnings_once(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (service_dir / "serverless.yml").write_text(PHP)
    warning = "functions site-dev-web ask for PHP 8.3; the Lamina server runs them on PHP 8.2"
    deploy = deploy_api._deploy

    def deploy_with_warning(document: dict[str, Any]) -> Any:
        reply = deploy(document)
        answer = json.loads(reply.body)
        answer["deployment"]["warnings"] = [warning]
        reply.body = json.dumps(answer).encode()
        return reply

    monkeypatch.setattr(deploy_api, "_deploy", deploy_with_warning)

    result = sls("deploy")

    assert result.exit_code == 0, result.output
    assert result.stderr.count(warning) == 1
    assert f"warning: {warning}" in result.stderr


# --- deploy function, deploy list, info, remove, rollback ------------------------------------


def test_deploy_function_skips_unchanged_code(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    sls("deploy")
    deploy_api.requests.clear()

    result = sls("deploy", "function", "-f", "api")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Code did not change. Function deployment skipped.",
        "Configuration did not change. Configuration update skipped.",
    ]
    assert [(r.method, r.path) for r in deploy_api.requests] == [
        ("GET", "/2015-03-31/functions/shop-dev-api")
    ]


def test_deploy_function_updates_code_and_changed_configuration(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    sls("deploy")
    deploy_api.requests.clear()
    (service_dir / "handler.py").write_text("def api(event, context):\n    return 1\n")
    config = service_dir / "serverless.yml"
    config.write_text(config.read_text().replace("memorySize: 512", "memorySize: 256"))

    result = sls("deploy", "function", "--function", "api", "--stage", "dev")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("✔ Function code deployed (")
    assert lines[1] == "✔ Function configuration updated (MemorySize)"
    [code] = deploy_api.calls("PUT", "/shop-dev-api/code")
    artifact = (service_dir / ".serverless" / "shop.zip").read_bytes()
    assert zipfile.ZipFile(io.BytesIO(artifact)).read("handler.py").endswith(b"return 1\n")
    assert set(code.json()) == {"ZipFile"}
    [configuration] = deploy_api.calls("PUT", "/shop-dev-api/configuration")
    assert configuration.json() == {"MemorySize": 256}


def test_deploy_function_needs_a_deployed_known_function(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    missing_key = sls("deploy", "function", "-f", "nope")
    not_deployed = sls("deploy", "function", "-f", "api")
    no_key = sls("deploy", "function")

    assert missing_key.stderr == (
        "error: function 'nope' is not in serverless.yml (its functions: api, worker)\n"
    )
    assert not_deployed.stderr == (
        "error: function shop-dev-api is not deployed yet; run `lamina deploy` first\n"
    )
    assert no_key.stderr == "error: lamina deploy function needs the function's key: -f KEY\n"


def test_deploy_list(deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path) -> None:
    sls("deploy")
    (service_dir / "handler.py").write_text("changed = True\n")
    sls("deploy")

    result = sls("deploy", "list")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Deployments of shop (stage dev):",
        "  1  2024-05-01T10:00:00Z  api (v1), worker (v1)",
        "  2  2024-05-01T10:00:01Z  api (v2), worker (v2)",
    ]


def test_info_shows_the_live_deployment(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    sls("deploy")
    deploy_api.requests.clear()

    result = sls("info")

    assert result.exit_code == 0, result.output
    assert [(r.method, r.path) for r in deploy_api.requests] == [
        ("GET", "/lamina/v1/stacks/shop/dev")
    ]
    assert result.stdout.splitlines()[:4] == [
        "service: shop",
        "stage: dev",
        "region: us-east-1",
        "stack: shop-dev",
    ]
    assert "  GET - http://127.0.0.1:8080/shop/dev/orders/{id}" in result.stdout.splitlines()


def test_info_of_a_stage_never_deployed(sls: Lamina, service_dir: Path) -> None:
    result = sls("info", "--stage", "qa")

    assert result.exit_code == 1
    assert result.stderr == "error: ResourceNotFoundException: Stack shop-qa not found\n"


def test_info_needs_only_the_identity_variables(
    deploy_api: FakeDeployApi, sls: Lamina, variables_dir: Path
) -> None:
    deploy_api.put_parameter("/shop/dev/token", "t")
    sls("deploy")
    del deploy_api.parameters["/shop/dev/token"]  # a secret gone missing since
    deploy_api.requests.clear()

    result = sls("info")

    assert result.exit_code == 0, result.output
    assert all(r.path != "/" for r in deploy_api.requests)


def test_remove(deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path) -> None:
    sls("deploy", "--stage", "qa")
    deploy_api.requests.clear()

    result = sls("remove", "--stage", "qa")

    assert result.exit_code == 0, result.output
    assert [(r.method, r.path) for r in deploy_api.requests] == [
        ("DELETE", "/lamina/v1/stacks/shop/qa")
    ]
    lines = result.stdout.splitlines()
    assert lines[0] == "Removing shop from stage qa (us-east-1)"
    assert lines[1].startswith("✔ Service shop has been successfully removed (")


def test_rollback_to_the_previous_or_a_chosen_deployment(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    for text in ("a = 1\n", "a = 2\n", "a = 3\n"):
        (service_dir / "handler.py").write_text(text)
        sls("deploy")
    deploy_api.requests.clear()

    previous = sls("rollback")
    chosen = sls("rollback", "--deployment", "1")

    assert previous.exit_code == 0, previous.output
    assert [r.json() for r in deploy_api.calls("POST", "/rollback")] == [{}, {"deployment": 1}]
    assert previous.stdout.splitlines()[0].startswith("✔ Service rolled back to deployment 2 (")
    assert "deployment: 2 (2024-05-01T10:00:01Z)" in previous.stdout.splitlines()
    assert chosen.stdout.splitlines()[0].startswith("✔ Service rolled back to deployment 1 (")
    assert deploy_api.live[("shop", "dev")] == 1


def test_rollback_to_an_unknown_deployment(
    deploy_api: FakeDeployApi, sls: Lamina, service_dir: Path
) -> None:
    sls("deploy")

    result = sls("rollback", "-d", "7")

    assert result.exit_code == 1
    assert result.stderr == "error: ResourceNotFoundException: No deployment 7\n"
