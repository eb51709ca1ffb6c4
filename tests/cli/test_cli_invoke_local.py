"""`lamina invoke local`: one invocation of a function of ./serverless.yml, in the CLI's own
process, with real runtimes and no server (the endpoint given points at nothing)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from lamina.cli.main import app
from lamina.runtimes.php import find_php

Lamina = Callable[..., Result]

SERVICE = """\
service: shop
provider:
  name: aws
  runtime: python3.11
  environment:
    TOKEN: ${ssm:/shop/token, 'local-token'}
functions:
  hello:
    handler: handler.hello
    timeout: 10
  boom:
    handler: handler.boom
  php:
    handler: index.php
    runtime: php-82
  console:
    handler: bin/console
    runtime: php-82-console
"""

PYTHON = """\
import os

def hello(event, context):
    print("hello from python", event)
    return {
        "event": event,
        "token": os.environ["TOKEN"],
        "local": os.environ.get("IS_LOCAL"),
        "extra": os.environ.get("EXTRA"),
        "name": context.function_name,
    }

def boom(event, context):
    raise ValueError("bad order")
"""

PHP_APP = """<?php
return function ($event, Bref\\Context\\Context $context) {
    echo "hello from php\\n";
    return ['event' => $event, 'token' => getenv('TOKEN'), 'local' => getenv('IS_LOCAL')];
};
"""

needs_php = pytest.mark.skipif(find_php() is None, reason="needs PHP's CLI (php8.2-cli)")


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "serverless.yml").write_text(SERVICE)
    (tmp_path / "handler.py").write_text(PYTHON)
    (tmp_path / "index.php").write_text(PHP_APP)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "console").write_text("<?php echo 'ran: ', $argv[1] ?? '-', PHP_EOL;")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def local(tmp_path: Path) -> Lamina:
    runner = CliRunner()
    env = {
        # Nothing listens there: invoke local needs no server.
        "LAMINA_ENDPOINT": "http://127.0.0.1:9",
        "LAMINA_SANDBOX": "plain",
        "COLUMNS": "200",
    }

    def run(*args: str) -> Result:
        return runner.invoke(app, ["invoke", "local", *args], env=env)

    return run


def test_a_python_function_runs_here_and_prints_its_result_and_log(
    service: Path, local: Lamina
) -> None:
    result = local("-f", "hello", "--data", '{"n": 1}', "--env", "EXTRA=yes")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "event": {"n": 1},
        "token": "local-token",  # the ${ssm:} fallback: no parameter store without a server
        "local": "true",
        "extra": "yes",
        "name": "shop-dev-hello",
    }
    lines = result.stderr.splitlines()
    assert lines[0].startswith("INIT_START ")
    assert lines[1].startswith("START RequestId: ")
    assert "hello from python {'n': 1}" in lines
    assert lines[-2].startswith("END RequestId: ")
    assert lines[-1].startswith("REPORT RequestId: ")
    assert "Init Duration: " in lines[-1]


@needs_php
def test_a_php_function_runs_here(service: Path, local: Lamina) -> None:
    result = local("-f", "php", "--data", '{"name": "ada"}')

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "event": {"name": "ada"},
        "token": "local-token",
        "local": "true",
    }
    assert "hello from php" in result.stderr.splitlines()


@needs_php
def test_a_php_console_function_runs_its_command(service: Path, local: Lamina) -> None:
    result = local("-f", "console", "--data", "cache:clear")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"exitCode": 0, "output": "ran: cache:clear\n"}


def test_a_function_error_is_printed_and_exits_1(service: Path, local: Lamina) -> None:
    result = local("-f", "boom")

    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert (payload["errorType"], payload["errorMessage"]) == ("ValueError", "bad order")
    assert "error: invoked function failed: ValueError: bad order" in result.stderr
    assert "Status: error" in result.stderr


def test_the_event_comes_from_a_file(service: Path, local: Lamina) -> None:
    (service / "event.yml").write_text("orders:\n  - 1\n  - 2\n")

    result = local("-f", "hello", "--path", "event.yml")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["event"] == {"orders": [1, 2]}


def test_an_unknown_function_names_the_ones_there_are(service: Path, local: Lamina) -> None:
    result = local("-f", "nope")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: function 'nope' is not in serverless.yml "
        "(its functions: hello, boom, php, console)\n"
    )


def test_an_ssm_variable_without_fallback_says_how_to_run_locally(
    service: Path, local: Lamina
) -> None:
    (service / "serverless.yml").write_text(SERVICE.replace(", 'local-token'", ""))

    result = local("-f", "hello")

    assert result.exit_code == 1
    assert 'Value not found at "ssm" source' in result.stderr
    assert "lamina invoke local reads no SSM parameters" in result.stderr


def test_environment_overrides_follow_lambda_s_naming_rule(service: Path, local: Lamina) -> None:
    result = local("-f", "hello", "--env", "X=1")

    assert result.exit_code == 1
    assert "--env 'X=1': must be NAME=value" in result.stderr


def test_lamina_invoke_s_help_shows_both_forms(service: Path) -> None:
    result = CliRunner().invoke(
        app, ["invoke", "--help"], env={"COLUMNS": "200", "LAMINA_SANDBOX": "plain"}
    )

    assert result.exit_code == 0
    assert "lamina invoke local -f KEY" in result.stdout
    assert "--qualifier" in result.stdout
