"""What a sandbox's file system shows of the host, decided from a fake host root."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

import lamina.runtimes
from lamina.sandbox import rootfs, seccomp
from lamina.sandbox.remap import is_inside


def fake_host(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "lib64").mkdir()  # a real directory: bound
    os.symlink("usr/bin", root / "bin")  # merged /usr: recreated as a link
    (root / "etc" / "ssl").mkdir(parents=True)
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (root / "etc" / "shadow").write_text("root:*:::\n")
    os.symlink("/nowhere/resolv.conf", root / "etc" / "resolv.conf")  # dangling
    return root


def test_system_directories_and_a_few_etc_files_are_shown(tmp_path: Path) -> None:
    root = fake_host(tmp_path)
    binds, links = rootfs.system_mounts(str(root))
    assert ["/usr", "/usr"] in binds
    assert [str(root / "lib64"), "/lib64"] in binds
    assert links == [["usr/bin", "/bin"]]
    shown = {target for _, target in binds}
    assert {"/etc/hosts", "/etc/ssl"} <= shown
    assert "/etc/shadow" not in shown
    assert "/etc/resolv.conf" not in shown  # dangling on this host


def test_the_data_directory_is_masked_when_something_shown_contains_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = tmp_path / "python"
    (shown / "lamina-home").mkdir(parents=True)
    monkeypatch.setattr(rootfs, "runtime_dirs", lambda: [str(shown)])
    inside = rootfs.jail_config(shown / "lamina-home", tmp_path / "root")
    assert inside["masks"] == [str(shown / "lamina-home")]
    elsewhere = rootfs.jail_config(tmp_path / "home", tmp_path / "root")
    assert elsewhere["masks"] == []


def test_nested_runtime_directories_are_bound_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = tmp_path / "venv"
    monkeypatch.setattr(rootfs, "runtime_dirs", lambda: [str(outer / "lib"), str(outer), "/usr"])
    binds = rootfs.jail_config(tmp_path / "home", tmp_path / "root")["binds"]
    assert [str(outer), str(outer)] in binds
    assert [str(outer / "lib"), str(outer / "lib")] not in binds
    assert binds.count(["/usr", "/usr"]) == 1


def test_the_configuration_carries_lambdas_user_and_the_filter(tmp_path: Path) -> None:
    config = rootfs.jail_config(tmp_path / "home", tmp_path / "root")
    assert (config["uid"], config["gid"], config["user"]) == (993, 993, "sbx_user1051")
    assert config["tmp_bytes"] == 512 * 1024 * 1024
    assert [base64.b64decode(stage) for stage in config["seccomp"]] == list(seccomp.stages())
    runtimes = Path(lamina.runtimes.__file__).resolve().parent
    assert is_inside(runtimes, [source for source, _ in config["binds"]])
