"""The Runtime API for a function without network: Lamina listens inside its namespace.

A function with `network: none` has only a loopback interface of its own, so it cannot
reach its Runtime API endpoint on the host's 127.0.0.1. Its sandbox opens a listening
socket on the same port inside its network namespace and hands it to Lamina, which accepts
there and relays each connection to the real endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket


class Forwarder:
    def __init__(self, listener: socket.socket, target: str) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host or "127.0.0.1", int(port))
        self._listener = listener
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.AbstractServer | None = None
        self._starting = asyncio.get_running_loop().create_task(self._serve())

    def __repr__(self) -> str:
        return f"<Forwarder to {self._target[0]}:{self._target[1]} connections={len(self._tasks)}>"

    async def _serve(self) -> None:
        self._listener.setblocking(False)
        self._server = await asyncio.start_server(self._relay, sock=self._listener)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            self._tasks.discard(task)

    def close(self) -> None:
        self._starting.cancel()
        if self._server is not None:
            self._server.close()
        else:
            self._listener.close()
        for task in list(self._tasks):
            task.cancel()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
