from __future__ import annotations

import re

import pytest

from lamina.wire import logs

RID = "6bc28136-xmpl-4365-b021-0ce6b2e64ab0"
JAN_31_2020 = 1_580_475_600.0  # 2020-01-31T13:00:00Z


def test_start_line() -> None:
    assert logs.start_line(RID, "$LATEST") == f"START RequestId: {RID} Version: $LATEST"
    assert logs.start_line(RID, "7") == f"START RequestId: {RID} Version: 7"


def test_end_line() -> None:
    assert logs.end_line(RID) == f"END RequestId: {RID}"


def test_report_line_golden() -> None:
    assert logs.report_line(RID, 15.74, 128, 56) == (
        f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 56 MB\t"
    )


def test_report_line_of_a_cold_start_bills_init() -> None:
    assert logs.report_line(RID, 15.74, 128, 56, init_duration_ms=130.49) == (
        f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 147 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\t"
    )


def test_report_line_with_status_after_a_timeout() -> None:
    line = logs.report_line(RID, 31000.0, 1024, 200, init_duration_ms=3439.0, status="timeout")
    assert line == (
        f"REPORT RequestId: {RID}\tDuration: 31000.00 ms\tBilled Duration: 34439 ms\t"
        "Memory Size: 1024 MB\tMax Memory Used: 200 MB\tInit Duration: 3439.00 ms\t"
        "Status: timeout\t"
    )


def test_report_line_status_without_init() -> None:
    assert logs.report_line(RID, 2.0, 128, 30, status="error").endswith(
        "\tMax Memory Used: 30 MB\tStatus: error\t"
    )


@pytest.mark.parametrize(
    ("duration", "init", "billed"),
    [
        (1.0, None, 1),
        (1.01, None, 2),
        (0.2, None, 1),
        (0.0, None, 1),
        (100.0, None, 100),
        (0.4, 0.4, 1),
        (0.5, 0.6, 2),
        (10.5, 0.5, 11),
        (10.25, 0.0, 11),
    ],
)
def test_billed_duration_is_the_ceiling_of_duration_plus_init_at_least_1(
    duration: float, init: float | None, billed: int
) -> None:
    line = logs.report_line(RID, duration, 128, 1, init_duration_ms=init)
    assert f"\tBilled Duration: {billed} ms\t" in line


def test_init_duration_zero_is_still_printed() -> None:
    assert "\tInit Duration: 0.00 ms\t" in logs.report_line(RID, 1.0, 128, 1, 0.0)


def test_init_duration_absent_when_not_given() -> None:
    assert "Init Duration" not in logs.report_line(RID, 1.0, 128, 1)
    assert "Status" not in logs.report_line(RID, 1.0, 128, 1)


def test_init_report_line() -> None:
    assert logs.init_report_line(10000.0, "timeout") == (
        "INIT_REPORT Init Duration: 10000.00 ms\tPhase: init\tStatus: timeout"
    )


def test_log_group() -> None:
    assert logs.log_group("app-dev-api") == "/aws/lambda/app-dev-api"


def test_stream_name_shape() -> None:
    name = logs.stream_name("$LATEST", JAN_31_2020)
    assert re.fullmatch(r"2020/01/31/\[\$LATEST\][0-9a-f]{32}", name), name


def test_stream_name_uses_utc_day_and_version() -> None:
    just_before_midnight_utc = 1_580_515_199.0  # 2020-01-31T23:59:59Z
    assert logs.stream_name("3", just_before_midnight_utc).startswith("2020/01/31/[3]")
    assert logs.stream_name("3", just_before_midnight_utc + 1).startswith("2020/02/01/[3]")


def test_stream_names_are_unique_per_environment() -> None:
    assert logs.stream_name("$LATEST", JAN_31_2020) != logs.stream_name("$LATEST", JAN_31_2020)


def test_tail_joins_lines_with_newlines() -> None:
    assert logs.tail(["START", "hello", "END"]) == b"START\nhello\nEND\n"
    assert logs.tail([]) == b""


def test_tail_keeps_the_last_4096_bytes() -> None:
    first = "a" * 3000
    second = "b" * 3000
    data = logs.tail([first, second])
    assert len(data) == 4096
    assert data == (first + "\n" + second + "\n").encode()[-4096:]
    assert data.endswith(b"b" * 3000 + b"\n")


def test_tail_under_the_limit_is_whole() -> None:
    line = "x" * 4095
    assert logs.tail([line]) == line.encode() + b"\n"


def test_tail_counts_bytes_not_characters() -> None:
    data = logs.tail(["é" * 3000])  # 6001 bytes
    assert len(data) == 4096


def test_tail_with_a_custom_limit() -> None:
    assert logs.tail(["abc", "def"], limit=5) == b"c\ndef\n"[-5:]
