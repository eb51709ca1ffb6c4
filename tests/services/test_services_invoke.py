"""The invoke use case: outcomes (response, error, init error, exit, timeouts) and the log
lines every invocation gets."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from tests.services.fakes import (
    ERROR_BODY,
    INIT_ERROR_BODY,
    Exit,
    Fail,
    FakeRuntime,
    Hang,
    Harness,
    Reply,
    Respond,
    Script,
    settle,
)

from lamina.core.errors import ResourceNotFoundException
from lamina.core.invocation import Invocation, Outcome
from lamina.services.environment import EnvState


def _error(payload: bytes) -> dict[str, str]:
    value = json.loads(payload)
    assert set(value) == {"errorType", "errorMessage"}
    return value  # type: ignore[no-any-return]


def _report(lines: list[str], request_id: str) -> str:
    (report,) = [line for line in lines if line.startswith(f"REPORT RequestId: {request_id}\t")]
    return report


# outcomes


async def test_a_response_is_a_success_and_the_environment_is_kept(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")

        response = await h.invoke("fn", b'{"hello": "world"}', request_id="req-1")

        assert response.request_id == "req-1"
        assert response.executed_version == "$LATEST"
        assert response.result.outcome is Outcome.SUCCESS
        assert response.result.payload == b'{"hello": "world"}'
        assert response.result.content_type == "application/json"
        assert response.result.function_error is None
        (invocation,) = h.driver.runtime(h.pid_that_served("req-1")).invocations
        assert invocation.invoked_arn == "arn:aws:lambda:us-east-1:000000000000:function:fn"
        assert invocation.deadline_ms == int(h.clock.time() * 1000) + 3000
        assert invocation.trace_id.startswith("Root=1-")
        assert h.pool.environments("fn")[0].state is EnvState.IDLE
        assert h.invoker.in_flight == 0


async def test_a_function_error_is_data_and_the_environment_is_reused(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        h.driver.default_script = Script(handler=lambda runtime, invocation: Fail())

        failed = await h.invoke("fn")
        again = await h.invoke("fn")

        assert failed.result.outcome is Outcome.ERROR
        assert failed.result.payload == ERROR_BODY
        assert failed.result.content_type == "application/json"
        assert failed.result.function_error == "Unhandled"
        pid = h.pid_that_served(failed.request_id)
        assert h.pid_that_served(again.request_id) == pid
        assert not h.driver.process(pid).killed
        assert h.ledger.in_flight == {}


async def test_an_init_error_is_returned_and_the_environment_retired(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        h.driver.scripts.append(Script(init="init_error"))

        response = await h.invoke("fn", request_id="req-1")

        assert response.result.outcome is Outcome.ERROR
        assert response.result.payload == INIT_ERROR_BODY
        assert response.result.function_error == "Unhandled"
        (process,) = h.driver.processes
        assert process.killed
        assert [e.closed for e in h.runtime_api.endpoints] == [True]
        assert h.pool.environments() == []
        assert h.ledger.memory_in_use_mb == 0
        assert h.ledger.in_flight == {}
        lines = await h.log_lines("fn")
        assert lines[1].startswith("INIT_REPORT Init Duration: ")
        assert lines[1].endswith("\tPhase: init\tStatus: error")
        assert lines[2:4] == ["START RequestId: req-1 Version: $LATEST", "END RequestId: req-1"]
        assert "\tStatus: error\t" in _report(lines, "req-1")

        after = await h.invoke("fn")  # a new environment, initialised afresh
        assert after.result.outcome is Outcome.SUCCESS
        assert h.pid_that_served(after.request_id) != process.pid


async def test_an_exit_during_the_invocation_is_a_runtime_exit_error(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        h.driver.scripts.append(Script(handler=lambda runtime, invocation: Exit(2)))

        response = await h.invoke("fn", request_id="req-1")

        assert response.result.outcome is Outcome.CRASH
        assert response.result.function_error == "Unhandled"
        assert _error(response.result.payload) == {
            "errorType": "Runtime.ExitError",
            "errorMessage": "RequestId: req-1 Error: Runtime exited with error: exit status 2",
        }
        (process,) = h.driver.processes
        assert process.returncode == 2
        assert h.pool.environments() == []
        assert h.ledger.memory_in_use_mb == 0
        assert h.runtime_api.endpoints[0].closed
        assert "\tStatus: error\t" in _report(await h.log_lines("fn"), "req-1")
        after = await h.invoke("fn")
        assert h.pid_that_served(after.request_id) != process.pid


async def test_an_exit_by_signal_is_worded_as_lambda_does(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        h.driver.scripts.append(Script(handler=lambda runtime, invocation: Exit(-11)))

        response = await h.invoke("fn", request_id="req-1")

        assert _error(response.result.payload)["errorMessage"] == (
            "RequestId: req-1 Error: Runtime exited with error: signal: segmentation fault"
        )


async def test_an_exit_during_init_is_a_runtime_exit_error(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        h.driver.scripts.append(Script(init="exit", exit_code=1))

        response = await h.invoke("fn", request_id="req-1")

        assert response.result.outcome is Outcome.CRASH
        assert _error(response.result.payload) == {
            "errorType": "Runtime.ExitError",
            "errorMessage": "RequestId: req-1 Error: Runtime exited with error: exit status 1",
        }
        assert h.pool.environments() == []
        assert h.ledger.memory_in_use_mb == 0


async def test_a_timeout_kills_the_environment(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn", timeout=1)
        h.driver.scripts.append(Script(handler=lambda runtime, invocation: Hang()))
        task = h.start_invoke("fn", request_id="req-1")
        await settle(lambda: h.received() == ["req-1"])
        process = h.driver.processes[0]

        h.warp.advance(0.5)
        await settle()
        assert not task.done()
        assert not process.killed

        h.warp.advance(0.5)
        response = await task

        assert response.result.outcome is Outcome.TIMEOUT
        assert response.result.function_error == "Unhandled"
        assert _error(response.result.payload) == {
            "errorType": "Sandbox.Timedout",
            "errorMessage": "RequestId: req-1 Error: Task timed out after 1.00 seconds",
        }
        assert process.killed
        assert h.runtime_api.endpoints[0].closed
        assert h.pool.environments() == []
        assert h.ledger.memory_in_use_mb == 0
        assert h.ledger.in_flight == {}
        report = _report(await h.log_lines("fn"), "req-1")
        assert "\tDuration: 1000.00 ms\t" in report
        assert report.endswith("\tStatus: timeout\t")


async def test_a_warm_environment_times_out_at_each_invocation_s_own_deadline(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn", timeout=1)
        first_done = False

        def handler(runtime: FakeRuntime, invocation: Invocation) -> Reply:
            return Respond(b"{}") if not first_done else Hang()

        h.driver.default_script = Script(handler=handler)
        await h.invoke("fn", request_id="quick")
        first_done = True
        h.warp.advance(0.6)
        task = h.start_invoke("fn", request_id="slow")
        await settle(lambda: h.received() == ["quick", "slow"])

        h.warp.advance(0.5)  # past the first invocation's deadline, not this one's
        await settle()
        assert not task.done()

        h.warp.advance(0.5)
        response = await task
        assert response.result.outcome is Outcome.TIMEOUT


async def test_an_init_timeout_is_retried_once_as_a_suppressed_init(tmp_path: Path) -> None:
    async with Harness(tmp_path, init_timeout=0.01) as h:
        h.deploy("fn")
        h.driver.scripts.extend([Script(init="hang"), Script()])
        task = h.start_invoke("fn", request_id="req-1")
        await settle(lambda: len(h.driver.processes) == 1)
        slow = h.driver.processes[0]
        slow_stream = h.environment(slow.pid).stream

        h.warp.advance(0.01)
        response = await task

        assert response.result.outcome is Outcome.SUCCESS
        assert slow.killed
        assert len(h.driver.processes) == 2
        assert h.pid_that_served("req-1") == h.driver.processes[1].pid
        assert h.pool.cold_starts == 2
        assert h.ledger.memory_in_use_mb == 128
        events = await h.log_events()
        slow_lines = [e.message for e in events if e.stream == slow_stream]
        assert slow_lines[0].startswith("INIT_START Runtime Version: python:3.11.lamina\t")
        assert slow_lines[1] == "INIT_REPORT Init Duration: 10.00 ms\tPhase: init\tStatus: timeout"
        assert not any(line.startswith("START") for line in slow_lines)


async def test_a_second_init_overrun_is_a_timeout(tmp_path: Path) -> None:
    async with Harness(tmp_path, init_timeout=0.01) as h:
        h.deploy("fn", timeout=1)
        h.driver.scripts.extend([Script(init="hang"), Script(init="hang")])
        task = h.start_invoke("fn", request_id="req-1")
        await settle(lambda: len(h.driver.processes) == 1)
        h.warp.advance(0.01)
        await settle(lambda: len(h.driver.processes) == 2)

        h.warp.advance(1.0)
        response = await task

        assert response.result.outcome is Outcome.TIMEOUT
        assert _error(response.result.payload)["errorType"] == "Sandbox.Timedout"
        assert all(p.killed for p in h.driver.processes)
        assert h.pool.environments() == []
        assert h.ledger.memory_in_use_mb == 0
        assert h.ledger.in_flight == {}


async def test_a_provided_function_without_bootstrap_is_an_invalid_entrypoint(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        fn = h.deploy("fn", runtime="provided.al2023")

        response = await h.invoke("fn", request_id="req-1")

        assert response.result.outcome is Outcome.CRASH
        assert _error(response.result.payload) == {
            "errorType": "Runtime.InvalidEntrypoint",
            "errorMessage": (
                "RequestId: req-1 Error: Couldn't find valid bootstrap(s): "
                f"[{fn.code_dir / 'bootstrap'} /opt/bootstrap]"
            ),
        }
        assert h.driver.specs == []
        assert h.ledger.in_flight == {}
        assert h.ledger.memory_in_use_mb == 0
        lines = await h.log_lines("fn")
        assert lines[0] == "START RequestId: req-1 Version: $LATEST"
        assert lines[2] == "END RequestId: req-1"
        assert lines[3].startswith("REPORT RequestId: req-1\t")
        assert lines[3].endswith("\tStatus: error\t")


async def test_a_start_failing_for_the_platform_is_not_blamed_on_the_function(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        h.driver.starved_starts = 1

        with pytest.raises(OSError) as raised:
            await h.invoke("fn", request_id="req-1")

        assert raised.value.errno == errno.EMFILE
        assert h.ledger.in_flight == {}
        assert h.ledger.memory_in_use_mb == 0
        assert (await h.invoke("fn")).result.outcome is Outcome.SUCCESS


async def test_an_unknown_function_or_qualifier_is_not_found(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        with pytest.raises(ResourceNotFoundException):
            await h.invoke("missing")
        with pytest.raises(ResourceNotFoundException):
            await h.invoker.invoke("fn", "7", b"{}")
        assert h.ledger.in_flight == {}
        assert h.driver.specs == []


async def test_the_runtime_is_started_as_the_launcher_says(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        fn = h.deploy("fn", memory=256)

        await h.invoke("fn")

        (spec,) = h.driver.specs
        (endpoint,) = h.runtime_api.endpoints
        assert spec.env["AWS_LAMBDA_RUNTIME_API"] == endpoint.address
        assert spec.env["AWS_LAMBDA_FUNCTION_NAME"] == "fn"
        assert spec.env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
        assert spec.memory_mb == 256
        assert spec.cwd == spec.task_root == fn.code_dir
        assert spec.tmp_dir.is_dir()
        assert spec.env["TMPDIR"] == str(spec.tmp_dir)
        assert spec.env["AWS_LAMBDA_LOG_STREAM_NAME"] == h.pool.environments()[0].stream


# logs


async def test_every_invocation_gets_start_end_and_report(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn", memory=256)

        await h.invoke("fn", request_id="cold")
        await h.invoke("fn", request_id="warm")

        events = await h.log_events()
        assert {e.stream for e in events} == {h.pool.environments()[0].stream}
        assert {e.function_name for e in events} == {"fn"}
        lines = [e.message for e in events]
        assert len(lines) == 7
        assert lines[0].startswith("INIT_START Runtime Version: python:3.11.lamina\t")
        assert lines[1] == "START RequestId: cold Version: $LATEST"
        assert lines[2] == "END RequestId: cold"
        assert lines[3] == _report(lines, "cold")
        assert lines[4] == "START RequestId: warm Version: $LATEST"
        assert lines[5] == "END RequestId: warm"
        assert lines[6] == _report(lines, "warm")
        cold, warm = _report(lines, "cold"), _report(lines, "warm")
        assert "\tMemory Size: 256 MB\t" in cold
        assert "\tInit Duration: " in cold
        assert "Init Duration" not in warm
        assert "Status" not in cold and "Status" not in warm


async def test_the_log_tail_holds_what_the_function_printed(tmp_path: Path) -> None:
    def noisy(runtime: FakeRuntime, invocation: Invocation) -> Reply:
        runtime.process.print("processing\npartial line without newline ")
        runtime.process.print("finished\n")
        runtime.process.memory_mb = 42
        return Respond()

    async with Harness(tmp_path) as h:
        h.deploy("fn")
        h.driver.default_script = Script(handler=noisy)

        response = await h.invoke("fn", request_id="req-1")

        tail = response.log_tail.decode().splitlines()
        assert tail[:3] == [
            "START RequestId: req-1 Version: $LATEST",
            "processing",
            "partial line without newline finished",
        ]
        assert tail[3] == "END RequestId: req-1"
        assert tail[4].startswith("REPORT RequestId: req-1\t")
        assert "\tMax Memory Used: 42 MB\t" in tail[4]
        assert len(tail) == 5
        lines = await h.log_lines("fn")
        assert lines[1:4] == tail[:3]


async def test_init_output_is_logged_before_start_and_not_in_the_tail(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        h.driver.scripts.append(Script(init_output="loading model\n"))

        response = await h.invoke("fn", request_id="req-1")

        assert "loading model" not in response.log_tail.decode()
        lines = await h.log_lines("fn")
        assert lines.index("loading model") < lines.index("START RequestId: req-1 Version: $LATEST")


async def test_output_before_a_crash_lands_inside_the_invocation(tmp_path: Path) -> None:
    def crash(runtime: FakeRuntime, invocation: Invocation) -> Reply:
        runtime.process.print("Traceback (most recent call last):\nMemoryError\n")
        return Exit(1)

    async with Harness(tmp_path) as h:
        h.deploy("fn")
        h.driver.default_script = Script(handler=crash)

        response = await h.invoke("fn", request_id="req-1")

        tail = response.log_tail.decode().splitlines()
        assert tail[1:3] == ["Traceback (most recent call last):", "MemoryError"]
        assert tail[3] == "END RequestId: req-1"


async def test_output_before_a_timeout_lands_inside_the_invocation(tmp_path: Path) -> None:
    def stuck(runtime: FakeRuntime, invocation: Invocation) -> Reply:
        runtime.process.print("waiting for the database\n")
        return Hang()

    async with Harness(tmp_path) as h:
        h.deploy("fn", timeout=1)
        h.driver.default_script = Script(handler=stuck)
        task = h.start_invoke("fn", request_id="req-1")
        await settle(lambda: h.received() == ["req-1"])

        h.warp.advance(1.0)
        response = await task

        tail = response.log_tail.decode().splitlines()
        assert tail[1] == "waiting for the database"
        assert tail[2] == "END RequestId: req-1"
