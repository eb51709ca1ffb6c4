"""Helpers for the async invoker's tests: the invoker on a real SqliteStore (its event queue
and configs) and the `Harness` fakes, and a queue broker that records what it is sent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.services.fakes import Harness, settle

from lamina.core.errors import ResourceNotFoundException
from lamina.services.async_invoke import AsyncInvoker
from lamina.store.events import SqliteEventInvokeConfigStore, SqliteEventStore
from lamina.store.sqlite import SqliteStore


def async_invoker(
    store: SqliteStore,
    h: Harness,
    *,
    queue: SqliteEventStore | None = None,
    queues: RecordingBroker | None = None,
    retry_delay: float = 60.0,
    max_running: int = 64,
) -> AsyncInvoker:
    return AsyncInvoker(
        queue=queue or SqliteEventStore(store),
        configs=SqliteEventInvokeConfigStore(store),
        invoke=h.invoker,
        ledger=h.ledger,
        clock=h.clock,
        account=h.account,
        queues=queues,
        retry_delay=retry_delay,
        max_running=max_running,
    )


@dataclass
class RecordingBroker:
    """A `QueueBroker` that keeps what is sent to the queues it knows."""

    known: set[str] = field(default_factory=set)
    sent: list[tuple[str, str, dict[str, str] | None]] = field(default_factory=list)
    failures: int = 0  # the next N sends raise a platform fault

    def validate_queues(self, service: str, stage: str, queues: Sequence[object]) -> list[str]:
        return []

    def declare_queues(self, service: str, stage: str, queues: Sequence[object]) -> None:
        pass

    def set_mappings(
        self, service: str, stage: str, mappings: Sequence[tuple[str, str | None, object]]
    ) -> None:
        pass

    def send(self, queue: str, body: str, attributes: dict[str, str] | None = None) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the queue service is down")
        name = queue.rsplit(":", 1)[-1]
        if name not in self.known:
            raise ResourceNotFoundException(f"The specified queue does not exist: {queue}")
        self.sent.append((name, body, attributes))


async def stop(events: AsyncInvoker) -> None:
    """Close the invoker once its worker is back asleep: on Python 3.11 a cancel that lands
    just after a wake-up is swallowed."""
    await settle()
    await events.close()
    await asyncio.sleep(0)
