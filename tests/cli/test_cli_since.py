from __future__ import annotations

from datetime import datetime

import pytest

from lamina.cli.shared import CliError
from lamina.cli.since import parse_since

NOW = 1_700_000_000_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30s", NOW - 30_000),
        ("10m", NOW - 600_000),
        ("2h", NOW - 7_200_000),
        ("3d", NOW - 259_200_000),
        ("1699999999000", 1_699_999_999_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000_000),
    ],
)
def test_since_forms(value: str, expected: int) -> None:
    assert parse_since(value, NOW) == expected


def test_iso_time_without_offset_is_local_time() -> None:
    assert parse_since("2023-11-14T22:13:20", NOW) == int(
        datetime(2023, 11, 14, 22, 13, 20).timestamp() * 1000
    )


def test_bad_since_names_the_value_and_the_forms() -> None:
    with pytest.raises(CliError, match=r"--since 'yesterday': expected a duration such as 30s"):
        parse_since("yesterday", NOW)
