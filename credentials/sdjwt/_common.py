"""What the issuer, holder and verifier parts share: the format's constants and the
parsing of an SD-JWT and its disclosures. Nothing in it is verified."""

from __future__ import annotations

import binascii
import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from .. import _jws
from .._b64 import PAD, SPARE, STRICT
from ..errors import InvalidCredential, VerificationError

TYP = "dc+sd-jwt"
KB_TYP = "kb+jwt"
SD_ALG = "sha-256"
SALT_BYTES = 16  # 128 bits, RFC 9901 §9.3
DEFAULT_MAX_SIZE = 64 * 1024
DEFAULT_SKEW = 60
DEFAULT_KB_MAX_AGE = 600

#: Claims the SD-JWT VC format defines; never selectively disclosable, never user data.
REGISTERED_CLAIMS = frozenset(
    {"iss", "iat", "exp", "nbf", "vct", "cnf", "status", "sub", "_sd", "_sd_alg", "vct#integrity"}
)
_RESERVED_NAMES = frozenset({"_sd", "..."})
_RESERVED_AT_TOP = REGISTERED_CLAIMS | _RESERVED_NAMES

KeyResolver = Callable[[str, str], ec.EllipticCurvePublicKey]
SaltSource = Callable[[int], bytes]


_STD_TO_URL = bytes.maketrans(b"+/", b"-_")
_b2a = functools.partial(binascii.b2a_base64, newline=False)


def _digest(encoded: str) -> str:
    """base64url(SHA-256(ASCII disclosure)): 32 bytes are 43 characters plus one "="."""
    raw = hashlib.sha256(encoded.encode("ascii")).digest()
    return binascii.b2a_base64(raw, newline=False)[:43].translate(_STD_TO_URL).decode("ascii")


class Disclosure(NamedTuple):
    """One disclosure: ``encoded`` is what travels; ``name`` is None for array items.

    A named tuple rather than a frozen dataclass: a verifier builds a dozen per
    credential and tuple construction is several times cheaper.
    """

    encoded: str
    salt: str
    name: str | None
    value: Any
    digest: str


# --------------------------------------------------------------------------- parsing


def _parse_disclosures(encodings: Sequence[str]) -> list[Disclosure]:
    """Parse disclosures strictly (see :func:`_decode_disclosures`)."""
    digests, arrays = _decode_disclosures(encodings)
    return [
        Disclosure(e, a[0], a[1] if len(a) == 3 else None, a[-1], d)
        for e, d, a in zip(encodings, digests, arrays, strict=True)
    ]


def _unparsable() -> InvalidCredential:
    return InvalidCredential(
        "開示情報（disclosure）を解析できません", "a disclosure cannot be parsed"
    )


def _check_shapes(arrays: list[Any]) -> None:
    """Each disclosure is ``[salt, name, value]`` or ``[salt, value]``, its salt and
    name strings, the name not one SD-JWT reserves."""
    for arr in arrays:
        if type(arr) is not list or len(arr) not in (2, 3) or type(arr[0]) is not str:
            raise InvalidCredential(
                "開示情報（disclosure）の形式が不正です",
                "a disclosure is not [salt, name, value] or [salt, value]",
            )
        if len(arr) == 3:
            name = arr[1]
            if type(name) is not str:
                raise InvalidCredential(
                    "開示情報の項目名が文字列ではありません",
                    "a disclosure's claim name is not a string",
                )
            if name in _RESERVED_NAMES:
                raise VerificationError(
                    f"開示情報の項目名 {name!r} は使用できません",
                    f"a disclosure uses the reserved claim name {name!r}",
                )


def _decode_disclosures(encodings: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    """Decode disclosures strictly into their digests and their JSON arrays, each
    ``[salt, name, value]`` or ``[salt, value]`` with string salt and name.

    Raises :class:`InvalidCredential` for bad base64url, JSON that is not such an array,
    and :class:`VerificationError` for a reserved claim name.

    Every verification's hot path, so the work is done over all of them at once where
    it can be: one ASCII encoding, one pass translating the alphabet (which also turns
    every character base64url does not use into one the strict decoder refuses), one
    base64 encoding of all the digests.
    """
    if not encodings:
        return [], []
    try:
        blob = "~".join(encodings).encode("ascii")
    except UnicodeEncodeError:
        raise _unparsable() from None
    pieces = blob.split(b"~")
    if len(pieces) != len(encodings):  # a "~" inside a disclosure
        raise _unparsable()
    # 33-byte blocks (the digest and a zero byte) encode to 44 characters each, whose
    # first 43 are the digest's unpadded base64url.
    sha256 = hashlib.sha256
    hashes = b"\0".join([sha256(p).digest() for p in pieces]) + b"\0"
    b64 = _b2a(hashes).translate(_STD_TO_URL).decode("ascii")
    digests = [b64[i : i + 43] for i in range(0, 44 * len(pieces), 44)]
    return digests, _decode_each(blob.translate(STRICT))


def _decode_each(std: bytes) -> list[list[Any]]:
    """The disclosures in ``std`` (``~``-separated, translated with :data:`STRICT`) as
    JSON arrays, checked one by one. Compact JSON that survives an orjson round trip
    byte for byte (which proves it has no duplicate member names) skips the slower
    strict parser."""
    arrays: list[list[Any]] = []
    a2b, loads, dumps, spare, pad = binascii.a2b_base64, orjson.loads, orjson.dumps, SPARE, PAD
    try:
        for data in std.split(b"~"):
            rem = len(data) & 3
            if rem:
                if rem == 1 or spare[rem][data[-1]]:
                    raise ValueError("not canonical base64url")
                data += pad[rem]
            raw = a2b(data, strict_mode=True)  # binascii.Error is a ValueError
            arr = loads(raw)
            if dumps(arr) != raw:
                arr = _jws.loads_strict(raw)
            arrays.append(arr)
    except ValueError:
        raise _unparsable() from None
    _check_shapes(arrays)
    return arrays


@dataclass(frozen=True)
class ParsedSdJwt:
    """An SD-JWT (+KB) split into its parts. Nothing in it is verified yet."""

    jws: _jws.CompactJws = field(repr=False)
    jwt: str
    disclosures: tuple[str, ...]
    kb_jwt: str | None
    sd_hash_input: str

    @property
    def unverified_payload(self) -> dict[str, Any]:
        return self.jws.unverified_payload

    @property
    def unverified_header(self) -> dict[str, Any]:
        return self.jws.unverified_header

    @classmethod
    def parse(cls, text: str, *, max_size: int = DEFAULT_MAX_SIZE) -> ParsedSdJwt:
        """Split ``JWT~D1~…~Dn~[KB-JWT]``. Raises :class:`InvalidCredential`."""
        if len(text) > max_size:
            raise InvalidCredential(
                f"入力が大きすぎます（{len(text)} バイト、上限 {max_size} バイト）",
                f"input too large ({len(text)} bytes, limit {max_size})",
            )
        if not text.isascii():
            raise InvalidCredential(
                "SD-JWTにASCII以外の文字が含まれています",
                "the SD-JWT contains non-ASCII characters",
            )
        parts = text.split("~")
        if len(parts) < 2:
            raise InvalidCredential(
                "SD-JWTではありません（「~」区切りがありません）",
                "not an SD-JWT (no '~' separator)",
            )
        disclosures = tuple(parts[1:-1])
        if "" in disclosures:
            raise InvalidCredential(
                "SD-JWTに空の開示情報があります", "the SD-JWT has an empty disclosure"
            )
        kb = parts[-1] or None
        jws = _jws.CompactJws(parts[0], what="発行者の署名付きJWT", what_en="issuer-signed JWT")
        sd_hash_input = text[: len(text) - len(parts[-1])]
        return cls(
            jws=jws, jwt=parts[0], disclosures=disclosures, kb_jwt=kb, sd_hash_input=sd_hash_input
        )
