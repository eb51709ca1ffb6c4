"""A fake Telegram Bot API for end-to-end tests: `POST /bot<token>/sendMessage` on 127.0.0.1,
answered as Telegram answers it, every accepted message recorded with the token it came with.

A bot calls the API before it answers its webhook, so a message is recorded by the time the
webhook's response arrives: tests read `messages()` without waiting. Like Telegram, the fake
refuses unknown tokens (401 Unauthorized) and messages to chats it does not know (400 "chat
not found"; the ids in `missing_chats`), so the bots' error paths can be exercised too.

`python -m tests.e2e.fake_telegram [PORT]` runs it alone, taking any token and printing each
message, to try a bot without Telegram (examples/telegram-bot/README.md).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

_METHOD_PATH = re.compile(r"/bot(?P<token>[^/]+)/(?P<method>\w+)")


@dataclass(frozen=True, slots=True)
class SentMessage:
    token: str
    chat_id: int | str
    text: str


class FakeTelegram:
    def __init__(
        self,
        tokens: Collection[str] | None,  # None: any token
        missing_chats: Collection[int] = (),
        *,
        port: int = 0,
    ) -> None:
        self.tokens = None if tokens is None else frozenset(tokens)
        self.missing_chats = frozenset(missing_chats)
        self.refused: list[tuple[str, int, str]] = []  # (path, status, description)
        self.echo = False  # print each message as it arrives
        self._messages: list[SentMessage] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __repr__(self) -> str:
        return f"<FakeTelegram {self.url} messages={len(self._messages)}>"

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeTelegram:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def messages(self, token: str | None = None) -> list[SentMessage]:
        """The messages sent so far, oldest first (with `token`: those sent with it)."""
        with self._lock:
            return [m for m in self._messages if token in (None, m.token)]

    def _send_message(self, token: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat_id, text = params.get("chat_id"), params.get("text")
        if not isinstance(chat_id, int | str) or chat_id == "":
            return _error(HTTPStatus.BAD_REQUEST, "Bad Request: chat_id is empty")
        if not isinstance(text, str) or not text.strip():
            return _error(HTTPStatus.BAD_REQUEST, "Bad Request: message text is empty")
        if _as_int(chat_id) in self.missing_chats:
            return _error(HTTPStatus.BAD_REQUEST, "Bad Request: chat not found")
        with self._lock:
            self._messages.append(SentMessage(token, _as_int(chat_id), text))
            message_id = len(self._messages)
        if self.echo:
            print(f"sendMessage to chat {chat_id}:\n{text}\n", flush=True)
        chat = {"id": _as_int(chat_id), "type": "private"}
        result = {"message_id": message_id, "date": int(time.time()), "chat": chat, "text": text}
        return HTTPStatus.OK, {"ok": True, "result": result}

    def answer(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        match = _METHOD_PATH.fullmatch(path.split("?", 1)[0])
        token, method = (match["token"], match["method"]) if match else ("", "")
        if not token or (self.tokens is not None and token not in self.tokens):
            status, body = _error(HTTPStatus.UNAUTHORIZED, "Unauthorized")
        elif method != "sendMessage":
            status, body = _error(HTTPStatus.NOT_FOUND, "Not Found")
        else:
            status, body = self._send_message(token, params)
        if status != HTTPStatus.OK:
            with self._lock:
                self.refused.append((path, status, body["description"]))
        return status, body


def _error(status: HTTPStatus, description: str) -> tuple[int, dict[str, Any]]:
    return status, {"ok": False, "error_code": int(status), "description": description}


def _as_int(value: int | str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value  # "@channelusername"


def _handler_for(fake: FakeTelegram) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            content_type = self.headers.get_content_type()
            params: Any
            try:
                if content_type == "application/json":
                    params = json.loads(raw or b"{}")
                else:  # Telegram also takes form posts
                    params = dict(parse_qsl(raw.decode()))
            except ValueError:
                params = None
            if isinstance(params, dict):
                status, body = fake.answer(self.path, params)
            else:
                status, body = _error(HTTPStatus.BAD_REQUEST, "Bad Request: can't parse JSON")
            self._reply(status, body)

        def do_GET(self) -> None:
            self._reply(*fake.answer(self.path, {}))

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the recorded messages are the log

    return Handler


def main(argv: list[str]) -> None:
    port = int(argv[1]) if len(argv) > 1 else 9099
    with FakeTelegram(tokens=None, port=port) as fake:
        fake.echo = True
        print(f"fake Telegram Bot API on {fake.url}; Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv)
