"""Composition root of `lamina invoke local`: a platform for one invocation, in this process.

The same pieces as `lamina up` (`app.py`), minus the store and the HTTP edges: the function
is put straight into a `Registry`, its code is the service directory itself, and log lines
are handed to a callback as they are written instead of being stored. There is no server
to reach, no database and no Docker; the runtime is started by the same launcher and
sandbox driver, and speaks to a Runtime API endpoint of its own, as it would under `lamina up`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lamina.config import Settings
from lamina.core.clock import SystemClock
from lamina.core.models import Account, FunctionConfig
from lamina.core.ports import SandboxDriver
from lamina.core.scheduling import Ledger
from lamina.http.runtime_api import RuntimeApi
from lamina.sandbox.plain import PlainSandboxDriver
from lamina.services.invoke import InvokeResponse, InvokeService
from lamina.services.launch import Launcher
from lamina.services.pool import Pool
from lamina.services.registry import DeployedFunction, Registry
from lamina.telemetry.logs import LogSink


class CallbackSink(LogSink):
    """Log lines go to `write` as they come; nothing is stored."""

    def __init__(self, write: Callable[[str], None]) -> None:
        # No store and no batching task: the base class's state is never used.
        self._write = write
        self.written = 0

    def __repr__(self) -> str:
        return f"<CallbackSink written={self.written}>"

    def emit(self, function_name: str, stream: str, timestamp_ms: int, message: str) -> None:
        self.written += 1
        self._write(message)


def default_driver(settings: Settings) -> SandboxDriver:
    """The sandbox driver `lamina up` would use with these settings (LAMINA_SANDBOX):
    `lamina.sandbox.default_driver`, or plain processes where the package has none."""
    import lamina.sandbox as sandbox

    factory: Any = getattr(sandbox, "default_driver", None)
    if factory is None:
        return PlainSandboxDriver(zygote=False)
    driver: SandboxDriver = factory(settings)
    return driver


async def invoke_once(
    config: FunctionConfig,
    code_dir: Path,
    payload: bytes,
    *,
    home: Path,
    endpoint: str,
    write_log: Callable[[str], None],
    driver: SandboxDriver | None = None,
) -> InvokeResponse:
    """Start an environment for `config` on `code_dir`, invoke it once, stop it.

    `home` holds the environment's scratch space; `endpoint` is what the function is told
    as AWS_ENDPOINT_URL (a Lamina it may reach, or not). The other settings are the
    `LAMINA_*` variables', as for `lamina up`.
    """
    settings = Settings.from_env(home=home)
    account = Account(settings.region, settings.account_id)
    clock = SystemClock()
    sink = CallbackSink(write_log)
    registry = Registry(account)
    registry.put(DeployedFunction(config, code_dir, None))
    pool = Pool(
        ledger=Ledger(1, max(settings.memory_budget_mb, config.memory_size)),
        clock=clock,
        launcher=Launcher(settings, account, endpoint),
        driver=driver or default_driver(settings),
        runtime_api=RuntimeApi(),
        sink=sink,
        keep_alive=0.0,
    )
    service = InvokeService(
        registry=registry,
        pool=pool,
        sink=sink,
        clock=clock,
        account=account,
        init_timeout=settings.init_timeout,
    )
    try:
        return await service.invoke(config.name, None, payload)
    finally:
        await pool.close()
