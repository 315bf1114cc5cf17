"""Base45 (RFC 9285), strictly: the text form of an embedded QR payload."""

from __future__ import annotations

from typing import Final

_B45: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_VALUE: Final = {c: i for i, c in enumerate(_B45)}


def b45encode(data: bytes) -> str:
    """Return the RFC 9285 Base45 text of ``data``."""
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        high, rest = divmod(data[i] << 8 | data[i + 1], 45 * 45)
        middle, low = divmod(rest, 45)
        out += (_B45[low], _B45[middle], _B45[high])
    if len(data) % 2:
        middle, low = divmod(data[-1], 45)
        out += (_B45[low], _B45[middle])
    return "".join(out)


def b45decode(text: str) -> bytes:
    """Decode RFC 9285 Base45 strictly.

    Raises ``ValueError`` for a character outside the alphabet, a length of 3n+1, or a
    group whose value exceeds what its bytes can hold (65535, or 255 for the last pair).
    """
    if len(text) % 3 == 1:
        raise ValueError("impossible Base45 length")
    try:
        values = [_B45_VALUE[c] for c in text]
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} is not Base45") from None
    out = bytearray()
    full = len(values) - len(values) % 3
    for i in range(0, full, 3):
        n = values[i] + values[i + 1] * 45 + values[i + 2] * 45 * 45
        if n > 0xFFFF:
            raise ValueError("Base45 group out of range")
        out += n.to_bytes(2, "big")
    if full < len(values):
        n = values[full] + values[full + 1] * 45
        if n > 0xFF:
            raise ValueError("Base45 group out of range")
        out.append(n)
    return bytes(out)
