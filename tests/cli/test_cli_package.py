from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from lamina.cli.package import DEFAULT_EXCLUDES, build_zip, is_excluded, package_service


def _tree(root: Path, files: dict[str, str]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def _names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


@pytest.fixture
def service(tmp_path: Path) -> Path:
    _tree(
        tmp_path,
        {
            "serverless.yml": "service: shop\n",
            "handler.py": "def main(event, context): return event\n",
            "lib/util.py": "X = 1\n",
            "lib/__pycache__/util.cpython-311.pyc": "bytecode",
            "stray.pyc": "bytecode",
            "bin/bootstrap": "#!/bin/sh\nexec python3 handler.py\n",
            ".git/HEAD": "ref: refs/heads/main\n",
            ".gitignore": "*.pyc\n",
            ".DS_Store": "finder",
            "lib/.DS_Store": "finder",
            ".serverless/old.zip": "old",
            "node_modules/.cache/x": "cache",
            "node_modules/dep/index.js": "module.exports = 1\n",
            "npm-debug.log": "log",
            ".env": "SECRET=1\n",
        },
    )
    (tmp_path / "bin/bootstrap").chmod(0o755)
    return tmp_path


def test_default_excludes_as_serverless_plus_python_caches(service: Path) -> None:
    data, count = build_zip(service, ["serverless.yml"])

    assert _names(data) == [
        ".env",
        "bin/bootstrap",
        "handler.py",
        "lib/util.py",
        "node_modules/dep/index.js",
    ]
    assert count == 5


def test_same_tree_gives_same_bytes_whatever_the_mtimes_and_umask(service: Path) -> None:
    first, _ = build_zip(service)
    os.utime(service / "handler.py", (1_000_000_000, 1_000_000_000))
    (service / "lib/util.py").chmod(0o600)

    second, _ = build_zip(service)

    assert first == second


def test_a_changed_file_changes_the_bytes(service: Path) -> None:
    first, _ = build_zip(service)
    (service / "handler.py").write_text("def main(event, context): return 1\n")

    assert build_zip(service)[0] != first


def test_executables_stay_executable_and_timestamps_are_fixed(service: Path) -> None:
    data, _ = build_zip(service)
    entries = {i.filename: i for i in zipfile.ZipFile(io.BytesIO(data)).infolist()}

    bootstrap = entries["bin/bootstrap"].external_attr >> 16
    handler = entries["handler.py"].external_attr >> 16
    assert stat.S_ISREG(bootstrap) and stat.S_IMODE(bootstrap) == 0o755
    assert stat.S_IMODE(handler) == 0o644
    assert {i.date_time for i in entries.values()} == {(1980, 1, 1, 0, 0, 0)}


def test_package_service_writes_the_artifact_without_packaging_itself(service: Path) -> None:
    artifact = package_service(service, "shop", service / "serverless.yml")
    again = package_service(service, "shop", service / "serverless.yml")

    assert artifact.path == service / ".serverless" / "shop.zip"
    assert artifact.path.read_bytes() == artifact.data
    assert "serverless.yml" not in _names(artifact.data)
    assert again.data == artifact.data  # the previous artifact is not packaged
    assert len(artifact.sha256) == 44 and artifact.sha256.endswith("=")


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        (".git/", True),
        (".git/objects/ab", True),
        (".gitignore", True),
        ("sub/.gitignore", False),  # as in Serverless, only at the root
        ("a/b/__pycache__/", True),
        ("__pycache__/", True),
        ("a/b.pyc", True),
        ("a/b.py", False),
        ("yarn-error.log", True),
        ("logs/yarn-error.log", False),
    ],
)
def test_glob_semantics(path: str, excluded: bool) -> None:
    assert is_excluded(path, DEFAULT_EXCLUDES) is excluded
