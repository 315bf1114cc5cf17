"""The encodings every part of Shomei shares, strict where input is untrusted: unpadded
base64url (RFC 7515 §2, canonical trailing bits), unsigned LEB128 varints (minimal
only), JSON (duplicate member names and NaN/Infinity refused, depth bounded for input from
outside; canonical and compact writers), and Japan Standard Time.

The public face of the core's private ``_b64`` and ``_jws`` helpers for the other
packages (anchor, issuer, verifier, the CLI): one implementation, one strictness.
"""

from __future__ import annotations

from datetime import timedelta, timezone

from ._b64 import b64d, b64e
from ._jws import MAX_DEPTH, canonical_json, compact_json, loads_bounded, loads_strict
from ._leb128 import Leb128Error, leb128, read_leb128

#: Japan Standard Time (UTC+9, no daylight saving): dates on certificates, times shown.
JST = timezone(timedelta(hours=9), "JST")

__all__ = [
    "JST",
    "MAX_DEPTH",
    "Leb128Error",
    "b64d",
    "b64e",
    "canonical_json",
    "compact_json",
    "leb128",
    "loads_bounded",
    "loads_strict",
    "read_leb128",
]
