"""Strict base64url without padding (RFC 7515 §2), on the hot path of every check."""

from __future__ import annotations

import binascii

_STD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TO_URL = bytes.maketrans(b"+/", b"-_")
#: The URL alphabet becomes the standard one, and the standard alphabet's own "+", "/"
#: and the padding "=" become "!", which binascii's strict mode refuses: one C pass
#: checks the alphabet.
STRICT = bytes.maketrans(b"-_+/=", b"+/!!!")
#: Padding by length modulo 4 (1 is impossible and refused before padding).
PAD = (b"", b"", b"==", b"=")


def _spare_table(mask: int) -> bytes:
    # Non-zero where a last character (standard alphabet) has unused low bits set.
    table = bytearray(256)
    for i, c in enumerate(_STD):
        table[c] = 1 if i & mask else 0
    return bytes(table)


#: Unused low bits of the last character must be zero, or two strings decode alike.
#: Indexed by length modulo 4 (2: 4 spare bits, 3: 2 spare bits), then by the
#: (translated) last byte.
SPARE = (b"", b"", _spare_table(0x0F), _spare_table(0x03))


def b64e(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=").decode("ascii")


def b64d(text: str | bytes) -> bytes:
    """Decode unpadded base64url strictly.

    Raises ``ValueError`` for padding, characters outside the alphabet, an impossible
    length, or non-canonical trailing bits (two encodings of one value would let a
    tampered token keep its digest-free parts "equal").
    """
    if isinstance(text, str):
        try:
            data = text.encode("ascii")
        except UnicodeEncodeError as e:
            raise ValueError("not ASCII") from e
    else:
        data = text
    return decode_translated(data.translate(STRICT))


def decode_translated(data: bytes) -> bytes:
    """:func:`b64d` of bytes already translated with :data:`STRICT` (a caller decoding
    many strings translates them in one pass)."""
    rem = len(data) & 3
    if rem:
        if rem == 1:
            raise ValueError("impossible base64url length")
        if SPARE[rem][data[-1]]:
            raise ValueError("non-canonical base64url")
        data += PAD[rem]
    try:
        # Strict mode refuses any byte outside the standard alphabet (so any "!").
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error as e:
        raise ValueError("not base64url") from e
