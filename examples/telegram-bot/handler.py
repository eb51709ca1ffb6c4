"""The same Telegram bot as public/index.php + src/BotApp.php, as a Python function.

`webhook` takes the API Gateway (REST or HTTP API) or ALB event of Telegram's POST, answers
the update with one `sendMessage` call, and returns 200. Standard library only.
"""

import base64
import json
import os
import re
import sys
import urllib.error
import urllib.request

HELP = "I know these commands:\n/start - who I am\n/help - this list\n/hello - a greeting"
COMMAND = re.compile(r"/(\w+)(?:@\w+)?(?:\s|$)")


class TelegramError(Exception):
    """A Bot API call that failed: Telegram unreachable, or an answer with "ok": false."""


def webhook(event, context):
    if (event.get("httpMethod") or event["requestContext"]["http"]["method"]) != "POST":
        return _json(200, {"ok": True, "description": "Telegram bot webhook: POST updates here"})
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    try:
        update = json.loads(body)
    except ValueError:
        update = None
    if not isinstance(update, dict):
        _log("refused a request whose body is not a Telegram update")
        return _json(400, {"ok": False, "description": "the body must be a Telegram update (JSON)"})
    update_id = update.get("update_id") if isinstance(update.get("update_id"), int) else "?"
    try:
        _log(handle(update))
    except TelegramError as error:
        # Telegram resends an update until it gets a 2xx, holding back the ones after it.
        _log(f"update {update_id}: {error}")
    return _json(200, {"ok": True})


def handle(update):
    """Answers one update; returns what was done, in one line for the log."""
    update_id = update.get("update_id") if isinstance(update.get("update_id"), int) else "?"
    message = update.get("message")
    chat = message.get("chat") if isinstance(message, dict) else None
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    if not isinstance(chat_id, (int, str)):
        return f"update {update_id}: not a message, ignored"
    text = message.get("text") if isinstance(message.get("text"), str) else ""
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    name = sender.get("first_name") if isinstance(sender.get("first_name"), str) else "there"
    found = command(text)
    send_message(chat_id, reply(found, name))
    return f"update {update_id}: chat {chat_id}: {found or 'text'} answered"


def reply(found, name):
    if found == "/start":
        return (
            f"Hello, {name}! I am a Telegram bot running on Lamina (Python). "
            "Send /help to see what I can do."
        )
    if found == "/help":
        return HELP
    if found == "/hello":
        return f"Hello, {name}! Nice to meet you."
    return "Sorry, I did not understand that. Send /help to see what I can do."


def command(text):
    """`/start` for "/start", "/Start@YourBot" or "/start some-payload"; None for plain text."""
    match = COMMAND.match(text)
    return "/" + match.group(1).lower() if match else None


def send_message(chat_id, text):
    token = os.environ.get("BOT_TOKEN")
    if not token:
        raise TelegramError("BOT_TOKEN is not set; put it with `lamina params put /app/bot-token`")
    base_url = (os.environ.get("TELEGRAM_API_URL") or "https://api.telegram.org").rstrip("/")
    request = urllib.request.Request(
        f"{base_url}/bot{token}/sendMessage",
        data=json.dumps({"chat_id": chat_id, "text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
    except urllib.error.HTTPError as error:
        raw = error.read()  # Telegram explains a refusal in the JSON body of the 4xx
    except OSError as error:
        # Not the URL: it holds the token.
        raise TelegramError(f"sendMessage: cannot reach {base_url}: {error}") from None
    try:
        result = json.loads(raw)
    except ValueError:
        result = None
    if not isinstance(result, dict) or result.get("ok") is not True:
        description = result.get("description") if isinstance(result, dict) else "not JSON"
        raise TelegramError(f"sendMessage: the Bot API refused the call: {description}")


def _json(status, body):
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def _log(line):
    print(f"[telegram-bot] {line}", file=sys.stderr)
