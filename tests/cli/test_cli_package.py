from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from lamina.cli.package import (
    DEFAULT_EXCLUDES,
    PackagingError,
    build_zip,
    is_excluded,
    is_included,
    package_service,
)
from lamina.wire.serverless import parse_service


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
    data, count = build_zip(service, ["!serverless.yml"])

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


SERVICE = """\
service: shop
provider:
  name: aws
  runtime: python3.12
functions:
  api:
    handler: handler.main
  worker:
    handler: lib/util.main
"""


def _package(root: Path, text: str = SERVICE) -> dict[str, list[str]]:
    (root / "serverless.yml").write_text(text)
    packages = package_service(root, parse_service(text), root / "serverless.yml")
    return {
        **{key: _names(a.data) for key, a in packages.functions.items()},
        **{f"layer:{key}": _names(a.data) for key, a in packages.layers.items()},
    }


def test_package_service_writes_the_artifact_without_packaging_itself(service: Path) -> None:
    config = service / "serverless.yml"
    config.write_text(SERVICE)
    packages = package_service(service, parse_service(SERVICE), config)
    again = package_service(service, parse_service(SERVICE), config)

    artifact = packages.functions["api"]
    assert packages.functions["worker"] is artifact  # one zip for the service
    assert packages.bundles() == [artifact]
    assert artifact.path == service / ".serverless" / "shop.zip"
    assert artifact.path.read_bytes() == artifact.data
    assert "serverless.yml" not in _names(artifact.data)
    assert again.functions["api"].data == artifact.data  # the previous artifact is not packaged
    assert len(artifact.sha256) == 44 and artifact.sha256.endswith("=")
    assert artifact.sha256_hex == hashlib.sha256(artifact.data).hexdigest()


def test_patterns_apply_in_order_and_later_ones_reinclude(service: Path) -> None:
    text = SERVICE + (
        "package:\n"
        "  patterns:\n"
        "    - '!node_modules/**'\n"
        "    - node_modules/dep/index.js\n"  # back in
        "    - '!lib'\n"  # a directory: everything under it
        "    - '!**/*.md'\n"
        "    - .gitignore\n"  # even a default exclude can come back
    )
    (service / "docs").mkdir()
    (service / "docs" / "guide.md").write_text("# guide")

    names = _package(service, text)

    assert names["api"] == [
        ".env",
        ".gitignore",
        "bin/bootstrap",
        "handler.py",
        "node_modules/dep/index.js",
    ]


def test_only_what_is_named_after_excluding_everything(service: Path) -> None:
    text = SERVICE + "package:\n  patterns: ['!**', 'handler.py', 'lib/*.py']\n"

    assert _package(service, text)["api"] == ["handler.py", "lib/util.py"]


def test_a_broad_reinclude_brings_back_default_excludes_too(service: Path) -> None:
    # As in Serverless: the defaults are the first patterns, not a final filter.
    text = SERVICE + "package:\n  patterns: ['!**', 'lib/**']\n"

    assert _package(service, text)["api"] == [
        "lib/.DS_Store",
        "lib/__pycache__/util.cpython-311.pyc",
        "lib/util.py",
    ]


def test_individually_gives_each_function_its_own_zip(service: Path) -> None:
    text = (
        SERVICE.replace(
            "    handler: lib/util.main\n",
            "    handler: lib/util.main\n    package:\n      patterns: ['!handler.py']\n",
        )
        + "package:\n  individually: true\n  patterns: ['!node_modules/**', '!bin/**']\n"
    )

    names = _package(service, text)

    assert names["api"] == [".env", "handler.py", "lib/util.py"]
    assert names["worker"] == [".env", "lib/util.py"]
    assert (service / ".serverless" / "api.zip").is_file()
    assert (service / ".serverless" / "worker.zip").is_file()


def test_use_dotenv_keeps_env_files_out(service: Path) -> None:
    (service / ".env.prod").write_text("X=1\n")

    names = _package(service, "useDotenv: true\n" + SERVICE)

    assert not [n for n in names["api"] if n.startswith(".env")]


def test_artifacts_are_used_as_given(service: Path) -> None:
    prebuilt = service / "dist" / "app.zip"
    prebuilt.parent.mkdir()
    with zipfile.ZipFile(prebuilt, "w") as archive:
        archive.writestr("app.py", "x = 1\n")
    text = SERVICE.replace(
        "    handler: lib/util.main\n",
        "    handler: lib/util.main\n    package:\n      artifact: dist/app.zip\n",
    )
    config = service / "serverless.yml"
    config.write_text(text)

    packages = package_service(service, parse_service(text), config)

    assert packages.functions["worker"].data == prebuilt.read_bytes()
    assert packages.functions["worker"].path == prebuilt
    assert "app.py" not in _names(packages.functions["api"].data)


def test_a_service_artifact_serves_every_function(service: Path) -> None:
    (service / "app.zip").write_bytes(b"not a zip")
    text = SERVICE + "package:\n  artifact: app.zip\n"
    config = service / "serverless.yml"
    config.write_text(text)

    with pytest.raises(PackagingError) as caught:
        package_service(service, parse_service(text), config)

    assert str(caught.value) == "package.artifact = 'app.zip': not a zip file"


def test_layers_are_zipped_from_their_directory_and_left_out_of_functions(
    service: Path,
) -> None:
    (service / "layers" / "deps" / "python").mkdir(parents=True)
    (service / "layers" / "deps" / "python" / "dep.py").write_text("D = 1\n")
    (service / "layers" / "deps" / "README.md").write_text("deps")
    text = SERVICE + (
        "layers:\n  deps:\n    path: ./layers/deps\n    package:\n      patterns: ['!*.md']\n"
    )

    names = _package(service, text)

    assert names["layer:deps"] == ["python/dep.py"]
    assert not [n for n in names["api"] if n.startswith("layers/")]
    assert (service / ".serverless" / "layer-deps.zip").is_file()


def test_a_layer_without_its_directory(service: Path) -> None:
    text = SERVICE + "layers:\n  deps:\n    path: missing\n"
    config = service / "serverless.yml"
    config.write_text(text)

    with pytest.raises(PackagingError) as caught:
        package_service(service, parse_service(text), config)

    assert str(caught.value) == "layers.deps.path = 'missing': no such directory"


@pytest.mark.parametrize(
    ("path", "patterns", "included"),
    [
        ("a.py", [], True),
        ("a.py", ["!*.py"], False),
        ("a.py", ["!*.py", "a.py"], True),
        ("a.py", ["a.py", "!*.py"], False),
        ("sub/a.py", ["!*.py"], True),  # `*` stays in one directory
        ("sub/a.py", ["!**/*.py"], False),
        ("tests/x/a.py", ["!tests"], False),
        ("tests/x/a.py", ["!tests/"], False),
        ("tests/x/a.py", ["!tests/**", "tests/x/**"], True),
        ("./a.py", ["!./a.py"], True),  # paths are never written with ./
        ("a.py", ["!./a.py"], False),  # but patterns may be
    ],
)
def test_pattern_semantics(path: str, patterns: list[str], included: bool) -> None:
    assert is_included(path, patterns) is included


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
