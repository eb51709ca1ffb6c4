"""The FastCGI client against an in-process FastCGI server on a Unix socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from lamina.services.fastcgi_client import FastCgiClient, FastCgiClosed
from lamina.wire.fastcgi import (
    KEEP_CONN,
    RecordReader,
    RecordType,
    encode_pairs,
    end_request,
    record,
)

Answer = Callable[[int], bytes]


def hello(request_id: int) -> bytes:
    return record(RecordType.STDOUT, request_id, b"Status: 201\r\n\r\nhi") + end_request(
        request_id, 0
    )


async def serve(path: Path, answer: Answer, *, honour_keep_conn: bool = True) -> list[int]:
    """A FastCGI server; returns the list it appends each connection's number to."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections) + 1)
        records = RecordReader()
        keep = False
        while data := await reader.read(65536):
            for rec in records.feed(data):
                if rec.type == RecordType.BEGIN_REQUEST:
                    keep = bool(rec.content[2] & KEEP_CONN) and honour_keep_conn
                elif rec.type == RecordType.STDIN and not rec.content:
                    writer.write(answer(rec.request_id))
                    await writer.drain()
                    if not keep:
                        writer.close()
                        return

    await asyncio.start_unix_server(handle, str(path))
    return connections


PARAMS = encode_pairs([(b"REQUEST_METHOD", b"GET")])


async def test_keep_conn_reuses_one_connection(tmp_path: Path) -> None:
    connections = await serve(tmp_path / "s", hello)
    client = FastCgiClient(str(tmp_path / "s"))
    answers = [await client.request(PARAMS, b"") for _ in range(3)]
    assert [a.stdout for a in answers] == [b"Status: 201\r\n\r\nhi"] * 3
    assert [a.request_id for a in answers] == [1, 2, 3]
    assert (connections, client.connections, client.requests) == ([1], 1, 3)
    client.close()


async def test_it_connects_again_when_the_server_closes(tmp_path: Path) -> None:
    connections = await serve(tmp_path / "s", hello, honour_keep_conn=False)
    client = FastCgiClient(str(tmp_path / "s"))
    for _ in range(3):
        assert (await client.request(PARAMS, b"x" * 100_000)).app_status == 0
        for _ in range(1000):  # a bounded wait for the server's close to arrive
            if not client.connected:
                break
            await asyncio.sleep(0.001)
    assert connections == [1, 2, 3]
    client.close()


async def test_aborting_a_request(tmp_path: Path) -> None:
    await serve(tmp_path / "s", lambda request_id: record(RecordType.STDOUT, request_id, b"x"))
    client = FastCgiClient(str(tmp_path / "s"))
    await client.connect()
    task = asyncio.ensure_future(client.request(PARAMS, b""))
    await asyncio.sleep(0)  # the request is written; its answer never ends
    assert not task.done() and client.requests == 1
    client.abort(tell=True)
    with pytest.raises(FastCgiClosed, match="aborted"):
        await task


async def test_bytes_that_are_not_fastcgi(tmp_path: Path) -> None:
    await serve(tmp_path / "s", lambda request_id: b"HTTP/1.1 200 OK\r\n\r\n")
    client = FastCgiClient(str(tmp_path / "s"))
    with pytest.raises(FastCgiClosed, match="not FastCGI"):
        await client.request(PARAMS, b"")


async def test_nothing_listening(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        await FastCgiClient(str(tmp_path / "missing")).connect()
