"""`--since` values, as `sls logs --startTime` takes them."""

from __future__ import annotations

import re
from datetime import datetime

from lamina.cli.shared import CliError

_RELATIVE = re.compile(r"(\d+)\s*(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_since(value: str, now_ms: int) -> int:
    """Epoch milliseconds for `30s`, `10m`, `2h`, `3d`, an ISO 8601 time or epoch milliseconds.

    An ISO time without an offset is local time, as a person typing it means.
    """
    text = value.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now_ms - int(relative.group(1)) * _UNIT_MS[relative.group(2)]
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(
            f"--since {value!r}: expected a duration such as 30s, 10m, 2h or 3d, "
            "an ISO 8601 time, or epoch milliseconds"
        ) from None
    return int(moment.timestamp() * 1000)  # naive times are taken as local time
