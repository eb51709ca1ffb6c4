"""End-to-end fixtures. Every server process is tracked and stopped at teardown; its log is
printed then, so pytest shows it for a failing test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.harness import LaminaServer


@pytest.fixture
def lamina_factory(tmp_path: Path) -> Iterator[Any]:
    servers: list[LaminaServer] = []

    def start(**settings: str) -> LaminaServer:
        server = LaminaServer(tmp_path / f"home{len(servers)}", settings)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
        print(f"--- {server.log_path.name} ---\n{server.log()}")


@pytest.fixture
def lamina(lamina_factory: Any) -> LaminaServer:
    server: LaminaServer = lamina_factory()
    return server
