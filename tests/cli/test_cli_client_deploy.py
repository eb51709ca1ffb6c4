"""The client's deployment and SSM calls, the upload progress bar, and how `lamina deploy`
tells its own words from options for `${opt:...}`."""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING

import pytest
from rich.console import Console

from lamina.cli.client import ControlApiError, ControlClient
from lamina.cli.commands.deploy import _split, upload_bundles
from lamina.cli.commands.info import print_stack, when
from lamina.cli.package import Artifact
from lamina.cli.project import Identity, Options, extra_options
from lamina.cli.shared import CliError, CliState

if TYPE_CHECKING:
    from conftest import FakeDeployApi


def test_bundles_are_asked_for_then_uploaded_with_progress(deploy_api: FakeDeployApi) -> None:
    client = ControlClient(deploy_api.endpoint)
    data = bytes(range(256)) * 1000
    sha = hashlib.sha256(data).hexdigest()
    sent: list[int] = []

    assert client.has_bundle(sha) is False
    client.put_bundle(sha, data, sent.append)

    assert client.has_bundle(sha) is True
    assert deploy_api.bundles[sha] == data
    assert sum(sent) == len(data) and len(sent) > 1
    put = deploy_api.calls("PUT")[0]
    assert put.headers["content-length"] == str(len(data))


def test_a_bundle_that_does_not_match_its_name_is_refused(deploy_api: FakeDeployApi) -> None:
    with pytest.raises(ControlApiError) as caught:
        ControlClient(deploy_api.endpoint).put_bundle("0" * 64, b"zip")

    assert (caught.value.status, caught.value.code) == (400, "InvalidParameterValueException")


def test_get_parameter(deploy_api: FakeDeployApi) -> None:
    deploy_api.put_parameter("/a", "b", "SecureString")
    client = ControlClient(deploy_api.endpoint)

    assert client.get_parameter("/a") == {
        "Name": "/a",
        "Type": "SecureString",
        "Value": "b",
        "Version": 1,
    }
    assert client.get_parameter("/missing") is None
    assert deploy_api.requests[0].json() == {"Name": "/a", "WithDecryption": True}


def test_large_uploads_draw_a_progress_bar_on_a_terminal(deploy_api: FakeDeployApi) -> None:
    screen = io.StringIO()
    state = CliState(
        endpoint=deploy_api.endpoint,
        out=Console(file=io.StringIO()),
        err=Console(file=screen, force_terminal=True, width=100),
    )
    big = Artifact(path=None, data=b"x" * (2 * 1024 * 1024), files=1)
    small = Artifact(path=None, data=b"y", files=1)
    client = ControlClient(deploy_api.endpoint)
    client.put_bundle(small.sha256_hex, small.data)

    assert upload_bundles(state, client, [big, small]) == 1
    assert "Uploading" in screen.getvalue()
    assert set(deploy_api.bundles) == {big.sha256_hex, small.sha256_hex}


@pytest.mark.parametrize(
    ("args", "action", "rest"),
    [
        ([], None, []),
        (["list"], "list", []),
        (["function"], "function", []),
        (["--foo", "bar", "list"], "list", ["--foo", "bar"]),
        (["--verbose", "list"], "list", ["--verbose"]),
        (["--a=b", "function", "--flag"], "function", ["--a=b", "--flag"]),
    ],
)
def test_split_deploy_arguments(args: list[str], action: str | None, rest: list[str]) -> None:
    assert _split(args) == (action, rest)


def test_extra_options_become_opt_variables() -> None:
    extra = extra_options(["--foo", "bar", "--a=b=c", "--flag", "-x", "1"])

    assert extra == (("foo", "bar"), ("a", "b=c"), ("flag", True), ("x", "1"))
    options = Options(stage="prod", params=("k=v",), extra=extra)
    assert options.as_variables() == {
        "foo": "bar",
        "a": "b=c",
        "flag": True,
        "x": "1",
        "stage": "prod",
        "param": ["k=v"],
    }
    assert options.parsed_params() == {"k": "v"}
    with pytest.raises(CliError):
        extra_options(["stray"])


def test_stacks_render_like_sls_info() -> None:
    out = io.StringIO()
    state = CliState(endpoint="", out=Console(file=out, width=200), err=Console(file=out))
    stack = {
        "stack": {
            "service": "shop",
            "stage": "dev",
            "region": "eu-west-1",
            "deployment": {"id": 4},
            "created": 1714557600,
            "endpoints": [
                {"kind": "httpApi", "method": "ANY", "path": "$default", "url": "http://h/"},
                {"kind": "alb", "method": "ANY", "path": "", "url": "http://h:8080"},
            ],
            "functions": [{"key": "api", "name": "shop-dev-api", "version": "$LATEST"}],
            "layers": [{"key": "libs", "arn": "arn:aws:lambda:eu-west-1:0:layer:libs:2"}],
        }
    }

    print_stack(state, stack, Identity("shop", "dev", "us-east-1"))

    assert out.getvalue().splitlines() == [
        "service: shop",
        "stage: dev",
        "region: eu-west-1",
        "stack: shop-dev",
        "deployment: 4 (2024-05-01 10:00:00 UTC)",
        "endpoints:",
        "  ANY - http://h/",
        "  ANY - http://h:8080 (ALB)",
        "functions:",
        "  api: shop-dev-api",
        "layers:",
        "  libs: arn:aws:lambda:eu-west-1:0:layer:libs:2",
    ]
    assert when("2024-05-01T10:00:00Z") == "2024-05-01T10:00:00Z"
