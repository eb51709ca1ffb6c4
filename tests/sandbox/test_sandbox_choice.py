"""Which driver LAMINA_SANDBOX gives, and what `describe()` says about it."""

from __future__ import annotations

from pathlib import Path

import pytest

import lamina.sandbox as sandbox
from lamina.config import Settings
from lamina.sandbox import detect
from lamina.sandbox.cgroups import Layout
from lamina.sandbox.plain import PlainSandboxDriver

UNSUPPORTED = detect.Support(None, ("Lamina is not running as root",))
SUPPORTED = detect.Support(Layout("v1", {"memory": "/m", "cpu": "/c", "pids": "/p"}))


def settings(mode: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, sandbox=mode)


def test_plain_is_plain_and_says_what_is_off(tmp_path: Path) -> None:
    assert isinstance(sandbox.default_driver(settings("plain", tmp_path)), PlainSandboxDriver)
    lines = sandbox.describe("plain")
    assert lines[0].startswith("sandbox driver: plain processes (LAMINA_SANDBOX=plain)")
    assert any("memory limit" in line for line in lines if line.startswith("  off: "))


def test_auto_falls_back_to_plain_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(detect, "support", lambda: UNSUPPORTED)
    assert isinstance(sandbox.default_driver(settings("auto", tmp_path)), PlainSandboxDriver)
    lines = sandbox.describe("auto")
    assert "NO ISOLATION" in lines[0]
    assert "  why: Lamina is not running as root" in lines
    assert any(line.startswith("  off: own file system view") for line in lines)


def test_linux_refuses_to_start_where_it_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(detect, "support", lambda: UNSUPPORTED)
    with pytest.raises(sandbox.SandboxUnavailable, match="not running as root"):
        sandbox.default_driver(settings("linux", tmp_path))


def test_the_linux_description_lists_the_isolation_in_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(detect, "support", lambda: SUPPORTED)
    text = "\n".join(sandbox.describe("linux"))
    assert text.startswith("sandbox driver: linux")
    for phrase in ("mount, pid, ipc, uts", "/var/task", "uid 993", "seccomp", "cgroup v1"):
        assert phrase in text


def test_describe_defaults_to_the_configured_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_SANDBOX", "plain")
    assert sandbox.describe() == sandbox.describe("plain")


def test_an_unknown_mode_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LAMINA_SANDBOX = 'docker': must be one of auto"):
        sandbox.default_driver(settings("docker", tmp_path))
