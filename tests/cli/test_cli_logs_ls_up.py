from __future__ import annotations

import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner, Result

from lamina.cli.main import app
from lamina.config import Settings

if TYPE_CHECKING:
    from conftest import FakeControlApi

Lamina = Callable[..., Result]

T0 = 1_714_557_600_000  # 2024-05-01T10:00:00Z


def _event(id: int, message: str, offset_ms: int = 0) -> dict[str, object]:
    return {
        "id": id,
        "timestamp": T0 + offset_ms,
        "stream": "2024/05/01/[$LATEST]ab",
        "message": message,
    }


def test_logs_prints_timestamped_lines(control_api: FakeControlApi, lamina: Lamina) -> None:
    control_api.log_pages = [
        {
            "events": [
                _event(7, "START RequestId: r1 Version: $LATEST\n"),
                _event(8, "hello [not markup]\n", 5),
                _event(9, "END RequestId: r1\n", 6),
            ],
            "last": 9,
        }
    ]

    result = lamina("logs", "-f", "fn", "--since", "1714557000000")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2024-05-01T10:00:00.000Z START RequestId: r1 Version: $LATEST",
        "2024-05-01T10:00:00.005Z hello [not markup]",
        "2024-05-01T10:00:00.006Z END RequestId: r1",
    ]
    [call] = control_api.calls("GET", "/lamina/v1/logs")
    assert call.query == {"function": "fn", "since": "1714557000000"}


def test_logs_tail_follows_last_until_ctrl_c(
    control_api: FakeControlApi, lamina: Lamina, monkeypatch: pytest.MonkeyPatch
) -> None:
    control_api.log_pages = [
        {"events": [_event(1, "one")], "last": 1},
        {"events": [], "last": 1},
        {"events": [_event(2, "two", 1000)], "last": 2},
    ]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", sleep)  # the only sleeper in this test

    result = lamina("logs", "-f", "fn", "--tail")

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "2024-05-01T10:00:00.000Z one",
        "2024-05-01T10:00:01.000Z two",
    ]
    assert result.stderr == ""
    assert sleeps == [1.0, 1.0, 1.0]
    queries = [c.query for c in control_api.calls("GET", "/lamina/v1/logs")]
    assert "since" in queries[0] and "after" not in queries[0]
    assert [q.get("after") for q in queries[1:]] == ["1", "1"]


def test_logs_bad_since_is_one_line(lamina: Lamina) -> None:
    result = lamina("logs", "-f", "fn", "--since", "soon")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: --since 'soon': expected a duration")


def test_ls_shows_a_table_of_functions(control_api: FakeControlApi, lamina: Lamina) -> None:
    control_api.add_function("shop-dev-b", CodeSize=2048, MemorySize=1024, Timeout=6)
    control_api.add_function("shop-dev-a", Handler="public/index.php", Runtime="provided.al2023")

    result = lamina("ls")

    assert result.exit_code == 0, result.output
    header, first, second = result.stdout.splitlines()
    assert header.split() == [
        "name",
        "runtime",
        "handler",
        "memory",
        "timeout",
        "code",
        "modified",
        "(UTC)",
    ]
    assert first.split() == [
        "shop-dev-a",
        "provided.al2023",
        "public/index.php",
        "128",
        "MB",
        "3",
        "s",
        "10",
        "B",
        "2024-05-01",
        "10:00",
    ]
    assert second.split()[:2] == ["shop-dev-b", "python3.12"]
    assert "2.0 KB" in second


def test_ls_without_functions_says_so(lamina: Lamina) -> None:
    result = lamina("ls")

    assert result.exit_code == 0
    assert "No functions" in result.stderr


@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Stands in for `lamina.app`, which `up` loads only when it runs."""
    started: list[Settings] = []
    module = types.ModuleType("lamina.app")
    module.run = started.append  # type: ignore[attr-defined]
    module.AlreadyRunning = type("AlreadyRunning", (Exception,), {})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lamina.app", module)
    return started


def test_up_builds_settings_from_flags_over_env(
    fake_app: list[Settings], clean_env: dict[str, str | None], tmp_path: Path
) -> None:
    env = {**clean_env, "LAMINA_PORT": "9000", "LAMINA_KEEP_ALIVE": "30", "LAMINA_HOST": None}

    result = CliRunner().invoke(
        app, ["up", "--home", str(tmp_path), "--control-port", "9001"], env=env
    )

    assert result.exit_code == 0, result.output
    [settings] = fake_app
    assert settings.home == tmp_path
    assert (settings.host, settings.port, settings.control_port) == ("127.0.0.1", 9000, 9001)
    assert settings.keep_alive == 30.0


def test_up_reports_a_bad_environment_variable(
    fake_app: list[Settings], clean_env: dict[str, str | None]
) -> None:
    result = CliRunner().invoke(app, ["up"], env={**clean_env, "LAMINA_PORT": "eighty"})

    assert result.exit_code == 1
    assert result.stderr == "error: LAMINA_PORT = 'eighty': must be a number\n"
    assert fake_app == []


def test_lamina_up_raises_its_open_file_limit_to_the_hard_limit() -> None:
    import resource

    from lamina.app import raise_file_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        assert raise_file_limit() == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
