"""The log pipeline: lines go into a memory buffer on the hot path and reach the store in
batches, from a background task, so no invocation waits for a disk write."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from lamina.core.models import LogEvent
from lamina.core.ports import Store

log = logging.getLogger(__name__)


class LogSink:
    def __init__(self, store: Store, interval: float = 0.2) -> None:
        self._store = store
        self._interval = interval
        self._buffer: list[LogEvent] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.written = 0

    def __repr__(self) -> str:
        return f"<LogSink buffered={len(self._buffer)} written={self.written}>"

    def emit(self, function_name: str, stream: str, timestamp_ms: int, message: str) -> None:
        self._buffer.append(LogEvent(function_name, stream, timestamp_ms, message))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="log-sink")

    async def _run(self) -> None:
        while True:
            # Not asyncio.wait_for: on 3.11 it can swallow the cancellation close() sends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        try:
            await asyncio.to_thread(self._store.append_logs, batch)
            self.written += len(batch)
        except Exception:
            log.exception("could not store %d log lines", len(batch))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
