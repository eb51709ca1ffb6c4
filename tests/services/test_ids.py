"""Random ids drawn from a buffer of OS randomness."""

from __future__ import annotations

import re
import uuid

from lamina.services.ids import RandomIds

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_request_ids_are_random_uuid4_text() -> None:
    ids = RandomIds()
    seen = {ids.request_id() for _ in range(5000)}  # more than one 4 KB refill
    assert len(seen) == 5000
    for text in seen:
        assert UUID4.fullmatch(text)
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)


def test_hex_and_take_give_what_was_asked() -> None:
    ids = RandomIds()
    assert re.fullmatch(r"[0-9a-f]{24}", ids.hex(24))
    assert len(ids.take(11)) == 11
    assert len({ids.take(16) for _ in range(1000)}) == 1000


def test_forgetting_drops_the_buffer() -> None:
    ids = RandomIds()
    ids.take(8)
    assert "4088 bytes left" in repr(ids)
    ids.forget()
    assert "0 bytes left" in repr(ids)
    assert len(ids.take(16)) == 16
