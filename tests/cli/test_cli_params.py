"""`lamina params` against the real SSM API, served in-process on a real socket."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from lamina.cli.main import app
from lamina.core.clock import FakeClock
from lamina.core.errors import UnknownOperationException
from lamina.core.models import Account
from lamina.core.params import PutParameterRequest
from lamina.http.errors import render
from lamina.http.server import Request, Response, serve
from lamina.http.ssm_api import SsmApi
from lamina.services.params import ParameterService
from lamina.services.secrets import AesGcmCipher
from lamina.store.params import SqliteParameterStore
from lamina.store.sqlite import SqliteStore

Lamina = Callable[..., Result]
T0 = 1_714_557_600.0  # 2024-05-01 10:00 UTC
SECRET = "s3cr3t-bot-token"


class SsmServer:
    """The SSM API on 127.0.0.1:<free port>, its loop on a thread of its own."""

    def __init__(self, home: Path) -> None:
        self.sqlite = SqliteStore(home / "lamina.db")
        service = ParameterService(
            SqliteParameterStore(self.sqlite), AesGcmCipher.for_home(home), FakeClock(start=T0)
        )
        self.api = SsmApi(service, Account())
        self.requests: list[Request] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.endpoint = ""

    async def _handle(self, request: Request) -> Response:
        self.requests.append(request)
        [(method, pattern, handler)] = self.api.routes()
        match = pattern.fullmatch(request.path)
        if match is None or request.method != method:
            return render(UnknownOperationException(request.path))
        return await handler(request, match, str(uuid.uuid4()))

    def start(self) -> None:
        self.thread.start()
        started = asyncio.run_coroutine_threadsafe(
            serve(self._handle, "127.0.0.1", 0, max_body=1 << 20, too_large=lambda _: Response()),
            self.loop,
        )
        self.server = started.result(timeout=10)
        self.endpoint = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
        self.sqlite.close()

    def targets(self) -> list[str]:
        return [r.header("x-amz-target").removeprefix("AmazonSSM.") for r in self.requests]


@pytest.fixture
def ssm(tmp_path: Path) -> Iterator[SsmServer]:
    server = SsmServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def run(ssm: SsmServer) -> Lamina:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        env = {"LAMINA_ENDPOINT": None, "LAMINA_HOST": None, "COLUMNS": "200"}
        return runner.invoke(app, ["--endpoint", ssm.endpoint, *args], input=input, env=env)

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def test_put_then_get_prints_the_value_alone_on_stdout(run: Lamina) -> None:
    put = ok(run("params", "put", "/app/url", "http://a.example", "--description", "API"))
    assert put.stdout == "put /app/url version 1\n"

    got = ok(run("params", "get", "/app/url"))
    assert got.stdout == "http://a.example\n"
    assert got.stderr == "String, version 1, modified 2024-05-01 10:00 UTC\n"


def test_secure_strings_are_decrypted_unless_asked_not_to(run: Lamina, ssm: SsmServer) -> None:
    ok(run("params", "put", "/bot/token", SECRET, "--type", "SecureString"))

    assert ok(run("params", "get", "/bot/token")).stdout == f"{SECRET}\n"
    hidden = ok(run("params", "get", "/bot/token", "--no-decrypt"))
    assert SECRET not in hidden.stdout
    assert "(encrypted; --decrypt to read it)" in hidden.stderr
    for db_file in ssm.sqlite.path.parent.glob("lamina.db*"):  # the database and its WAL
        assert SECRET.encode() not in db_file.read_bytes()


def test_overwrite_keeps_the_type_when_none_is_given(run: Lamina, ssm: SsmServer) -> None:
    ok(run("params", "put", "/bot/token", "old", "-t", "SecureString"))

    second = ok(run("params", "put", "/bot/token", SECRET, "--overwrite"))

    assert second.stdout == "put /bot/token version 2\n"
    assert "SecureString, version 2" in ok(run("params", "get", "/bot/token")).stderr
    [*_, put] = [r for r in ssm.requests if r.header("x-amz-target").endswith("PutParameter")]
    assert b'"Type"' not in put.body


def test_overwrite_of_a_new_parameter_creates_a_string(run: Lamina, ssm: SsmServer) -> None:
    ok(run("params", "put", "/new", "v", "--overwrite"))
    assert ssm.targets() == ["DescribeParameters", "PutParameter"]
    assert "String, version 1" in ok(run("params", "get", "/new")).stderr


def test_a_value_from_stdin(run: Lamina) -> None:
    ok(run("params", "put", "/bot/token", "-", "-t", "SecureString", input=f"{SECRET}\n"))
    assert ok(run("params", "get", "/bot/token")).stdout == f"{SECRET}\n"


def test_ls_lists_settings_never_values(run: Lamina) -> None:
    ok(run("params", "put", "/app/a", "va", "--description", "first [b]one[/b]"))
    ok(run("params", "put", "/app/deep/b", "vb", "-t", "StringList"))
    ok(run("params", "put", "/app/s", SECRET, "-t", "SecureString"))
    ok(run("params", "put", "flat", "vf"))

    everything = ok(run("params", "ls"))
    one_level = ok(run("params", "ls", "/app"))
    recursive = ok(run("params", "ls", "/app", "--recursive"))

    rows = [line.split()[0] for line in everything.stdout.splitlines()[1:]]
    assert rows == ["/app/a", "/app/deep/b", "/app/s", "flat"]
    assert re.search(
        r"/app/a\s+String\s+1\s+2024-05-01 10:00\s+first \[b\]one\[/b\]", one_level.stdout
    )
    assert "/app/deep/b" not in one_level.stdout
    assert re.search(r"/app/deep/b\s+StringList", recursive.stdout)
    for listing in (everything, one_level, recursive):
        assert SECRET not in listing.stdout and "va" not in listing.stdout.split()


def test_ls_follows_next_tokens(run: Lamina, ssm: SsmServer) -> None:
    for i in range(55):  # more than one page of DescribeParameters
        ssm.api.params.put(PutParameterRequest(f"/p/{i:02d}", "v", "String"))

    listing = ok(run("params", "ls", "/p"))

    assert len(listing.stdout.splitlines()) == 1 + 55
    assert ssm.targets() == ["DescribeParameters", "DescribeParameters"]


def test_ls_of_nothing(run: Lamina) -> None:
    result = ok(run("params", "ls", "/none"))
    assert result.stdout == ""
    assert "No parameters below /none." in result.stderr


def test_rm(run: Lamina) -> None:
    ok(run("params", "put", "/a", "v"))
    assert ok(run("params", "rm", "/a")).stdout == "deleted /a\n"
    gone = run("params", "get", "/a")
    assert gone.exit_code == 1
    assert gone.stderr == "error: ParameterNotFound: Parameter /a not found.\n"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("put", "/a", "v", "--type", "Secret"), "Invalid value for '--type'"),
        (("put", "bad name", "v"), "error: ValidationException: Name = 'bad name'"),
        (("rm", "/nope"), "error: ParameterNotFound: Parameter /nope not found."),
        (("ls", "app"), "error: InvalidFilterValue:"),
    ],
)
def test_errors_are_one_readable_line(run: Lamina, args: tuple[str, ...], error: str) -> None:
    result = run("params", *args)
    assert result.exit_code != 0
    assert error in result.stderr
    assert "Traceback" not in result.output


def test_an_existing_name_needs_overwrite(run: Lamina) -> None:
    ok(run("params", "put", "/a", "v"))
    result = run("params", "put", "/a", "w")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ParameterAlreadyExists: Parameter /a already exists")
    assert len(result.stderr.splitlines()) == 1


def test_unreachable_control_api() -> None:
    result = CliRunner().invoke(
        app, ["--endpoint", "http://127.0.0.1:9", "params", "get", "/a"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1
    assert "cannot reach Lamina at http://127.0.0.1:9" in result.stderr


def test_params_without_a_command_shows_help(run: Lamina) -> None:
    result = run("params")
    for command in ("put", "get", "ls", "rm"):
        assert command in result.output
