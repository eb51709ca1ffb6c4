"""The PHP ports in `wire.fpm_php` against PHP itself: one `php` process checks a few hundred
generated cases of `json_encode`, `http_build_query` and `urlencode` at once."""

from __future__ import annotations

import random
import shutil
import subprocess
from typing import Any

import orjson
import pytest

from lamina.wire.fpm_php import array_key, http_build_query, json_encode, latin1, urlencode

PHP = shutil.which("php")
pytestmark = pytest.mark.skipif(PHP is None, reason="needs the php CLI")

SCRIPT = r"""
$cases = json_decode(stream_get_contents(STDIN), true);
$out = [];
foreach ($cases['json'] as $j) { $out['json'][] = json_encode(json_decode($j, true)); }
foreach ($cases['query'] as $j) { $out['query'][] = http_build_query(json_decode($j, true)); }
foreach ($cases['url'] as $h) { $out['url'][] = urlencode(hex2bin($h)); }
echo json_encode($out);
"""

ALPHABET = "ab/\\\"' \n\t\x01\x7f~é😀[]%+=&.-_0"


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 8)))


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 9 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(10**12), 10**12)
    if kind == 2:
        return rng.choice([0.5, 1.0, -2.25, 1e-7, 1e100, 3.14159, 0.1 + 0.2, 1e21])
    if kind <= 5:
        return _text(rng)
    if kind <= 7:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = [rng.choice(["0", "1", "2", "a", "x/y", "é", "", "01", "-1"]) for _ in range(3)]
    return {k: _value(rng, depth + 1) for k in keys[: rng.randint(0, 3)]}


def _query_array(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    array: dict[str, Any] = {}
    for _ in range(rng.randint(0, 4)):
        key = rng.choice(["a", "b c", "0", "7", "k[]", "é", "x/y"])
        if depth < 2 and rng.random() < 0.3:
            array[key] = _query_array(rng, depth + 1)
        else:
            array[key] = _text(rng)
    return array


def _as_php(array: dict[str, Any]) -> dict[int | str, Any]:
    """The same array as PHP holds it: integer keys, strings as bytes (latin-1)."""
    return {
        array_key(latin1(k)): _as_php(v) if isinstance(v, dict) else latin1(v)
        for k, v in array.items()
    }


def test_ports_agree_with_php() -> None:
    assert PHP is not None
    rng = random.Random(20261128)
    values = [_value(rng) for _ in range(300)]
    arrays = [_query_array(rng) for _ in range(300)]
    blobs = [bytes(rng.randrange(256) for _ in range(rng.randint(0, 12))) for _ in range(300)]
    cases = {
        "json": [orjson.dumps(v).decode() for v in values],
        "query": [orjson.dumps(a).decode() for a in arrays],
        "url": [b.hex() for b in blobs],
    }
    done = subprocess.run(
        [PHP, "-n", "-r", SCRIPT],
        input=orjson.dumps(cases),
        capture_output=True,
        check=True,
        timeout=60,
    )
    php = orjson.loads(done.stdout)
    for value, expected in zip(values, php["json"], strict=True):
        assert json_encode(orjson.loads(orjson.dumps(value))) == expected, value
    for array, expected in zip(arrays, php["query"], strict=True):
        assert http_build_query(_as_php(array)) == expected, array
    for blob, expected in zip(blobs, php["url"], strict=True):
        assert urlencode(blob.decode("latin-1")) == expected, blob
