"""The pool: reuse (LIFO), keep-alive, memory budget and eviction, concurrency, retirement."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.services.fakes import Gate, Harness, Script, settle

from lamina.core.errors import TooManyRequestsException
from lamina.core.invocation import Outcome
from lamina.services.environment import EnvState

# reuse


async def test_cold_start_then_warm_reuse_of_the_same_environment(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")

        first = await h.invoke("fn", b'{"n": 1}')
        second = await h.invoke("fn", b'{"n": 2}')

        assert first.result.outcome is Outcome.SUCCESS
        assert first.result.payload == b'{"n": 1}'
        assert second.result.payload == b'{"n": 2}'
        pid = h.pid_that_served(first.request_id)
        assert h.pid_that_served(second.request_id) == pid
        assert [p.pid for p in h.driver.processes] == [pid]
        assert h.pool.cold_starts == 1
        env = h.environment(pid)
        assert env.state is EnvState.IDLE
        assert env.invocations == 2
        stats = h.pool.statistics()
        assert (stats["live"], stats["idle"], stats["cold_starts"]) == (1, 1, 1)
        assert stats["memory_in_use_mb"] == 128
        assert h.ledger.in_flight == {}
        assert h.ledger.unreserved_in_flight == 0


async def test_take_idle_hands_out_the_most_recently_released_first(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        fn = h.deploy("fn")
        h.pool.admit("fn")
        older = await h.pool.start_new(fn)
        h.pool.admit("fn")
        newer = await h.pool.start_new(fn)

        h.pool.release("fn", older, reuse=True)
        h.clock.advance(1)
        h.pool.release("fn", newer, reuse=True)

        assert h.pool.take_idle(fn) is newer
        assert h.pool.take_idle(fn) is older
        assert h.pool.take_idle(fn) is None
        assert newer.state is EnvState.BUSY


async def test_concurrent_invocations_scale_out_and_the_last_released_serves_next(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        gate_a, gate_b = Gate(), Gate()
        h.driver.scripts.extend([Script(handler=gate_a), Script(handler=gate_b)])
        task_a = h.start_invoke("fn", request_id="a")
        await settle(lambda: gate_a.waiting == 1)
        task_b = h.start_invoke("fn", request_id="b")
        await settle(lambda: gate_b.waiting == 1)
        pid_a, pid_b = h.pid_that_served("a"), h.pid_that_served("b")
        assert pid_a != pid_b
        assert h.ledger.in_flight == {"fn": 2}
        assert h.ledger.memory_in_use_mb == 256

        # b finishes first, then a: a is the most recently released.
        gate_b.open()
        await task_b
        h.clock.advance(1)
        gate_a.open()
        await task_a

        third = await h.invoke("fn", request_id="c")
        assert h.pid_that_served(third.request_id) == pid_a
        fourth_task = h.start_invoke("fn", request_id="d")
        fifth = await h.invoke("fn", request_id="e")
        await fourth_task
        assert {h.pid_that_served("d"), h.pid_that_served(fifth.request_id)} == {pid_a, pid_b}
        assert len(h.driver.processes) == 2


async def test_an_idle_environment_whose_process_exited_is_not_reused(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        first = await h.invoke("fn")
        dead = h.driver.process(h.pid_that_served(first.request_id))

        dead.exit(137)
        await settle()
        second = await h.invoke("fn")

        assert second.result.outcome is Outcome.SUCCESS
        assert h.pid_that_served(second.request_id) != dead.pid
        assert h.live_pids() == {h.pid_that_served(second.request_id)}
        assert h.ledger.memory_in_use_mb == 128  # the dead one's memory was given back


# keep-alive


async def test_reap_keeps_idle_environments_until_the_keep_alive_has_passed(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, keep_alive=60.0) as h:
        h.deploy("fn")
        response = await h.invoke("fn")
        pid = h.pid_that_served(response.request_id)
        process = h.driver.process(pid)
        env = h.environment(pid)
        endpoint = h.runtime_api.endpoint_of(env)

        h.clock.advance(59.9)
        assert h.pool.reap() == 0
        assert not process.killed
        assert h.live_pids() == {pid}

        h.clock.advance(0.1)
        assert h.pool.reap() == 1
        assert process.killed
        assert endpoint.closed
        assert env.state is EnvState.DEAD
        assert h.pool.environments() == []
        assert h.ledger.memory_in_use_mb == 0
        assert not env.launch.run_dir.exists()

        again = await h.invoke("fn")
        assert h.pid_that_served(again.request_id) != pid
        assert h.pool.cold_starts == 2


async def test_keep_alive_counts_from_the_last_release(tmp_path: Path) -> None:
    async with Harness(tmp_path, keep_alive=60.0) as h:
        h.deploy("fn")
        first = await h.invoke("fn")
        h.clock.advance(50)
        await h.invoke("fn")
        h.clock.advance(50)

        assert h.pool.reap() == 0
        h.clock.advance(10)
        assert h.pool.reap() == 1
        assert h.driver.process(h.pid_that_served(first.request_id)).killed


async def test_busy_environments_are_never_reaped(tmp_path: Path) -> None:
    async with Harness(tmp_path, keep_alive=60.0) as h:
        h.deploy("fn")
        gate = Gate()
        h.driver.default_script = Script(handler=gate)
        task = h.start_invoke("fn", request_id="long")
        await settle(lambda: gate.waiting == 1)
        process = h.driver.process(h.pid_that_served("long"))

        h.clock.advance(3600)
        assert h.pool.reap() == 0
        assert not process.killed

        gate.open()
        response = await task
        assert response.result.outcome is Outcome.SUCCESS
        assert h.pool.reap() == 0  # idle only since now
        h.clock.advance(60)
        assert h.pool.reap() == 1
        assert process.killed


async def test_reap_drops_idle_environments_whose_process_died(tmp_path: Path) -> None:
    async with Harness(tmp_path, keep_alive=60.0) as h:
        h.deploy("fn")
        response = await h.invoke("fn")
        process = h.driver.process(h.pid_that_served(response.request_id))

        process.exit(1)
        await settle()

        assert h.pool.reap() == 1
        assert h.pool.environments() == []
        assert h.ledger.memory_in_use_mb == 0


# the memory budget


async def test_start_new_evicts_the_least_recently_used_idle_environment(tmp_path: Path) -> None:
    async with Harness(tmp_path, memory_budget_mb=256) as h:
        for name in ("a", "b", "c"):
            h.deploy(name, memory=128)
        a = await h.invoke("a")
        h.clock.advance(1)
        b = await h.invoke("b")
        h.clock.advance(1)
        pid_a, pid_b = h.pid_that_served(a.request_id), h.pid_that_served(b.request_id)

        c = await h.invoke("c")

        assert c.result.outcome is Outcome.SUCCESS
        pid_c = h.pid_that_served(c.request_id)
        assert h.driver.process(pid_a).killed
        assert not h.driver.process(pid_b).killed
        assert h.live_pids() == {pid_b, pid_c}
        assert h.ledger.memory_in_use_mb == 256


async def test_start_new_evicts_as_many_idle_environments_as_it_needs(tmp_path: Path) -> None:
    async with Harness(tmp_path, memory_budget_mb=512) as h:
        for name in ("a", "b", "c"):
            h.deploy(name, memory=128)
        h.deploy("big", memory=384)
        pids = {}
        for name in ("a", "b", "c"):
            response = await h.invoke(name)
            pids[name] = h.pid_that_served(response.request_id)
            h.clock.advance(1)

        big = await h.invoke("big")

        # 384 in use + 384 wanted - 512 = 256 short: the two least recently used go.
        assert h.driver.process(pids["a"]).killed
        assert h.driver.process(pids["b"]).killed
        assert not h.driver.process(pids["c"]).killed
        assert h.live_pids() == {pids["c"], h.pid_that_served(big.request_id)}
        assert h.ledger.memory_in_use_mb == 512


async def test_throttles_without_evicting_when_even_all_idle_would_not_fit(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, memory_budget_mb=256) as h:
        h.deploy("idle", memory=128)
        h.deploy("busy", memory=128)
        h.deploy("big", memory=256)
        idle = await h.invoke("idle")
        idle_process = h.driver.process(h.pid_that_served(idle.request_id))
        gate = Gate()
        h.driver.scripts.append(Script(handler=gate))
        busy = h.start_invoke("busy")
        await settle(lambda: gate.waiting == 1)
        started = len(h.driver.specs)

        with pytest.raises(TooManyRequestsException) as throttled:
            await h.invoke("big")

        assert throttled.value.reason == "ConcurrentInvocationLimitExceeded"
        assert not idle_process.killed
        assert len(h.pool.environments("idle")) == 1
        assert len(h.driver.specs) == started  # nothing was started
        assert h.ledger.memory_in_use_mb == 256
        assert h.ledger.in_flight == {"busy": 1}  # big's slot was given back

        gate.open()
        assert (await busy).result.outcome is Outcome.SUCCESS
        big = await h.invoke("big")  # now both idle ones can go
        assert big.result.outcome is Outcome.SUCCESS
        assert idle_process.killed


# concurrency


async def test_reserved_concurrency_throttles_with_the_reserved_reason(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn", reserved=1)
        gate = Gate()
        h.driver.default_script = Script(handler=gate)
        first = h.start_invoke("fn")
        await settle(lambda: gate.waiting == 1)

        with pytest.raises(TooManyRequestsException) as throttled:
            await h.invoke("fn")

        assert throttled.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert throttled.value.status == 429
        assert len(h.driver.processes) == 1
        gate.open()
        assert (await first).result.outcome is Outcome.SUCCESS
        assert h.ledger.in_flight == {}
        assert (await h.invoke("fn")).result.outcome is Outcome.SUCCESS


async def test_account_limit_throttles_unreserved_functions(tmp_path: Path) -> None:
    async with Harness(tmp_path, account_limit=2) as h:
        h.deploy("shared")
        h.deploy("reserved", reserved=1)
        gate = Gate()
        h.driver.default_script = Script(handler=gate)
        first = h.start_invoke("shared")
        await settle(lambda: gate.waiting == 1)

        with pytest.raises(TooManyRequestsException) as throttled:
            await h.invoke("shared")
        assert throttled.value.reason == "ConcurrentInvocationLimitExceeded"

        second = h.start_invoke("reserved")  # its reservation is its own
        await settle(lambda: gate.waiting == 2)
        gate.open()
        await first
        await second
        assert h.ledger.in_flight == {}
        assert h.ledger.unreserved_in_flight == 0


async def test_release_returns_the_concurrency_slot(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn", reserved=1)
        h.pool.admit("fn")
        with pytest.raises(TooManyRequestsException):
            h.pool.admit("fn")

        h.pool.release("fn", None, reuse=False)

        h.pool.admit("fn")
        assert h.ledger.in_flight == {"fn": 1}


async def test_a_failed_start_returns_the_slot_and_the_memory(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn", reserved=1)
        h.driver.fail_starts = 1

        failed = await h.invoke("fn")  # an exec failure is the function's error, as on Lambda
        assert failed.result.outcome is Outcome.CRASH
        assert b"Runtime.InvalidEntrypoint" in failed.result.payload

        assert h.ledger.in_flight == {}
        assert h.ledger.memory_in_use_mb == 0
        assert h.pool.environments() == []
        assert [e.closed for e in h.runtime_api.endpoints] == [True]
        assert list((tmp_path / "run").iterdir()) == []
        response = await h.invoke("fn")  # the slot is free again
        assert response.result.outcome is Outcome.SUCCESS
        assert h.ledger.memory_in_use_mb == 128


async def test_a_failed_start_new_gives_back_memory_at_the_pool_level(tmp_path: Path) -> None:
    async with Harness(tmp_path, memory_budget_mb=128) as h:
        fn = h.deploy("fn")
        h.driver.fail_starts = 1
        h.pool.admit("fn")

        with pytest.raises(OSError):
            await h.pool.start_new(fn)
        h.pool.release("fn", None, reuse=False)

        assert h.ledger.memory_in_use_mb == 0
        h.pool.admit("fn")
        env = await h.pool.start_new(fn)  # fits the budget again
        assert env.alive


# retirement after an update


async def test_retire_function_drops_its_idle_environments_only(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn")
        h.deploy("other")
        mine = await h.invoke("fn")
        theirs = await h.invoke("other")
        my_process = h.driver.process(h.pid_that_served(mine.request_id))
        their_pid = h.pid_that_served(theirs.request_id)

        h.deploy("fn", revision="r2")
        h.pool.retire_function("fn")

        assert my_process.killed
        assert h.pool.environments("fn") == []
        assert h.live_pids() == {their_pid}
        assert h.ledger.memory_in_use_mb == 128
        after = await h.invoke("fn")
        assert h.pid_that_served(after.request_id) != my_process.pid


async def test_an_updated_function_is_never_served_by_an_old_environment(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        h.deploy("fn", revision="r1")
        gate = Gate()
        h.driver.scripts.append(Script(handler=gate))
        old = h.start_invoke("fn", request_id="old")
        await settle(lambda: gate.waiting == 1)
        old_pid = h.pid_that_served("old")

        h.deploy("fn", revision="r2")
        h.pool.retire_function("fn")
        gate.open()
        await old
        new = await h.invoke("fn")

        assert h.pid_that_served(new.request_id) != old_pid


async def test_a_busy_environment_is_retired_on_release_after_an_update(tmp_path: Path) -> None:
    """ARCHITECTURE.md: "old idle environments are retired at once, busy ones when they
    finish"; Pool.retire_function: "Busy ones ... are retired on release"."""
    async with Harness(tmp_path) as h:
        h.deploy("fn", revision="r1")
        gate = Gate()
        h.driver.scripts.append(Script(handler=gate))
        old = h.start_invoke("fn", request_id="old")
        await settle(lambda: gate.waiting == 1)
        old_process = h.driver.process(h.pid_that_served("old"))

        h.deploy("fn", revision="r2")
        h.pool.retire_function("fn")
        gate.open()
        response = await old

        assert response.result.outcome is Outcome.SUCCESS
        assert old_process.killed, "the stale environment was kept (idle) after its release"
        assert h.pool.environments("fn") == []
        assert h.ledger.memory_in_use_mb == 0
