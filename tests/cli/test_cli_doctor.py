"""`lamina doctor`: the runtimes this machine has, the sandbox in force, the data directory
and the endpoint; with what is missing and how to install it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import Result

from lamina import sandbox
from lamina.runtimes import php

if TYPE_CHECKING:
    from conftest import FakeControlApi

Lamina = Callable[..., Result]


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, php.PhpBinary | None]:
    """A machine with PHP 8.3's CLI and FPM in tmp_path (scripts answering `-v`)."""
    found: dict[str, php.PhpBinary | None] = {}
    for name, sapi in (("php8.3", "cli"), ("php-fpm8.3", "fpm-fcgi")):
        binary = tmp_path / name
        binary.write_text(f"#!/bin/sh\necho 'PHP 8.3.9 ({sapi}) (built: today)'\n")
        binary.chmod(0o755)
        found[name] = php.PhpBinary(str(binary), "8.3")
    monkeypatch.setattr(php, "find_php", lambda version=None: found["php8.3"])
    monkeypatch.setattr(php, "find_php_fpm", lambda version=None: found["php-fpm8.3"])
    monkeypatch.setattr(
        sandbox, "describe", lambda mode="auto": ["sandbox driver: test", "  off: nothing"]
    )
    return found


def test_doctor_reports_runtimes_sandbox_data_and_a_live_endpoint(
    control_api: FakeControlApi, lamina: Lamina, machine: dict[str, object], tmp_path: Path
) -> None:
    result = lamina("doctor", env={"LAMINA_HOME": str(tmp_path)})

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Runtimes\n" in out and "Platform\n" in out and "Endpoint\n" in out
    assert f"✔ PHP CLI     {tmp_path / 'php8.3'} (PHP 8.3.9)" in out
    assert f"✔ PHP-FPM     {tmp_path / 'php-fpm8.3'} (PHP 8.3.9)" in out
    assert "python3.11" in out
    assert "✔ sandbox  test\n    off: nothing\n" in out
    assert f"✔ data     {tmp_path}" in out
    assert f"✔ server  Lamina answers at {control_api.endpoint}" in out
    assert "apt-get" not in out
    assert [r.path for r in control_api.requests] == ["/health"]


def test_doctor_says_what_is_missing_and_how_to_install_it(
    lamina: Lamina, machine: dict[str, object], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(php, "find_php", lambda version=None: None)
    monkeypatch.setattr(php, "find_php_fpm", lambda version=None: None)
    monkeypatch.setattr(
        sandbox,
        "describe",
        lambda mode="auto": ["sandbox driver: plain processes: NO ISOLATION"],
    )
    home = tmp_path / "not-yet"

    result = lamina("--endpoint", "http://127.0.0.1:9", "doctor", env={"LAMINA_HOME": str(home)})

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "✘ PHP CLI     not installed: Bref's php-8x and php-8x-console functions" in out
    assert "✘ PHP-FPM     not installed: Bref's php-8x-fpm functions cannot run" in out
    assert "! sandbox  plain processes: NO ISOLATION" in out
    assert f"! data     {home} (created by the first `lamina up`)" in out
    assert "! server  nothing answers at http://127.0.0.1:9 (start one: lamina up)" in out
    assert out.endswith(
        "To install what is missing:\n  sudo apt-get install php8.2-cli php8.2-fpm\n"
    )
