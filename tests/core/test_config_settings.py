from __future__ import annotations

from pathlib import Path

import pytest

from lamina.config import Settings


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.control_port == 8081
    assert settings.region == "us-east-1"
    assert settings.account_id == "000000000000"
    assert settings.keep_alive == 600.0
    assert settings.concurrency == 1000
    assert settings.init_timeout == 10.0
    assert settings.home == Path("~/.lamina").expanduser()
    assert settings.database == settings.home / "lamina.db"


def test_lamina_variables_override_defaults_with_their_types() -> None:
    settings = Settings.from_env(
        {
            "LAMINA_HOME": "/srv/lamina",
            "LAMINA_HOST": "0.0.0.0",
            "LAMINA_PORT": "9000",
            "LAMINA_CONTROL_PORT": "9001",
            "LAMINA_REGION": "eu-west-1",
            "LAMINA_ACCOUNT_ID": "123456789012",
            "LAMINA_KEEP_ALIVE": "1.5",
            "LAMINA_CONCURRENCY": "50",
            "LAMINA_MEMORY_BUDGET": "2048",
            "LAMINA_INIT_TIMEOUT": "3",
        }
    )
    assert settings == Settings(
        home=Path("/srv/lamina"),
        host="0.0.0.0",
        port=9000,
        control_port=9001,
        region="eu-west-1",
        account_id="123456789012",
        keep_alive=1.5,
        concurrency=50,
        memory_budget=2048,
        init_timeout=3.0,
    )
    assert isinstance(settings.port, int)
    assert isinstance(settings.init_timeout, float)
    assert isinstance(settings.home, Path)
    assert settings.memory_budget_mb == 2048
    assert settings.database == Path("/srv/lamina/lamina.db")


def test_empty_and_unrelated_variables_are_ignored() -> None:
    settings = Settings.from_env({"LAMINA_PORT": "", "PORT": "1", "lamina_port": "2"})
    assert settings.port == 8080


def test_overrides_win_over_the_environment() -> None:
    settings = Settings.from_env(
        {"LAMINA_PORT": "9000", "LAMINA_REGION": "eu-west-1"}, port=7000, concurrency=5
    )
    assert settings.port == 7000
    assert settings.region == "eu-west-1"
    assert settings.concurrency == 5


def test_none_overrides_are_ignored() -> None:
    settings = Settings.from_env({"LAMINA_PORT": "9000"}, port=None, region=None)
    assert settings.port == 9000
    assert settings.region == "us-east-1"


def test_home_is_expanded_from_env_and_overrides() -> None:
    home = Path("~").expanduser()
    assert Settings.from_env({"LAMINA_HOME": "~/data"}).home == home / "data"
    assert Settings.from_env({}, home="~/other").home == home / "other"
    assert Settings.from_env({}, home=Path("~/p")).home == home / "p"


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_CONTROL_PORT", "18081")
    assert Settings.from_env().control_port == 18081


@pytest.mark.parametrize(
    ("variable", "raw"),
    [("LAMINA_PORT", "http"), ("LAMINA_PORT", "80.5"), ("LAMINA_KEEP_ALIVE", "ten")],
)
def test_bad_number_names_the_variable_and_value(variable: str, raw: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings.from_env({variable: raw})
    assert str(caught.value) == f"{variable} = {raw!r}: must be a number"


def test_memory_budget_zero_means_most_of_the_ram() -> None:
    budget = Settings(memory_budget=0).memory_budget_mb
    assert budget > 0
    assert Settings(memory_budget=512).memory_budget_mb == 512
