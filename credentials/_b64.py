"""Strict base64url without padding (RFC 7515 §2)."""

from __future__ import annotations

import base64
import binascii
import re

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


def b64e(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


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
    if not _ALPHABET.fullmatch(text):
        raise ValueError("not base64url")
    if len(text) % 4 == 1:
        raise ValueError("impossible base64url length")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as e:  # pragma: no cover - the regex rules these out
        raise ValueError("not base64url") from e
    if b64e(raw) != text:
        raise ValueError("non-canonical base64url")
    return raw
