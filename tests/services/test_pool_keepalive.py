"""The pool with a keep-alive policy: per-environment windows, pre-warming through the start
path (memory budget, concurrency ledger, failures logged), and what cancels a pre-warm."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tests.services.fakes import Gate, Harness, Script, settle

from lamina.core.keepalive import HybridKeepAlive
from lamina.services.environment import EnvState
from lamina.services.registry import DeployedFunction

PERIOD = 100.0  # the synthetic function is invoked every 100 s
# 10-second bins over 10 minutes, decided after 3 idle times: every idle time (100 s) is in
# bin 10, so pre-warm = 100 s - 10 % = 90 s and the environment is unloaded at 110 s + 10 %.
PRE_WARM = 90.0
UNLOAD_AT = 121.0


def hybrid(h: Harness) -> HybridKeepAlive:
    policy = HybridKeepAlive(60.0, bin_width=10.0, histogram_range=600.0, min_samples=3)
    h.pool.policy = policy
    h.pool.registry = h.registry
    return policy


async def periodic(h: Harness, count: int, name: str = "fn") -> None:
    """`count` invocations, each starting PERIOD seconds after the previous one ended."""
    for index in range(count):
        if index:
            h.clock.advance(PERIOD)
            h.pool.reap()
        await h.invoke(name)


async def test_a_predictable_function_is_unloaded_then_pre_warmed_before_its_next_call(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        hybrid(h)
        h.deploy("fn")
        await periodic(h, 4)  # the 4th ends with 3 idle times known
        assert h.pool.environments("fn") == []  # unloaded right after the invocation
        cold = h.pool.cold_starts

        h.clock.advance(PRE_WARM - 0.5)
        h.pool.reap()
        await h.pool.wait_background()
        assert h.pool.environments("fn") == []
        h.clock.advance(0.5)
        h.pool.reap()  # due: starts it in the background
        await h.pool.wait_background()

        [env] = h.pool.environments("fn")
        assert env.state is EnvState.IDLE
        assert env.launch.env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
        assert (h.pool.prewarms, h.pool.cold_starts) == (1, cold)  # not a cold start
        assert h.ledger.in_flight == {}  # its init held a slot, given back
        assert any(line.startswith("INIT_START") for line in await h.log_lines("fn"))

        h.clock.advance(PERIOD - PRE_WARM)
        response = await h.invoke("fn")
        assert h.pid_that_served(response.request_id) == env.statistics()["pid"]
        assert h.pool.cold_starts == cold
        report = [line for line in await h.log_lines("fn") if line.startswith("REPORT")][-1]
        assert "Init Duration" not in report


async def test_a_pre_warmed_environment_is_unloaded_when_its_window_ends(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        hybrid(h)
        h.deploy("fn")
        await periodic(h, 4)
        h.clock.advance(PRE_WARM)
        h.pool.reap()
        await h.pool.wait_background()
        [env] = h.pool.environments("fn")

        h.clock.advance(UNLOAD_AT - PRE_WARM - 0.5)
        assert h.pool.reap() == 0
        h.clock.advance(0.5 + 1e-6)  # 121 s after the invocation, less the 90 s before it
        assert h.pool.reap() == 1
        assert env.state is EnvState.DEAD
        assert h.ledger.memory_in_use_mb == 0


async def test_each_idle_environment_has_the_window_its_policy_gave(tmp_path: Path) -> None:
    async with Harness(tmp_path, keep_alive=600.0) as h:
        hybrid(h)
        h.deploy("fn")
        h.deploy("other")
        for _ in range(4):  # idle times of 5 s: bin 0, no pre-warm, window 10 s + 10 %
            await h.invoke("fn")
            h.clock.advance(5)
        await h.invoke("other")  # too few idle times: the fallback, 60 s
        h.clock.advance(6)

        assert h.pool.reap() == 1  # fn's (11 s) is over, other's is not
        assert h.pool.environments("fn") == []
        assert len(h.pool.environments("other")) == 1
        h.clock.advance(54)
        assert h.pool.reap() == 1


async def test_an_invocation_before_the_pre_warm_cancels_it(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        hybrid(h)
        h.deploy("fn")
        await periodic(h, 4)
        h.clock.advance(80)
        await h.invoke("fn")  # early: a cold start; its own end decides again (in 72 s)
        started = len(h.driver.processes)

        h.clock.advance(20)  # past the first pre-warm's time, before the new one's
        h.pool.reap()
        await h.pool.wait_background()

        assert len(h.driver.processes) == started
        assert h.pool.statistics()["prewarms_pending"] == 1


async def test_no_pre_warm_for_a_retired_function_or_a_deleted_version(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        hybrid(h)
        h.deploy("fn")
        h.deploy("gone")
        for index in range(4):
            h.clock.advance(PERIOD if index else 0.0)
            await h.invoke("fn")
            await h.invoke("gone")
        h.pool.retire_function("fn")  # updated: its old revision will not be invoked again
        h.registry.remove("gone")  # deleted
        started = len(h.driver.processes)

        h.clock.advance(PRE_WARM)
        h.pool.reap()
        await h.pool.wait_background()

        assert len(h.driver.processes) == started
        assert h.pool.prewarms == 0


async def test_a_throttled_pre_warm_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with Harness(tmp_path) as h:
        hybrid(h)
        h.deploy("fn")
        await periodic(h, 4)
        h.ledger.set_reservation("fn", 0)  # throttled from now on
        started = len(h.driver.processes)

        with caplog.at_level(logging.INFO, logger="lamina.services.pool"):
            h.clock.advance(PRE_WARM)
            h.pool.reap()
            await h.pool.wait_background()

        assert len(h.driver.processes) == started
        assert (h.pool.prewarms, h.pool.prewarm_failures) == (0, 1)
        assert "pre-warm of fn skipped: throttled" in caplog.text
        assert h.ledger.in_flight == {}


async def test_a_pre_warm_that_does_not_fit_the_memory_budget_fails_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with Harness(tmp_path, memory_budget_mb=256) as h:
        hybrid(h)
        h.deploy("fn")
        h.deploy("big", memory=256)
        await periodic(h, 4)
        gate = Gate()
        h.driver.scripts.append(Script(handler=gate))
        busy = h.start_invoke("big")  # holds the whole budget
        await settle(lambda: gate.waiting == 1)

        with caplog.at_level(logging.WARNING, logger="lamina.services.pool"):
            h.clock.advance(PRE_WARM)
            h.pool.reap()
            await h.pool.wait_background()

        assert "pre-warm of fn failed: not enough memory" in caplog.text
        assert h.pool.prewarm_failures == 1
        assert h.pool.environments("fn") == []
        assert (h.ledger.memory_in_use_mb, h.ledger.in_flight) == (256, {"big": 1})
        gate.open()
        await busy


async def test_a_pre_warm_whose_runtime_fails_is_logged_and_cleaned_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with Harness(tmp_path) as h:
        hybrid(h)
        h.deploy("fn")
        await periodic(h, 4)
        h.driver.scripts.append(Script(init="init_error"))

        with caplog.at_level(logging.WARNING, logger="lamina.services.pool"):
            h.clock.advance(PRE_WARM)
            h.pool.reap()
            await h.pool.wait_background()

        assert "pre-warm of fn failed: init failed: Runtime.ImportModuleError" in caplog.text
        assert h.pool.environments("fn") == []
        assert (h.ledger.memory_in_use_mb, h.ledger.in_flight) == (0, {})
        assert any("INIT_REPORT" in line for line in await h.log_lines("fn"))
        response = await h.invoke("fn")  # the next one starts cold, and works
        assert response.result.payload == b"{}"


# provisioned environments in the pool


async def provisioned(h: Harness, deployed: DeployedFunction) -> None:
    env = await h.pool.start_ahead(deployed, provisioned=True)
    h.pool.provision(env)


async def test_provisioned_environments_serve_first_and_are_never_reaped_or_evicted(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, memory_budget_mb=256, keep_alive=60.0) as h:
        fn = h.deploy("fn")
        h.deploy("other")
        await provisioned(h, fn)
        [warm] = h.pool.provisioned(fn.key)
        assert warm.launch.env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
        assert h.pool.cold_starts == 0

        response = await h.invoke("fn")
        assert h.pid_that_served(response.request_id) == warm.statistics()["pid"]
        assert h.pool.cold_starts == 0

        h.clock.advance(3600)
        assert h.pool.reap() == 0
        await h.invoke("other")  # 128 + 128: the budget is full
        h.deploy("third")
        await h.invoke("third")  # evicts other's idle environment, never the provisioned one
        assert warm.alive
        assert h.pool.statistics()["provisioned"] == 1


async def test_a_busy_provisioned_environment_spills_over_to_on_demand(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        fn = h.deploy("fn")
        gate = Gate()
        h.driver.default_script = Script(handler=gate)
        await provisioned(h, fn)
        first = h.start_invoke("fn", request_id="a")
        await settle(lambda: gate.waiting == 1)
        second = h.start_invoke("fn", request_id="b")
        await settle(lambda: gate.waiting == 2)

        spec_a = h.driver.process(h.pid_that_served("a")).spec
        spec_b = h.driver.process(h.pid_that_served("b")).spec
        assert spec_a.env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
        assert spec_b.env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
        gate.open()
        await first
        await second


async def test_unprovision_retires_an_idle_one_now_and_a_busy_one_when_it_finishes(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        fn = h.deploy("fn")
        gate = Gate()
        h.driver.default_script = Script(handler=gate)
        await provisioned(h, fn)
        await provisioned(h, fn)
        task = h.start_invoke("fn")
        await settle(lambda: gate.waiting == 1)
        [busy] = [e for e in h.pool.provisioned(fn.key) if e.state is EnvState.BUSY]
        [idle] = [e for e in h.pool.provisioned(fn.key) if e is not busy]

        h.pool.unprovision(idle)
        h.pool.unprovision(busy)
        assert idle.state is EnvState.DEAD
        assert busy.alive
        gate.open()
        await task
        assert busy.state is EnvState.DEAD
        assert h.pool.provisioned(fn.key) == []
        assert h.ledger.memory_in_use_mb == 0


async def test_retire_function_leaves_provisioned_versions_to_their_service(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        fn = h.deploy("fn")
        await provisioned(h, fn)
        await h.invoke("fn")  # served by it

        h.pool.retire_function("fn")

        [env] = h.pool.provisioned(fn.key)
        assert env.alive and not env.stale
