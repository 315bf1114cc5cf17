"""Unsigned LEB128 (the varints of the QR packing and the Merkle receipt): one number,
one encoding; the reader refuses truncated, non-minimal and over-long input."""

from __future__ import annotations

MAX_U64 = 2**64 - 1


class Leb128Error(ValueError):
    """``reason``: ``truncated``, ``non-minimal`` or ``too-large``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"LEB128: {reason}")
        self.reason = reason


def leb128(value: int, *, max_value: int = MAX_U64) -> bytes:
    """``value`` as an unsigned LEB128 varint. Raises ``ValueError`` out of range."""
    if type(value) is not int or not 0 <= value <= max_value:
        raise ValueError(f"numbers must be integers in 0..{max_value}, not {value!r}")
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_leb128(data: bytes, pos: int = 0, *, max_value: int = MAX_U64) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it. Raises :class:`Leb128Error`."""
    value = shift = 0
    for _ in range(max(1, (max_value.bit_length() + 6) // 7)):
        if pos >= len(data):
            raise Leb128Error("truncated")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and shift:
                raise Leb128Error("non-minimal")
            if value > max_value:
                raise Leb128Error("too-large")
            return value, pos
        shift += 7
    raise Leb128Error("too-large")
