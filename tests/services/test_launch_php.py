"""How PHP function and console environments are launched, what a deployment is warned of
when the machine's PHP differs, and functions whose layers are Bref's built-in runtimes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.services.test_services_functions import V1, service

from lamina.config import Settings
from lamina.core.errors import InvalidParameterValueException
from lamina.core.models import Account, FunctionConfig
from lamina.core.runtimes import RuntimeChoice
from lamina.runtimes import php
from lamina.services import php_launch
from lamina.services.launch import EntrypointMissing, Launcher
from lamina.services.registry import DeployedFunction

BREF_V2_LAYER = "arn:aws:lambda:eu-west-3:534081306603:layer:php-82:60"


def _deployed(tmp_path: Path, **config: object) -> DeployedFunction:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    fields: dict[str, object] = {
        "name": "app-dev-api",
        "runtime": "provided.al2",
        "handler": "index.php",
        "code_sha256": "0" * 64,
        "code_size": 1,
        "layers": ("arn:lamina:runtime:php-82",),
        **config,
    }
    return DeployedFunction(FunctionConfig(**fields), code, None)  # type: ignore[arg-type]


def _launcher(tmp_path: Path) -> Launcher:
    return Launcher(Settings(home=tmp_path / "home"), Account(), "http://127.0.0.1:1")


@pytest.fixture
def php_8_2(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """This machine has /usr/bin/php8.2 only; returns the versions asked for."""
    asked: list[str | None] = []

    def find(version: str | None = None) -> php.PhpBinary:
        asked.append(version)
        return php.PhpBinary("/usr/bin/php8.2", "8.2")

    monkeypatch.setattr(php, "find_php", find)
    return asked


def test_a_php_function_runs_lamina_s_bootstrap_on_the_php_it_asks_for(
    tmp_path: Path, php_8_2: list[str | None]
) -> None:
    launch = _launcher(tmp_path).launch(_deployed(tmp_path))

    assert launch.argv == ("/usr/bin/php8.2", str(php.BOOTSTRAP_PATH), "function")
    assert php_8_2 == ["8.2"]
    env = launch.env
    assert env["PHPRC"] == str(php.INI_PATH)
    assert env["PHP_INI_SCAN_DIR"] == f":{tmp_path / 'code' / 'php' / 'conf.d'}"
    assert env["BREF_PING_DISABLE"] == "1"
    assert env["BREF_RUNTIME"] == "Bref\\FunctionRuntime\\Main"
    assert env["LAMBDA_TASK_ROOT"] == str(tmp_path / "code")
    assert env["LAMBDA_RUNTIME_DIR"] == str(php.RUNTIME_DIR)
    assert env["_HANDLER"] == "index.php"
    assert "AWS_EXECUTION_ENV" not in env  # a provided runtime, as on Lambda


def test_bref_layers_and_settings_choose_the_console_kind(
    tmp_path: Path, php_8_2: list[str | None]
) -> None:
    launcher = _launcher(tmp_path)
    layers = (BREF_V2_LAYER, "arn:aws:lambda:eu-west-3:534081306603:layer:console:60")

    console = launcher.launch(_deployed(tmp_path, layers=layers))
    bref_3 = launcher.launch(
        _deployed(
            tmp_path,
            runtime="provided.al2023",
            layers=("arn:aws:lambda:us-east-1:873528684822:layer:php-84:5",),
            environment={"BREF_RUNTIME": "console"},
        )
    )

    assert console.argv[-1] == bref_3.argv[-1] == "console"
    assert console.env["BREF_RUNTIME"] == "Bref\\ConsoleRuntime\\Main"
    assert bref_3.env["BREF_RUNTIME"] == "console"  # the function's own value stays
    assert php_8_2 == ["8.2", "8.4"]


def test_the_function_s_variables_win_over_bref_s_defaults(
    tmp_path: Path, php_8_2: list[str | None]
) -> None:
    environment = {"BREF_PING_DISABLE": "0", "BREF_LOOP_MAX": "1"}

    env = _launcher(tmp_path).launch(_deployed(tmp_path, environment=environment)).env

    assert (env["BREF_PING_DISABLE"], env["BREF_LOOP_MAX"]) == ("0", "1")


def test_without_php_the_function_has_no_entrypoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(php, "find_php", lambda version=None: None)

    with pytest.raises(EntrypointMissing) as missing:
        _launcher(tmp_path).launch(_deployed(tmp_path))

    assert "/usr/bin/php8.2" in missing.value.looked_at


def test_a_deployment_is_warned_once_of_a_php_version_the_machine_lacks(
    php_8_2: list[str | None],
) -> None:
    choice = RuntimeChoice("php-function", "8.4")

    lines = php_launch.warnings(
        [("site-dev-a", choice), ("site-dev-b", choice), ("ok", RuntimeChoice("python"))]
    )

    assert lines == [
        "functions site-dev-a, site-dev-b ask for PHP 8.4; the Lamina server runs them on "
        "PHP 8.2 (/usr/bin/php8.2), as it has no php8.4 "
        "(to match: sudo apt-get install php8.4-cli)"
    ]
    assert php_launch.warnings([("a", RuntimeChoice("php-console", "8.2"))]) == []


def test_a_deployment_is_warned_when_php_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(php, "find_php", lambda version=None: None)

    lines = php_launch.warnings([("a", RuntimeChoice("php-function", "8.3"))])

    assert lines == [
        "php is not installed on the Lamina server: functions a cannot start "
        "(install it: sudo apt-get install php8.3-cli)"
    ]


def test_find_php_prefers_the_version_then_php_then_the_newest(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("php7.4", "php8.1", "php8.3"):
        binary = folder / name
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    dirs = (str(folder),)

    assert php.find_php("8.1", dirs) == php.PhpBinary(str(folder / "php8.1"), "8.1")
    assert php.find_php("8.4", dirs) == php.PhpBinary(str(folder / "php8.3"), "8.3")
    os.symlink(folder / "php7.4", folder / "php")
    php._find.cache_clear()
    assert php.find_php("8.4", dirs) == php.PhpBinary(str(folder / "php"), "7.4")
    assert php.find_php(None, (str(tmp_path / "none"),)) is None


async def test_functions_take_bref_s_layers_without_storing_them(tmp_path: Path) -> None:
    async with service(tmp_path) as (_, functions):
        settings = {"runtime": "provided.al2", "handler": "index.php"}
        config = functions.create(
            "web",
            V1,
            {**settings, "layers": [BREF_V2_LAYER, "arn:lamina:runtime:php-82-fpm"]},
        )

        deployed = functions.deployed(config)

        assert config.layers == (BREF_V2_LAYER, "arn:lamina:runtime:php-82-fpm")
        assert deployed.opt_root is None  # nothing of them is merged into /opt
        with pytest.raises(InvalidParameterValueException, match="does not exist"):
            functions.create(
                "other",
                V1,
                {**settings, "layers": ["arn:aws:lambda:eu-west-3:111111111111:layer:php-82:1"]},
            )
