"""Random ids for the invoke path: request ids (UUID version 4 text) and trace ids.

Every gateway request draws four of them (its own request id and trace id, the invocation's
request id and trace id). `uuid.uuid4()` and `secrets.token_hex()` make a getrandom() call
each, wrapped in ~2-4 µs of Python on the machines Lamina targets; drawing from one buffer
of OS randomness, refilled 4 KB at a time, costs a slice.
"""

from __future__ import annotations

import os

_REFILL = 4096
# The variant nibble of a UUID is 10xx in binary: 8, 9, a or b, from any random nibble.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class RandomIds:
    __slots__ = ("_buffer", "_used")

    def __init__(self) -> None:
        self._buffer = b""
        self._used = 0

    def __repr__(self) -> str:
        return f"<RandomIds {len(self._buffer) - self._used} bytes left>"

    def take(self, size: int) -> bytes:
        """`size` bytes (at most 4096) from the OS's random source."""
        start = self._used
        if start + size > len(self._buffer):
            self._buffer, start = os.urandom(_REFILL), 0
        self._used = start + size
        return self._buffer[start : start + size]

    def hex(self, digits: int) -> str:
        """`digits` random hex digits (an even number)."""
        return self.take(digits // 2).hex()

    def request_id(self) -> str:
        """A random UUID's text, as `str(uuid.uuid4())`."""
        h = self.take(16).hex()
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"

    def forget(self) -> None:
        """Drop what is buffered (a forked child must not repeat its parent's ids)."""
        self._buffer, self._used = b"", 0


IDS = RandomIds()
os.register_at_fork(after_in_child=IDS.forget)
