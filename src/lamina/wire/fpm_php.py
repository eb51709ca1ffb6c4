"""The few PHP functions whose exact output Bref's FPM runtime puts on the FastCGI wire.

Bref builds QUERY_STRING with `http_build_query` over its own parse of the query string, and
LAMBDA_REQUEST_CONTEXT / LAMBDA_INVOCATION_CONTEXT with `json_encode`; an app reading them
sees PHP's spelling, so these are ports, byte for byte, of:

- `urlencode` (RFC 1738 form: a space is `+`, only `A-Za-z0-9-_.` stay as they are);
- `http_build_query($array)` with its defaults (nested arrays as `a%5Bb%5D=`, null skipped);
- Bref's `HttpRequestEvent::queryStringToArray` (how `a[]=1&a[]=2` becomes a list);
- `json_encode($value)` with no flags (`\\/`, `\\uXXXX` for non-ASCII, `[]` for an empty
  array, and a JSON object whose keys are 0..n-1 is a PHP list, so it comes back as one).

Query text is handled as bytes mapped 1:1 onto `str` code points (latin-1), because PHP
strings are bytes: percent-decoding may produce any byte sequence.

PHP arrays are modelled as dicts whose keys are `int` when PHP would make them integers.
One leniency: where PHP would throw (`a=1&a[b]=2` indexes a string), the string is replaced
by an array instead of failing the request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

PhpArray = dict[int | str, Any]

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
_ENCODE = [chr(b) if b in _SAFE else f"%{b:02X}" for b in range(256)]
_ENCODE[0x20] = "+"
_INT_KEY = re.compile(r"-?[1-9][0-9]{0,18}|0")
_LEADING_INT = re.compile(r"\s*[+-]?\d+")


def latin1(data: str) -> str:
    """UTF-8 text as the byte string PHP would hold (one code point per byte)."""
    return data.encode("utf-8", "surrogateescape").decode("latin-1")


def urlencode(data: str) -> str:
    """PHP's `urlencode` of a byte string (code points 0-255)."""
    return "".join([_ENCODE[ord(c)] for c in data])


def urldecode(data: str) -> str:
    """PHP's `urldecode`: `+` is a space, `%XX` a byte, a malformed `%` stays."""
    return unquote_to_bytes(data.replace("+", " ")).decode("latin-1")


def array_key(key: str) -> int | str:
    """The key PHP stores: a canonical decimal integer string becomes an int."""
    if _INT_KEY.fullmatch(key):
        number = int(key)
        if -(2**63) <= number < 2**63:
            return number
    return key


def to_int(value: str) -> int:
    """PHP's `(int)` cast of a string: its leading integer, else 0."""
    match = _LEADING_INT.match(value)
    return int(match.group()) if match else 0


def _append(array: PhpArray, value: Any) -> int:
    ints = [k for k in array if isinstance(k, int)]
    index = max(max(ints) + 1, 0) if ints else 0
    array[index] = value
    return index


def query_to_array(query: str) -> PhpArray:
    """Bref's `queryStringToArray` (a `parse_str` without PHP's key mangling)."""
    query = query.strip(" \t\n\r\0\x0b")
    if query[:1] in ("?", "#", "&"):
        query = query[1:]
    parameters: PhpArray = {}
    if not query:
        return parameters
    for parameter in query.split("&"):
        if not parameter:
            continue
        raw_key, _, raw_value = parameter.partition("=")
        key, value = urldecode(raw_key), urldecode(raw_value)
        if "[" not in key:
            parameters[array_key(key)] = value
        tokens = key.split("[")
        current = parameters
        last = len(tokens) - 1
        for index, token in enumerate(tokens):
            if index and not token.endswith("]"):
                return {}  # an unclosed `[`: Bref drops the whole query string
            if index == last:
                if token == "]":
                    _append(current, value)
                else:
                    current[array_key(token.removesuffix("]"))] = value
                break
            next_key: int | str
            if token == "]":
                next_key = _append(current, {})
            else:
                next_key = array_key(token.removesuffix("]"))
                if current.get(next_key) is None:
                    current[next_key] = {}
            if not isinstance(current[next_key], dict):
                current[next_key] = {}
            current = current[next_key]
    return parameters


def http_build_query(array: Mapping[int | str, Any]) -> str:
    """PHP's `http_build_query`; keys and values are byte strings (see `latin1`)."""
    parts: list[str] = []
    for key, value in array.items():
        _build(parts, urlencode(str(key)), value)
    return "&".join(parts)


def _build(parts: list[str], name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _build(parts, f"{name}%5B{urlencode(str(key))}%5D", inner)
        return
    if isinstance(value, list):
        for key, inner in enumerate(value):
            _build(parts, f"{name}%5B{key}%5D", inner)
        return
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, str):
        text = value
    else:
        text = str(value)
    parts.append(f"{name}={urlencode(text)}")


# json_encode

_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f"}
_JSON_ESCAPES.update({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _json_string(text: str) -> str:
    out = ['"']
    for char in text:
        code = ord(char)
        escaped = _JSON_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif code < 0x20:
            out.append(f"\\u{code:04x}")
        elif code < 0x80:
            out.append(char)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    out.append('"')
    return "".join(out)


def _json_float(number: float) -> str:
    text = repr(number)
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa}e{sign}{int(exponent.lstrip('+-'))}"
    return text.removesuffix(".0")  # no JSON_PRESERVE_ZERO_FRACTION


def _is_list(value: Mapping[Any, Any]) -> bool:
    return all(key in (index, str(index)) for index, key in enumerate(value))


class _Slow(Exception):
    """A value the fast path cannot spell as PHP does (a float)."""


def _php_shaped(value: Any) -> Any:
    """`value` with PHP's arrays in JSON's shapes: an empty or 0..n-1-keyed object is a
    list. Raises `_Slow` for floats and DEL, which PHP spells differently from Python."""
    kind = type(value)
    if kind is str:
        if "\x7f" in value:
            raise _Slow
        return value
    if kind is dict:
        if not value or _is_list(value):
            return [_php_shaped(v) for v in value.values()]
        shaped = {}
        for key, item in value.items():
            if type(key) is not str or "\x7f" in key:
                key = _php_shaped(str(key))
            # Strings are most of an event: checked here rather than in a call.
            if type(item) is not str or "\x7f" in item:
                item = _php_shaped(item)
            shaped[key] = item
        return shaped
    if kind is list:
        return [_php_shaped(v) for v in value]
    if value is None or kind is bool or kind is int:
        return value
    if isinstance(value, Mapping):
        return _php_shaped(dict(value))
    raise _Slow


def json_encode(value: Any) -> str:
    """PHP's `json_encode($value)` of what `json_decode($json, true)` gave it.

    The C encoder of the standard library writes what PHP writes (`\\uXXXX` in lower case,
    surrogate pairs, the same short escapes) except for `/`, which only occurs inside
    strings and is escaped after; the character-by-character encoder handles floats."""
    try:
        shaped = _php_shaped(value)
    except _Slow:
        return _json_encode(value)
    return _JSON.encode(shaped).replace("/", "\\/")


_JSON = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), check_circular=False)


def json_string(text: str) -> str:
    """`json_encode` of one string."""
    if "\x7f" in text:
        return _json_string(text)
    return _JSON.encode(text).replace("/", "\\/")


def _json_encode(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_json_encode(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if _is_list(value):
            return "[" + ",".join(_json_encode(v) for v in value.values()) + "]"
        items = (f"{_json_string(str(k))}:{_json_encode(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    raise TypeError(f"json_encode cannot encode {type(value).__name__}")
