"""FastCGI 1.0 records and the CGI response inside them, without I/O.

A request, as a web server sends it to php-fpm:

    BEGIN_REQUEST(role RESPONDER, flags KEEP_CONN?)
    PARAMS*  (name-value pairs)   then an empty PARAMS record: end of the stream
    STDIN*   (the request body)   then an empty STDIN record: end of the stream

The answer: STDOUT* and STDERR* records (each stream ends with an empty record, which is
optional for the application to send), then END_REQUEST(appStatus, protocolStatus). With
KEEP_CONN the application leaves the connection open for the next request; without it, it
closes the connection after END_REQUEST.

Rules kept here:
- every record has version 1, an 8-byte header, at most 65535 content bytes, and padding so
  that header + content + padding is a multiple of 8;
- large streams are split into records of `CHUNK` bytes (a multiple of 8: no padding needed);
- a name or value shorter than 128 bytes has a 1-byte length, any other a 4-byte length with
  its high bit set;
- records of several requests may interleave on one connection: the parser keys everything
  by request id, although php-fpm serves one request per connection at a time;
- request id 0 is the connection's own (management records such as GET_VALUES).

The CGI response in STDOUT (RFC 3875 section 6) is headers, a blank line, the body. `Status:`
gives the status code (default 200); a `Location:` without `Status:` is a redirect, 302.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

VERSION = 1
HEADER = struct.Struct(">BBHHBx")
_BEGIN_BODY = struct.Struct(">HB5x")
_END_BODY = struct.Struct(">IB3x")
MAX_CONTENT = 0xFFFF
CHUNK = 0xFFF8  # the largest multiple of 8 a record can carry: big streams need no padding
_PADDING = [b"\0" * n for n in range(8)]
_SHORT = [bytes((n,)) for n in range(0x80)]  # 1-byte lengths, made once


class RecordType(IntEnum):
    BEGIN_REQUEST = 1
    ABORT_REQUEST = 2
    END_REQUEST = 3
    PARAMS = 4
    STDIN = 5
    STDOUT = 6
    STDERR = 7
    DATA = 8
    GET_VALUES = 9
    GET_VALUES_RESULT = 10
    UNKNOWN_TYPE = 11


class Role(IntEnum):
    RESPONDER = 1
    AUTHORIZER = 2
    FILTER = 3


class ProtocolStatus(IntEnum):
    REQUEST_COMPLETE = 0
    CANT_MPX_CONN = 1
    OVERLOADED = 2
    UNKNOWN_ROLE = 3


KEEP_CONN = 1  # BEGIN_REQUEST flag: do not close the connection after this request


class ProtocolError(ValueError):
    """Bytes that are not FastCGI (wrong version, or a malformed record body)."""


@dataclass(frozen=True, slots=True)
class Record:
    type: int  # a RecordType, or a type this codec does not know
    request_id: int
    content: bytes


# encoding


def record(type_: int, request_id: int, content: bytes = b"") -> bytes:
    """One record. `content` must fit (use `stream` for anything that may not)."""
    length = len(content)
    if length > MAX_CONTENT:
        raise ValueError(f"record content is {length} bytes, over FastCGI's {MAX_CONTENT}")
    padding = -length & 7
    return HEADER.pack(VERSION, type_, request_id, length, padding) + content + _PADDING[padding]


Parts = list[bytes | memoryview]


def stream(type_: int, request_id: int, data: bytes) -> Parts:
    """A whole stream: its records, then the empty record that ends it. A large stream's
    chunks are views of `data`, not copies."""
    parts: Parts = []
    if len(data) <= MAX_CONTENT:
        if data:
            parts.append(record(type_, request_id, data))
    else:
        view = memoryview(data)
        for start in range(0, len(data), CHUNK):
            chunk = view[start : start + CHUNK]
            padding = -len(chunk) & 7
            parts.append(HEADER.pack(VERSION, type_, request_id, len(chunk), padding))
            parts.append(chunk)
            if padding:
                parts.append(_PADDING[padding])
    parts.append(HEADER.pack(VERSION, type_, request_id, 0, 0))
    return parts


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n > 0x7FFFFFFF:
        raise ValueError(f"a FastCGI name or value is at most 2**31-1 bytes, got {n}")
    return struct.pack(">I", n | 0x80000000)


def encode_pairs(pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Name-value pairs, as PARAMS and GET_VALUES(_RESULT) carry them."""
    parts: list[bytes] = []
    append = parts.append
    short = _SHORT
    for name, value in pairs:
        n, v = len(name), len(value)
        append(short[n] if n < 0x80 else _length(n))
        append(short[v] if v < 0x80 else _length(v))
        append(name)
        append(value)
    return b"".join(parts)


def decode_pairs(data: bytes) -> list[tuple[bytes, bytes]]:
    pairs = []
    pos, end = 0, len(data)
    while pos < end:
        lengths = []
        for _ in range(2):
            if pos >= end:
                raise ProtocolError("name-value pair truncated in its lengths")
            first = data[pos]
            if first < 0x80:
                lengths.append(first)
                pos += 1
            else:
                if pos + 4 > end:
                    raise ProtocolError("name-value pair truncated in a 4-byte length")
                lengths.append(struct.unpack_from(">I", data, pos)[0] & 0x7FFFFFFF)
                pos += 4
        n, v = lengths
        if pos + n + v > end:
            raise ProtocolError("name-value pair longer than its record")
        pairs.append((data[pos : pos + n], data[pos + n : pos + n + v]))
        pos += n + v
    return pairs


def begin_request(request_id: int, *, keep_conn: bool, role: Role = Role.RESPONDER) -> bytes:
    body = _BEGIN_BODY.pack(role, KEEP_CONN if keep_conn else 0)
    return record(RecordType.BEGIN_REQUEST, request_id, body)


def encode_request(
    request_id: int, params: bytes, stdin: bytes, *, keep_conn: bool = True
) -> Parts:
    """A whole RESPONDER request; `params` is `encode_pairs(...)` output. Returned as parts
    for `writelines`, so a large body is not copied into one buffer."""
    return [
        begin_request(request_id, keep_conn=keep_conn),
        *stream(RecordType.PARAMS, request_id, params),
        *stream(RecordType.STDIN, request_id, stdin),
    ]


def abort_request(request_id: int) -> bytes:
    return record(RecordType.ABORT_REQUEST, request_id)


def get_values(names: Sequence[bytes]) -> bytes:
    """A management query, such as `FCGI_MPXS_CONNS` or `FCGI_MAX_CONNS`."""
    return record(RecordType.GET_VALUES, 0, encode_pairs((n, b"") for n in names))


def end_request(request_id: int, app_status: int, protocol_status: int = 0) -> bytes:
    """What an application sends last (fakes and tests play the application)."""
    body = _END_BODY.pack(app_status & 0xFFFFFFFF, protocol_status)
    return record(RecordType.END_REQUEST, request_id, body)


# decoding


class RecordReader:
    """Bytes in, whole records out; keeps a partial record between calls."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Record]:
        buffer = self._buffer
        buffer += data
        records = []
        pos, size = 0, len(buffer)
        while size - pos >= 8:
            version, type_, request_id, length, padding = HEADER.unpack_from(buffer, pos)
            if version != VERSION:
                raise ProtocolError(f"FastCGI version {version} at byte {pos}, expected 1")
            end = pos + 8 + length
            if size < end + padding:
                break
            records.append(Record(type_, request_id, bytes(buffer[pos + 8 : end])))
            pos = end + padding
        if pos:
            del buffer[:pos]
        return records

    @property
    def pending(self) -> int:
        """Bytes of a record not yet complete."""
        return len(self._buffer)


@dataclass(slots=True)
class Response:
    """One request's answer: its streams and how it ended."""

    request_id: int
    stdout: bytes
    stderr: bytes
    app_status: int
    protocol_status: int


@dataclass(slots=True)
class _Partial:
    stdout: list[bytes] = field(default_factory=list)
    stderr: list[bytes] = field(default_factory=list)


class ResponseParser:
    """Collects STDOUT and STDERR per request id until that request's END_REQUEST.

    `feed` returns what completed: `Response`s, and management records (request id 0, or
    types a client does not expect) as `Record`s. Records of a request never begun are a
    protocol error: a confused peer must not have its output attributed to someone else.
    """

    __slots__ = ("_partial", "_reader")

    def __init__(self) -> None:
        self._reader = RecordReader()
        self._partial: dict[int, _Partial] = {}

    def begin(self, request_id: int) -> None:
        self._partial[request_id] = _Partial()

    def forget(self, request_id: int) -> None:
        self._partial.pop(request_id, None)

    def stderr_so_far(self, request_id: int) -> bytes:
        partial = self._partial.get(request_id)
        return b"".join(partial.stderr) if partial else b""

    def feed(self, data: bytes) -> list[Response | Record]:
        done: list[Response | Record] = []
        for rec in self._reader.feed(data):
            if rec.request_id == 0:
                done.append(rec)
                continue
            partial = self._partial.get(rec.request_id)
            if partial is None:
                raise ProtocolError(f"record type {rec.type} for unknown request {rec.request_id}")
            if rec.type == RecordType.STDOUT:
                if rec.content:
                    partial.stdout.append(rec.content)
            elif rec.type == RecordType.STDERR:
                if rec.content:
                    partial.stderr.append(rec.content)
            elif rec.type == RecordType.END_REQUEST:
                if len(rec.content) < 8:
                    raise ProtocolError(f"END_REQUEST body is {len(rec.content)} bytes, not 8")
                app_status, protocol_status = _END_BODY.unpack_from(rec.content)
                del self._partial[rec.request_id]
                done.append(
                    Response(
                        rec.request_id,
                        _join(partial.stdout),
                        _join(partial.stderr),
                        app_status,
                        protocol_status,
                    )
                )
            else:
                done.append(rec)
        return done


def _join(chunks: list[bytes]) -> bytes:
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# the CGI response inside STDOUT


@dataclass(frozen=True, slots=True)
class CgiResponse:
    status: int
    headers: list[tuple[str, str]]  # in order, names as sent, `Status` left out
    body: bytes


class MalformedCgi(ValueError):
    """STDOUT that is not a CGI response (no header block, or a `Status:` without a code)."""


def parse_cgi(stdout: bytes) -> CgiResponse:
    """Split a CGI response into status, headers (latin-1 text) and the body (bytes)."""
    crlf = stdout.find(b"\r\n\r\n")
    lf = stdout.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        head, body = stdout[:crlf], stdout[crlf + 4 :]
    elif lf >= 0:
        head, body = stdout[:lf], stdout[lf + 2 :]
    else:
        head, body = stdout, b""
    status: int | None = None
    location = False
    headers: list[tuple[str, str]] = []
    for raw in head.split(b"\n"):
        line = raw.rstrip(b"\r")
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            if line.strip():
                raise MalformedCgi(f"CGI header line without a name: {line[:80]!r}")
            continue
        key = name.strip().decode("latin-1")
        text = value.strip().decode("latin-1")
        lower = key.lower()
        if lower == "status":
            code = text[:3]
            if len(code) != 3 or not code.isdigit():
                raise MalformedCgi(f"Status: {text!r} does not start with a 3-digit code")
            status = int(code)
            continue
        if lower == "location":
            location = True
        headers.append((key, text))
    if status is None:
        status = 302 if location else 200
    return CgiResponse(status, headers, body)
