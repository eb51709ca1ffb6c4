"""The Telegram bot example (examples/telegram-bot) end to end, as its README tells a user to
run it: the token put with `lamina params put`, the service deployed with `lamina deploy`,
then Telegram updates posted to each webhook route. A fake Bot API records the `sendMessage`
calls the bots make: every command must get its reply, in its chat, sent with the token from
the parameter store, by the runtime behind the route (PHP on php-fpm, or Python)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.fake_telegram import FakeTelegram, SentMessage
from tests.e2e.harness import LaminaServer, wait_until


def _php_installed() -> bool:
    fpm = shutil.which("php-fpm") or shutil.which("php-fpm8.2") or glob.glob("/usr/sbin/php-fpm*")
    return bool(shutil.which("php") and fpm)


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not _php_installed(), reason="needs php and php-fpm (php8.2-fpm)"),
]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "telegram-bot"
TOKEN = "7391005:AAF-lamina-e2e-bot-token"
UNKNOWN_CHAT = 404404  # the fake answers "Bad Request: chat not found" for it
HELP = "I know these commands:\n/start - who I am\n/help - this list\n/hello - a greeting"
SORRY = "Sorry, I did not understand that. Send /help to see what I can do."
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def replies(runtime: str, name: str) -> dict[str, str]:
    """What the bot answers to each message, spelled out again here: this is the spec."""
    return {
        "/start": f"Hello, {name}! I am a Telegram bot running on Lamina ({runtime}). "
        "Send /help to see what I can do.",
        "/help": HELP,
        "/hello": f"Hello, {name}! Nice to meet you.",
        "/hello@LaminaTestBot": f"Hello, {name}! Nice to meet you.",  # as sent in groups
        "What can you do?": SORRY,
        "/weather": SORRY,
    }


def update(update_id: int, chat_id: int, text: str, name: str = "Ada") -> dict[str, Any]:
    sender = {"id": chat_id, "is_bot": False, "first_name": name}
    message = {
        "message_id": update_id,
        "from": sender,
        "chat": {**sender, "type": "private"},
        "date": 1717171717,
        "text": text,
    }
    return {"update_id": update_id, "message": message}


def post(url: str, body: object, *, raw: bytes | None = None) -> tuple[int, Any]:
    """POST as Telegram does (JSON); the answer's status and JSON body."""
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with NO_PROXY.open(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def cli(
    server: LaminaServer, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args],
        cwd=cwd,
        env={**os.environ, "LAMINA_ENDPOINT": server.control_url, "NO_COLOR": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass(frozen=True, slots=True)
class DeployedBot:
    lamina: LaminaServer
    service: Path
    output: str  # what `lamina deploy` printed

    @property
    def base_url(self) -> str:
        return f"{self.lamina.data_url}/telegram-bot/dev"


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram(tokens=[TOKEN], missing_chats=[UNKNOWN_CHAT]) as fake:
        yield fake


@pytest.fixture
def bot(lamina_factory: Any, telegram: FakeTelegram, tmp_path: Path) -> DeployedBot:
    lamina: LaminaServer = lamina_factory()
    service = tmp_path / "telegram-bot"
    shutil.copytree(EXAMPLE, service, ignore=shutil.ignore_patterns(".serverless", "__pycache__"))

    put = cli(lamina, service, "params", "put", "/app/bot-token", TOKEN, "--type", "SecureString")
    assert put.returncode == 0, put.stdout + put.stderr
    deployed = cli(lamina, service, "deploy", env={"TELEGRAM_API_URL": telegram.url})
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    return DeployedBot(lamina, service, deployed.stdout)


def converse(url: str, telegram: FakeTelegram, runtime: str, first_chat: int) -> None:
    """Posts one update per message to `url`; each must be answered with exactly one reply."""
    for offset, (text, expected) in enumerate(replies(runtime, "Ada").items()):
        chat_id = first_chat + offset
        before = telegram.messages()

        status, body = post(url, update(chat_id, chat_id, text))

        assert (status, body) == (200, {"ok": True}), (url, text, status, body)
        sent = telegram.messages()
        assert sent == [*before, SentMessage(TOKEN, chat_id, expected)], (url, text)


def test_the_php_bot_answers_through_api_gateway_and_the_alb(
    bot: DeployedBot, telegram: FakeTelegram
) -> None:
    data = bot.lamina.data_url
    assert "web: telegram-bot-dev-web" in bot.output
    for endpoint in (
        f"ANY - {bot.base_url}",
        f"ANY - {bot.base_url}/{{proxy+}}",
        f"{data}/lambda/mytgbot (ALB)",
    ):
        assert endpoint in bot.output, bot.output

    with NO_PROXY.open(f"{bot.base_url}/", timeout=60) as page:  # what a browser sees
        assert json.loads(page.read())["description"].startswith("Telegram bot webhook")

    converse(f"{bot.base_url}/", telegram, "PHP", first_chat=1000)  # http: ANY /
    converse(f"{bot.base_url}/telegram/webhook", telegram, "PHP", first_chat=2000)  # {proxy+}
    converse(f"{data}/lambda/mytgbot", telegram, "PHP", first_chat=3000)  # the ALB rule

    assert telegram.refused == []


def test_the_python_bot_answers_on_its_own_route(bot: DeployedBot, telegram: FakeTelegram) -> None:
    assert "python: telegram-bot-dev-python" in bot.output
    assert f"POST - {bot.base_url}/python/webhook" in bot.output, bot.output

    converse(f"{bot.base_url}/python/webhook", telegram, "Python", first_chat=4000)

    assert telegram.refused == []


@pytest.mark.parametrize(("function", "path"), [("web", "/"), ("python", "/python/webhook")])
def test_what_the_bot_cannot_answer_is_logged_and_still_acknowledged(
    bot: DeployedBot, telegram: FakeTelegram, function: str, path: str
) -> None:
    url = bot.base_url + path

    # Telegram resends an update until it gets a 2xx: a failed reply must still answer 200.
    assert post(url, update(7001, UNKNOWN_CHAT, "/start")) == (200, {"ok": True})
    [(_, status, description)] = telegram.refused
    assert (status, description) == (400, "Bad Request: chat not found")
    # Updates that are not messages (an edit here) are acknowledged and ignored.
    edited = {"update_id": 7002, "edited_message": update(0, 5000, "/help")["message"]}
    assert post(url, edited) == (200, {"ok": True})
    status, body = post(url, None, raw=b"not json")
    assert (status, body["ok"]) == (400, False)
    assert post(url, update(7003, 5001, "/hello")) == (200, {"ok": True})
    assert telegram.messages() == [SentMessage(TOKEN, 5001, "Hello, Ada! Nice to meet you.")]

    # One line per update in the function's log, as `lamina logs` prints it; never the token.
    expected = [
        "[telegram-bot] update 7001: sendMessage: the Bot API refused the call: "
        "Bad Request: chat not found",
        "[telegram-bot] update 7002: not a message, ignored",
        "[telegram-bot] refused a request whose body is not a Telegram update",
        "[telegram-bot] update 7003: chat 5001: /hello answered",
    ]

    def logged() -> str | None:
        shown = cli(bot.lamina, bot.service, "logs", "-f", function)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        return shown.stdout if all(line in shown.stdout for line in expected) else None

    output = wait_until(logged, timeout=20, interval=0.5)
    assert TOKEN not in output
    positions = [output.index(line) for line in expected]
    assert positions == sorted(positions), output
