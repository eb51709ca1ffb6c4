"""The FastCGI codec: golden bytes from the specification's layout, and round trips."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina.wire.fastcgi import (
    CHUNK,
    CgiResponse,
    MalformedCgi,
    ProtocolError,
    Record,
    RecordReader,
    RecordType,
    Response,
    ResponseParser,
    abort_request,
    begin_request,
    decode_pairs,
    encode_pairs,
    encode_request,
    end_request,
    get_values,
    parse_cgi,
    record,
    stream,
)


def joined(parts: list[bytes | memoryview]) -> bytes:
    return b"".join(bytes(p) for p in parts)


# golden bytes


def test_begin_request_with_keep_conn() -> None:
    assert begin_request(1, keep_conn=True) == (
        b"\x01\x01\x00\x01\x00\x08\x00\x00"  # version 1, BEGIN_REQUEST, id 1, 8 bytes, no pad
        b"\x00\x01\x01\x00\x00\x00\x00\x00"  # role RESPONDER, flags KEEP_CONN, reserved
    )
    assert begin_request(258, keep_conn=False)[:8] == b"\x01\x01\x01\x02\x00\x08\x00\x00"
    assert begin_request(258, keep_conn=False)[10] == 0


def test_records_are_padded_to_eight_bytes() -> None:
    assert record(RecordType.STDIN, 1, b"abc") == (
        b"\x01\x05\x00\x01\x00\x03\x05\x00" + b"abc" + b"\x00" * 5
    )
    assert record(RecordType.STDIN, 1, b"12345678") == b"\x01\x05\x00\x01\x00\x08\x00\x00" + (
        b"12345678"
    )
    assert record(RecordType.PARAMS, 7) == b"\x01\x04\x00\x07\x00\x00\x00\x00"


def test_name_value_pairs_use_one_or_four_byte_lengths() -> None:
    assert encode_pairs([(b"A", b"xy")]) == b"\x01\x02Axy"
    long_value = b"v" * 128
    assert encode_pairs([(b"N", long_value)]) == b"\x01\x80\x00\x00\x80N" + long_value
    long_name = b"n" * 200
    assert encode_pairs([(long_name, b"")]) == b"\x80\x00\x00\xc8\x00" + long_name
    assert encode_pairs([(b"n" * 127, b"")])[:2] == b"\x7f\x00"


def test_a_whole_request() -> None:
    params = encode_pairs([(b"REQUEST_METHOD", b"GET")])
    assert joined(encode_request(1, params, b"", keep_conn=True)) == (
        begin_request(1, keep_conn=True)
        + b"\x01\x04\x00\x01\x00\x13\x05\x00"  # 19 bytes of pairs, 5 of padding
        + b"\x0e\x03REQUEST_METHODGET"
        + b"\x00" * 5
        + b"\x01\x04\x00\x01\x00\x00\x00\x00"  # end of PARAMS
        + b"\x01\x05\x00\x01\x00\x00\x00\x00"  # end of STDIN (no body)
    )


def test_end_abort_and_management_records() -> None:
    assert end_request(1, 0) == b"\x01\x03\x00\x01\x00\x08\x00\x00" + b"\x00" * 8
    assert end_request(3, 255, 2)[8:] == b"\x00\x00\x00\xff\x02\x00\x00\x00"
    assert abort_request(5) == b"\x01\x02\x00\x05\x00\x00\x00\x00"
    query = get_values([b"FCGI_MPXS_CONNS"])
    assert query[:8] == b"\x01\x09\x00\x00\x00\x11\x07\x00"
    assert query[8:25] == b"\x0f\x00FCGI_MPXS_CONNS"


def test_a_large_body_is_split_into_aligned_records() -> None:
    body = bytes(range(256)) * 600  # 153,600 bytes: two full records and a tail
    parts = stream(RecordType.STDIN, 9, body)
    data = joined(parts)
    records = RecordReader().feed(data)
    assert [len(r.content) for r in records] == [CHUNK, CHUNK, len(body) - 2 * CHUNK, 0]
    assert b"".join(r.content for r in records) == body
    assert all(r.type == RecordType.STDIN and r.request_id == 9 for r in records)
    assert all(len(p) <= 8 or len(p) == CHUNK for p in parts[:-4])  # views, no padding


def test_content_over_the_record_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="65535"):
        record(RecordType.STDOUT, 1, b"x" * 65536)


# parsing


def test_the_reader_waits_for_whole_records() -> None:
    data = record(RecordType.STDOUT, 1, b"hello") + end_request(1, 0)
    reader = RecordReader()
    assert reader.feed(data[:7]) == []
    assert reader.feed(data[7:15]) == []  # header complete, padding missing
    assert reader.feed(data[15:16]) == [Record(RecordType.STDOUT, 1, b"hello")]
    assert reader.feed(data[16:]) == [Record(RecordType.END_REQUEST, 1, b"\0" * 8)]
    assert reader.pending == 0


def test_a_wrong_version_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="version 2"):
        RecordReader().feed(b"\x02\x06\x00\x01\x00\x00\x00\x00")


def test_responses_are_collected_per_request_id() -> None:
    parser = ResponseParser()
    parser.begin(1)
    parser.begin(2)
    data = (
        record(RecordType.STDOUT, 1, b"one ")
        + record(RecordType.STDOUT, 2, b"two")
        + record(RecordType.STDERR, 1, b"warning")
        + record(RecordType.STDOUT, 1, b"more")
        + record(RecordType.STDOUT, 1)
        + end_request(2, 0)
        + end_request(1, 3, 0)
    )
    done = parser.feed(data)
    assert done == [
        Response(2, b"two", b"", 0, 0),
        Response(1, b"one more", b"warning", 3, 0),
    ]


def test_stderr_so_far_and_management_records() -> None:
    parser = ResponseParser()
    parser.begin(4)
    result = record(RecordType.GET_VALUES_RESULT, 0, encode_pairs([(b"FCGI_MPXS_CONNS", b"0")]))
    assert parser.feed(record(RecordType.STDERR, 4, b"late") + result) == [
        Record(RecordType.GET_VALUES_RESULT, 0, encode_pairs([(b"FCGI_MPXS_CONNS", b"0")]))
    ]
    assert parser.stderr_so_far(4) == b"late"


def test_records_for_an_unknown_request_are_refused() -> None:
    with pytest.raises(ProtocolError, match="unknown request 9"):
        ResponseParser().feed(record(RecordType.STDOUT, 9, b"x"))


def test_a_short_end_request_is_refused() -> None:
    parser = ResponseParser()
    parser.begin(1)
    with pytest.raises(ProtocolError, match="END_REQUEST"):
        parser.feed(record(RecordType.END_REQUEST, 1, b"\0" * 4))


def test_truncated_pairs_are_refused() -> None:
    for data in (b"\x05", b"\x80\x00", b"\x02\x02ab"):
        with pytest.raises(ProtocolError):
            decode_pairs(data)


# hypothesis: round trips

names = st.binary(min_size=0, max_size=300)
pairs_strategy = st.lists(st.tuples(names, names), max_size=20)


@given(pairs_strategy)
def test_pairs_round_trip(pairs: list[tuple[bytes, bytes]]) -> None:
    assert decode_pairs(encode_pairs(pairs)) == pairs


@given(
    st.integers(1, 0xFFFF),
    st.binary(max_size=200_000),
    st.binary(max_size=150_000),
    st.lists(st.integers(1, 9000), max_size=30),
)
def test_a_request_round_trips_through_any_split(
    request_id: int, params: bytes, body: bytes, cuts: list[int]
) -> None:
    data = joined(encode_request(request_id, params, body))
    reader = RecordReader()
    records: list[Record] = []
    pos = 0
    for cut in cuts:
        records += reader.feed(data[pos : pos + cut])
        pos += cut
    records += reader.feed(data[pos:])
    assert reader.pending == 0
    assert all(len(r.content) <= 0xFFFF for r in records)
    assert records[0].type == RecordType.BEGIN_REQUEST
    kinds = {RecordType.PARAMS: b"", RecordType.STDIN: b""}
    for r in records[1:]:
        assert r.request_id == request_id
        kinds[RecordType(r.type)] += r.content
    assert kinds == {RecordType.PARAMS: params, RecordType.STDIN: body}
    assert len(data) % 8 == 0


@given(st.binary(max_size=200_000), st.binary(max_size=3000), st.integers(0, 2**32 - 1))
def test_a_response_round_trips(stdout: bytes, stderr: bytes, app_status: int) -> None:
    data = joined(
        [
            *stream(RecordType.STDERR, 3, stderr),
            *stream(RecordType.STDOUT, 3, stdout),
            end_request(3, app_status),
        ]
    )
    parser = ResponseParser()
    parser.begin(3)
    done: list[Response | Record] = []
    for start in range(0, len(data), 4093):
        done += parser.feed(data[start : start + 4093])
    assert done == [Response(3, stdout, stderr, app_status, 0)]


# the CGI response


def test_cgi_status_headers_and_body() -> None:
    out = (
        b"Status: 404 Not Found\r\nX-Powered-By: PHP/8.2\r\nSet-Cookie: a=1\r\n"
        b"Set-Cookie: b=2\r\nContent-type: text/html; charset=UTF-8\r\n\r\n<h1>gone</h1>"
    )
    assert parse_cgi(out) == CgiResponse(
        404,
        [
            ("X-Powered-By", "PHP/8.2"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Content-type", "text/html; charset=UTF-8"),
        ],
        b"<h1>gone</h1>",
    )


def test_cgi_defaults_and_redirects() -> None:
    assert parse_cgi(b"Content-Type: text/plain\n\nhi").status == 200
    redirect = parse_cgi(b"Location: /login\r\n\r\n")
    assert (redirect.status, redirect.headers, redirect.body) == (
        302,
        [("Location", "/login")],
        b"",
    )
    assert parse_cgi(b"Status: 301\r\nLocation: /new\r\n\r\n").status == 301
    assert parse_cgi(b"").status == 200


def test_a_binary_body_is_kept_byte_for_byte() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\r\n\r\n\xff"
    assert parse_cgi(b"Content-Type: image/png\r\n\r\n" + png).body == png


@pytest.mark.parametrize("bad", [b"Status: abc\r\n\r\n", b"no colon here\r\n\r\nbody"])
def test_malformed_cgi(bad: bytes) -> None:
    with pytest.raises(MalformedCgi):
        parse_cgi(bad)


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True),
            st.from_regex(r"[ -~]{0,40}", fullmatch=True).map(str.strip),
        ),
        max_size=10,
    ).filter(lambda hs: all(n.lower() not in ("status", "location") for n, _ in hs)),
    st.integers(100, 599),
    st.binary(max_size=2000),
)
def test_cgi_round_trip(headers: list[tuple[str, str]], status: int, body: bytes) -> None:
    head = f"Status: {status} Whatever\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    parsed = parse_cgi(head.encode() + b"\r\n" + body)
    assert parsed == CgiResponse(status, headers, body)


def test_end_request_body_layout() -> None:
    assert struct.unpack(">IB3x", end_request(1, 70000, 3)[8:]) == (70000, 3)
