"""Strict base64url without padding (RFC 7515 §2), on the hot path of every check."""

from __future__ import annotations

import binascii

_TO_STD = bytes.maketrans(b"-_", b"+/")
_TO_URL = bytes.maketrans(b"+/", b"-_")
_INDEX = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
# Unused low bits of the last character must be zero, or two strings decode alike.
_SPARE_BITS = {2: 0x0F, 3: 0x03}
_PAD = {0: "", 2: "==", 3: "="}


def b64e(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=").decode("ascii")


def b64d(text: str | bytes) -> bytes:
    """Decode unpadded base64url strictly.

    Raises ``ValueError`` for padding, characters outside the alphabet, an impossible
    length, or non-canonical trailing bits (two encodings of one value would let a
    tampered token keep its digest-free parts "equal").
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError as e:
            raise ValueError("not ASCII") from e
    # binascii's strict mode rejects everything outside the standard alphabet; the
    # standard-only characters and padding are ruled out here first.
    if "+" in text or "/" in text or "=" in text:
        raise ValueError("not base64url")
    rem = len(text) % 4
    if rem == 1:
        raise ValueError("impossible base64url length")
    try:
        if rem and _INDEX[text[-1]] & _SPARE_BITS[rem]:
            raise ValueError("non-canonical base64url")
        return binascii.a2b_base64(
            (text + _PAD[rem]).encode("ascii").translate(_TO_STD), strict_mode=True
        )
    except (binascii.Error, KeyError, UnicodeEncodeError) as e:
        raise ValueError("not base64url") from e
