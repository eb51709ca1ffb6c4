"""How a test hears from its functions whatever the sandbox: over HTTP, not the host's disk.

Under the Linux sandbox a function sees neither the test's temporary directories nor the
host's process ids, so tests that used a shared folder or `os.getpid()` to observe
functions use this instead: a small HTTP server in the test process (functions share the
host's network by default) and the host-side view of environments.

In a handler (stdlib only):

    urllib.request.urlopen(f"{event['mailbox']}/post/{context.aws_request_id}", b"done")
    urllib.request.urlopen(f"{event['mailbox']}/arrive/round1?expected=20&wait=20").read()

`post` stores a message; `arrive` counts the caller in a group and answers, with the count,
once `expected` have arrived (or after `wait` seconds): a barrier across environments.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Mailbox:
    def __init__(self) -> None:
        self.messages: dict[str, bytes] = {}
        self._arrivals: dict[str, int] = {}
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def arrive(self, group: str) -> None:
        """Count the test itself in a group (to release a barrier)."""
        with self._changed:
            self._arrivals[group] = self._arrivals.get(group, 0) + 1
            self._changed.notify_all()

    def arrivals(self, group: str) -> int:
        with self._changed:
            return self._arrivals.get(group, 0)

    def _wait(self, group: str, expected: int, timeout: float) -> int:
        with self._changed:
            self._arrivals[group] = self._arrivals.get(group, 0) + 1
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._arrivals[group] >= expected, timeout)
            return self._arrivals[group]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        mailbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                key = self.path.removeprefix("/post/")
                with mailbox._changed:
                    mailbox.messages[key] = body
                    mailbox._changed.notify_all()
                self._answer(b"ok")

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                group = url.path.removeprefix("/arrive/")
                count = mailbox._wait(
                    group, int(query.get("expected", 1)), float(query.get("wait", 20))
                )
                self._answer(str(count).encode())

        return Handler


@contextmanager
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.start()
    try:
        yield box
    finally:
        box.close()


def descendants(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of `pid` and every process below it, as the host sees them."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat:
                parents.setdefault(int(stat[1]), []).append(int(entry))
    found, stack = set(), [pid]
    while stack:
        current = stack.pop()
        stat = _stat(current)
        if stat:
            found.add((current, stat[19]))
            stack.extend(parents.get(current, []))
    return found


def alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those still running (a reused pid has another start time; a zombie is gone)."""
    return {(pid, started) for pid, started in processes if (_stat(pid) or [])[19:20] == [started]}


def _stat(pid: int) -> list[str]:
    # Fields after the command name: state is [0], ppid [1], start time [19].
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []
    return [] if fields[0] == "Z" else fields
