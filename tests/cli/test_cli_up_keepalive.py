"""`lamina up --keep-alive-policy` and `LAMINA_KEEP_ALIVE_POLICY`: the setting reaches the
platform, and anything but fixed or hybrid is refused naming the variable and the values."""

from __future__ import annotations

import sys
import types

import pytest
from typer.testing import CliRunner

from lamina.cli.main import app
from lamina.config import Settings


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Stands in for `lamina.app`, which `up` loads only when it runs."""
    runs: list[Settings] = []
    module = types.ModuleType("lamina.app")
    module.run = runs.append  # type: ignore[attr-defined]
    module.AlreadyRunning = type("AlreadyRunning", (Exception,), {})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lamina.app", module)
    return runs


def test_the_default_policy_is_fixed() -> None:
    assert Settings.from_env({}).keep_alive_policy == "fixed"


def test_the_variable_and_the_flag_choose_the_policy(
    started: list[Settings], clean_env: dict[str, str | None]
) -> None:
    env = {**clean_env, "LAMINA_KEEP_ALIVE_POLICY": "hybrid"}
    by_env = CliRunner().invoke(app, ["up"], env=env)
    by_flag = CliRunner().invoke(app, ["up", "--keep-alive-policy", "fixed"], env=env)

    assert (by_env.exit_code, by_flag.exit_code) == (0, 0), by_env.output + by_flag.output
    assert [s.keep_alive_policy for s in started] == ["hybrid", "fixed"]


@pytest.mark.parametrize("where", ["env", "flag"])
def test_an_unknown_policy_is_refused_naming_the_allowed_ones(
    started: list[Settings], clean_env: dict[str, str | None], where: str
) -> None:
    if where == "env":
        result = CliRunner().invoke(
            app, ["up"], env={**clean_env, "LAMINA_KEEP_ALIVE_POLICY": "lru"}
        )
    else:
        result = CliRunner().invoke(app, ["up", "--keep-alive-policy", "lru"], env=clean_env)

    assert result.exit_code == 1
    assert result.stderr == (
        "error: LAMINA_KEEP_ALIVE_POLICY (--keep-alive-policy) = 'lru': "
        "must be one of fixed, hybrid\n"
    )
    assert started == []
