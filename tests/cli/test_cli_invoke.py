from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner, Result

from lamina.cli.main import app

if TYPE_CHECKING:
    from conftest import FakeControlApi

Lamina = Callable[..., Result]

SERVICE = """\
service: shop
provider:
  name: aws
  runtime: python3.12
functions:
  hello:
    handler: handler.hello
  named:
    handler: handler.named
    name: shop-custom
"""


def test_prints_the_payload_as_pretty_json(control_api: FakeControlApi, lamina: Lamina) -> None:
    control_api.answer_invocations(b'{"greeting":"hi","n":[1,2]}')

    result = lamina("invoke", "-f", "shop-prod-hello", "--data", '{"name": "ada"}')

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"greeting": "hi", "n": [1, 2]}
    assert '\n  "greeting": "hi"' in result.stdout
    call = control_api.calls("POST", "/invocations")[0]
    assert call.path == "/2015-03-31/functions/shop-prod-hello/invocations"
    assert call.json() == {"name": "ada"}
    assert call.headers["x-amz-invocation-type"] == "RequestResponse"
    assert "x-amz-log-type" not in call.headers


def test_prints_a_payload_that_is_not_json_as_it_is(
    control_api: FakeControlApi, lamina: Lamina
) -> None:
    control_api.answer_invocations(b"plain [bold]text[/bold]")

    result = lamina("invoke", "-f", "fn")

    assert result.stdout == "plain [bold]text[/bold]\n"


def test_data_that_is_not_json_is_sent_as_a_json_string(
    control_api: FakeControlApi, lamina: Lamina
) -> None:
    lamina("invoke", "-f", "fn", "--data", "hello")
    lamina("invoke", "-f", "fn")

    first, second = control_api.calls("POST", "/invocations")
    assert first.body == b'"hello"'
    assert second.body == b"{}"


def test_event_from_a_yaml_file_and_qualifier(
    control_api: FakeControlApi, lamina: Lamina, tmp_path: Path
) -> None:
    event = tmp_path / "event.yml"
    event.write_text("body: hi\ncount: 2\n")

    lamina("invoke", "-f", "fn", "--path", str(event), "--qualifier", "prod")

    call = control_api.calls("POST", "/invocations")[0]
    assert call.json() == {"body": "hi", "count": 2}
    assert call.query == {"Qualifier": "prod"}


def test_function_error_prints_the_error_and_exits_1(
    control_api: FakeControlApi, lamina: Lamina
) -> None:
    error = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []}
    control_api.answer_invocations(
        json.dumps(error).encode(), headers={"X-Amz-Function-Error": "Unhandled"}
    )

    result = lamina("invoke", "-f", "fn")

    assert result.exit_code == 1
    assert json.loads(result.stdout) == error
    assert result.stderr == "error: invoked function failed: ValueError: boom\n"


def test_log_prints_the_decoded_tail(control_api: FakeControlApi, lamina: Lamina) -> None:
    tail = "START RequestId: r1 Version: $LATEST\nhello from the function\nEND RequestId: r1\n"
    encoded = base64.b64encode(tail.encode()).decode()
    control_api.answer_invocations(b"null", headers={"X-Amz-Log-Result": encoded})

    result = lamina("invoke", "-f", "fn", "--log")

    assert result.exit_code == 0
    assert result.stdout == "null\n"
    assert result.stderr == tail
    assert control_api.calls("POST", "/invocations")[0].headers["x-amz-log-type"] == "Tail"


def test_event_invocation_prints_the_request_id(
    control_api: FakeControlApi, lamina: Lamina
) -> None:
    control_api.answer_invocations(b"", status=202, headers={"X-Amzn-RequestId": "req-123"})

    result = lamina("invoke", "-f", "fn", "--type", "Event", "--log")

    assert result.exit_code == 0
    assert result.stdout == "req-123\n"
    call = control_api.calls("POST", "/invocations")[0]
    assert call.headers["x-amz-invocation-type"] == "Event"
    assert "x-amz-log-type" not in call.headers  # Tail is for synchronous calls only


def test_api_error_is_one_line(control_api: FakeControlApi, lamina: Lamina) -> None:
    message = "Function not found: arn:aws:lambda:us-east-1:0:function:x"
    control_api.answer_invocations(
        json.dumps({"Type": "User", "Message": message}).encode(),
        status=404,
        headers={"x-amzn-ErrorType": "ResourceNotFoundException"},
    )

    result = lamina("invoke", "-f", "x")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: ResourceNotFoundException: {message}\n"


def test_error_code_suffix_is_dropped(control_api: FakeControlApi, lamina: Lamina) -> None:
    body = {"Type": "User", "message": "Rate Exceeded.", "Reason": "ReservedFunctionConcurrency"}
    control_api.answer_invocations(
        json.dumps(body).encode(),
        status=429,
        headers={"x-amzn-ErrorType": "TooManyRequestsException:http://internal.amazon.com/"},
    )

    result = lamina("invoke", "-f", "x")

    assert result.stderr == "error: TooManyRequestsException: Rate Exceeded.\n"


@pytest.fixture
def closed_endpoint() -> Iterator[str]:
    # Bound but not listening: connecting is refused, and no other test can take the port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_unreachable_endpoint_is_one_line(
    closed_endpoint: str, clean_env: dict[str, str | None]
) -> None:
    env = {**clean_env, "LAMINA_ENDPOINT": closed_endpoint}

    result = CliRunner().invoke(app, ["invoke", "-f", "fn"], env=env)

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: cannot reach Lamina at {closed_endpoint} (is `lamina up` running?)\n"
    )


def test_endpoint_follows_lamina_host_and_control_port(
    closed_endpoint: str, clean_env: dict[str, str | None]
) -> None:
    port = closed_endpoint.rsplit(":", 1)[1]
    env = {**clean_env, "LAMINA_HOST": "0.0.0.0", "LAMINA_CONTROL_PORT": port}

    result = CliRunner().invoke(app, ["ls"], env=env)

    assert f"cannot reach Lamina at http://127.0.0.1:{port} " in result.stderr


def test_data_and_path_together_are_refused(lamina: Lamina, tmp_path: Path) -> None:
    result = lamina("invoke", "-f", "fn", "--data", "{}", "--path", str(tmp_path / "e.json"))

    assert result.exit_code == 1
    assert result.stderr == "error: give the event with either --data or --path, not both\n"


def test_missing_event_file_is_one_line(lamina: Lamina, tmp_path: Path) -> None:
    result = lamina("invoke", "-f", "fn", "--path", str(tmp_path / "nope.json"))

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot read the event from {tmp_path}/nope.json")
    assert result.stderr.count("\n") == 1


class TestFunctionKeys:
    @pytest.fixture(autouse=True)
    def service_directory(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (tmp_path / "serverless.yml").write_text(SERVICE)
        monkeypatch.chdir(tmp_path)

    def _invoked(self, control_api: FakeControlApi) -> list[str]:
        return [c.path.split("/")[3] for c in control_api.calls("POST", "/invocations")]

    def test_key_maps_to_service_stage_key(
        self, control_api: FakeControlApi, lamina: Lamina
    ) -> None:
        lamina("invoke", "-f", "hello")
        lamina("invoke", "-f", "hello", "--stage", "prod")
        lamina("invoke", "-f", "named")

        assert self._invoked(control_api) == ["shop-dev-hello", "shop-prod-hello", "shop-custom"]

    def test_other_names_are_deployed_names(
        self, control_api: FakeControlApi, lamina: Lamina
    ) -> None:
        lamina("invoke", "-f", "other-fn")

        assert self._invoked(control_api) == ["other-fn"]

    def test_logs_use_the_mapping_too(self, control_api: FakeControlApi, lamina: Lamina) -> None:
        lamina("logs", "-f", "hello", "--stage", "prod")

        [call] = control_api.calls("GET", "/lamina/v1/logs")
        assert call.query["function"] == "shop-prod-hello"
