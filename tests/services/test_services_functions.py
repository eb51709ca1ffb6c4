"""FunctionService on the real SqliteStore and CodeStore, with the pool on fakes: what a
create, update or delete does to the registry, the ledger and the warm environments."""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.services.fakes import Gate, Harness, Script, settle

from lamina.core.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from lamina.core.invocation import Outcome
from lamina.services.functions import FunctionService
from lamina.services.registry import Registry
from lamina.store.blobs import CodeStore
from lamina.store.sqlite import SqliteStore
from lamina.store.versions import SqliteVersionStore

SETTINGS = {"runtime": "python3.12", "handler": "app.handler"}


def bundle(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


V1 = bundle("def handler(event, context):\n    return 1\n")
V2 = bundle("def handler(event, context):\n    return 2\n")


@contextlib.asynccontextmanager
async def service(tmp_path: Path) -> AsyncIterator[tuple[Harness, FunctionService]]:
    store = SqliteStore(tmp_path / "state" / "lamina.db")
    try:
        async with Harness(tmp_path, account_limit=1000) as h:
            yield (
                h,
                FunctionService(
                    store=store,
                    versions=SqliteVersionStore(store),
                    code=CodeStore(tmp_path / "bundles"),
                    registry=h.registry,
                    pool=h.pool,
                    ledger=h.ledger,
                    account=h.account,
                ),
            )
    finally:
        store.close()


async def test_a_created_function_is_invocable_from_its_unpacked_bundle(tmp_path: Path) -> None:
    async with service(tmp_path) as (h, functions):
        config = functions.create("fn", V1, SETTINGS)

        response = await h.invoke("fn")

        assert response.result.outcome is Outcome.SUCCESS
        (spec,) = h.driver.specs
        assert (spec.task_root / "app.py").read_text().endswith("return 1\n")
        assert spec.task_root.name == config.code_sha256
        assert functions.get("fn") == config
        assert (config.memory_size, config.timeout) == (128, 3)


async def test_an_update_retires_idle_environments_and_serves_the_new_code(
    tmp_path: Path,
) -> None:
    async with service(tmp_path) as (h, functions):
        functions.create("fn", V1, SETTINGS)
        old = await h.invoke("fn")
        old_process = h.driver.process(h.pid_that_served(old.request_id))

        updated = functions.update_code("fn", V2)

        assert old_process.killed
        assert h.pool.environments() == []
        new = await h.invoke("fn")
        new_spec = h.driver.process(h.pid_that_served(new.request_id)).spec
        assert new_spec.task_root.name == updated.code_sha256
        assert (new_spec.task_root / "app.py").read_text().endswith("return 2\n")


async def test_a_configuration_update_reaches_new_environments(tmp_path: Path) -> None:
    async with service(tmp_path) as (h, functions):
        functions.create("fn", V1, SETTINGS)
        await h.invoke("fn")

        functions.update_configuration("fn", {"memory_size": 512, "environment": {"STAGE": "prod"}})
        response = await h.invoke("fn")

        spec = h.driver.process(h.pid_that_served(response.request_id)).spec
        assert spec.memory_mb == 512
        assert spec.env["STAGE"] == "prod"
        assert h.ledger.memory_in_use_mb == 512


async def test_a_rejected_update_changes_nothing(tmp_path: Path) -> None:
    async with service(tmp_path) as (h, functions):
        before = functions.create("fn", V1, SETTINGS)
        warm = await h.invoke("fn")

        with pytest.raises(InvalidParameterValueException):
            functions.update_configuration("fn", {"timeout": 0})

        assert functions.get("fn") == before
        assert h.registry.resolve("fn", None).config == before
        again = await h.invoke("fn")
        assert h.pid_that_served(again.request_id) == h.pid_that_served(warm.request_id)


async def test_a_deleted_function_is_gone_with_its_environments_and_reservation(
    tmp_path: Path,
) -> None:
    async with service(tmp_path) as (h, functions):
        functions.create("fn", V1, SETTINGS)
        functions.put_concurrency("fn", 5)
        response = await h.invoke("fn")
        process = h.driver.process(h.pid_that_served(response.request_id))

        functions.delete("fn")

        assert process.killed
        assert h.pool.environments() == []
        assert h.ledger.reserved == {}
        with pytest.raises(ResourceNotFoundException):
            await h.invoke("fn")
        with pytest.raises(ResourceNotFoundException):
            functions.get("fn")


async def test_reserved_concurrency_keeps_warm_environments_and_throttles(
    tmp_path: Path,
) -> None:
    async with service(tmp_path) as (h, functions):
        functions.create("fn", V1, SETTINGS)
        warm = await h.invoke("fn")

        functions.put_concurrency("fn", 1)  # not a new revision: nothing to retire

        gate = Gate()
        h.driver.runtime(h.pid_that_served(warm.request_id)).script.handler = gate
        held = h.start_invoke("fn")
        await settle(lambda: gate.waiting == 1)
        with pytest.raises(TooManyRequestsException) as throttled:
            await h.invoke("fn")
        assert throttled.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
        gate.open()
        assert h.pid_that_served((await held).request_id) == h.pid_that_served(warm.request_id)

        functions.delete_concurrency("fn")
        assert h.ledger.reserved == {}


async def test_load_brings_stored_functions_into_a_new_registry(tmp_path: Path) -> None:
    async with service(tmp_path) as (h, functions):
        functions.create("a", V1, SETTINGS)
        functions.create("b", V2, SETTINGS)
        functions.put_concurrency("b", 3)
        registry = Registry(h.account)
        h.ledger.reserved.clear()
        store = SqliteStore(tmp_path / "state" / "lamina.db")  # as a restart opens it
        try:
            restarted = FunctionService(
                store=store,
                versions=SqliteVersionStore(store),
                code=CodeStore(tmp_path / "bundles"),
                registry=registry,
                pool=h.pool,
                ledger=h.ledger,
                account=h.account,
            )

            assert restarted.load() == 2
        finally:
            store.close()
        assert len(registry) == 2
        assert registry.resolve("a", None).config == functions.get("a")
        assert registry.resolve("b", None).config.reserved_concurrency == 3
        assert h.ledger.reserved == {"b": 3}


async def test_an_environment_busy_during_an_update_is_retired_when_it_finishes(
    tmp_path: Path,
) -> None:
    async with service(tmp_path) as (h, functions):
        functions.create("fn", V1, SETTINGS)
        gate = Gate()
        h.driver.scripts.append(Script(handler=gate))
        busy = h.start_invoke("fn")
        await settle(lambda: gate.waiting == 1)
        old_process = h.driver.processes[0]

        functions.update_code("fn", V2)
        gate.open()
        await busy

        assert old_process.killed, "the old code's environment is still running (idle)"
        assert h.pool.environments() == []
        assert h.ledger.memory_in_use_mb == 0
