"""Compact JWS with ES256 only: canonical encoding, strict header parsing.

PyJWT and jwcrypto accept far more than a credential verifier should (many algorithms,
key material from headers) and spend most of their time outside the signature check.
This module does one thing: ES256 over canonical JSON, with the key supplied by the
caller.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ._b64 import b64d, b64e
from .errors import InvalidCredential, VerificationError

ALG = "ES256"
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_SIG_LEN = 64


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: one byte string per value, so the QR codec can
    rebuild the exact signed bytes from a parsed payload (and verifiers take the fast
    path of :func:`loads_strict`)."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits: the standard library writes it exactly
        return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def compact_json(obj: Any) -> bytes:
    """No spaces, UTF-8, members in the given order (disclosure arrays)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def loads_strict(raw: bytes) -> Any:
    """Parse UTF-8 JSON, rejecting duplicate member names, NaN and Infinity.

    orjson is strict about everything but duplicate names, and it turns integers beyond
    64 bits into floats. Its result serves when the bytes are the canonical re-encoding
    of what was parsed: a dropped duplicate or a rounded integer would have changed
    them. Anything else takes the slower standard-library path with a duplicate check.
    Raises ``ValueError`` (callers translate it into their own error).
    """
    obj = orjson.loads(raw)
    # Member order survives a round trip, so compact JSON in any key order qualifies.
    if orjson.dumps(obj) == raw:
        return obj
    # UnicodeDecodeError and JSONDecodeError are both ValueErrors.
    return _DECODER.decode(raw.decode("utf-8"))


#: How deeply JSON from outside may nest (objects and arrays together). Shomei's own
#: documents stay under ten levels; status lists, metadata and requests included.
MAX_DEPTH = 32


def loads_bounded(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """:func:`loads_strict` for JSON from the network or a user: nesting deeper than
    ``max_depth`` is refused. orjson parses first and stops at 1,024 levels by itself,
    so no input reaches a recursive parser deep enough to exhaust the C stack (web3
    raises Python's recursion limit, so ``RecursionError`` would come too late).
    Raises ``ValueError``."""
    obj = loads_strict(raw.encode("utf-8") if isinstance(raw, str) else raw)
    level, depth = [obj], 0
    while level := [node for node in level if isinstance(node, (dict, list))]:
        depth += 1
        if depth > max_depth:
            raise ValueError(f"JSON nested deeper than {max_depth} levels")
        level = [
            child for node in level for child in (node.values() if isinstance(node, dict) else node)
        ]
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


def sign(header_b64: str, payload: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    """Return ``header.payload.signature`` for an already encoded header."""
    signing_input = f"{header_b64}.{b64e(canonical_json(payload))}"
    der = key.sign(signing_input.encode("ascii"), _ECDSA_SHA256)
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64e(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def encode_header(header: dict[str, Any]) -> str:
    return b64e(canonical_json(header))


_HEADERS: dict[str, Any] = {}


def _parse_header(encoded: str) -> Any:
    """Parse a JOSE header, remembering recent ones: an issuer's credentials all carry
    the same few headers. Returns a fresh copy so no caller can alter the cache."""
    cached = _HEADERS.get(encoded)
    if cached is None:
        cached = loads_strict(b64d(encoded))
        if len(encoded) <= 512:
            if len(_HEADERS) >= 256:
                _HEADERS.clear()
            _HEADERS[encoded] = cached
    return dict(cached) if isinstance(cached, dict) else cached


class CompactJws:
    """A parsed, *unverified* compact JWS. ``unverified_*`` names say what to distrust."""

    __slots__ = ("signature", "signing_input", "unverified_header", "unverified_payload")

    def __init__(self, token: str, *, what: str, what_en: str) -> None:
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidCredential(
                f"{what}の形式が不正です（3つの部分がありません）",
                f"{what_en} is not a compact JWS (three parts expected)",
            )
        try:
            header = _parse_header(parts[0])
            payload = loads_strict(b64d(parts[1]))
            signature = b64d(parts[2])
        except ValueError:
            raise InvalidCredential(
                f"{what}を解析できません（base64url または JSON が不正です）",
                f"{what_en} cannot be parsed (bad base64url or JSON)",
            ) from None
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise InvalidCredential(
                f"{what}のヘッダーまたはペイロードがオブジェクトではありません",
                f"{what_en} header or payload is not a JSON object",
            )
        self.unverified_header: dict[str, Any] = header
        self.unverified_payload: dict[str, Any] = payload
        self.signature = signature
        self.signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")

    def check_header(self, *, typ: str, what: str, what_en: str) -> None:
        """Reject any algorithm but ES256, a wrong ``typ`` and any ``crit`` extension.

        Raises :class:`VerificationError`.
        """
        header = self.unverified_header
        alg = header.get("alg")
        if alg != ALG:
            raise VerificationError(
                f"{what}の署名アルゴリズム {alg!r} は受け付けません（ES256のみ）",
                f"{what_en} algorithm {alg!r} is not accepted (ES256 only)",
            )
        if header.get("typ") != typ:
            raise VerificationError(
                f"{what}の種類（typ）が {header.get('typ')!r} です（{typ} が必要）",
                f"{what_en} typ is {header.get('typ')!r}, expected {typ}",
            )
        if "crit" in header:
            raise VerificationError(
                f"{what}に未対応の必須拡張（crit）があります",
                f"{what_en} has critical extensions this verifier does not understand",
            )

    def verify(self, key: ec.EllipticCurvePublicKey, *, what: str, what_en: str) -> None:
        """Check the ES256 signature with ``key``. Returns None, raises
        :class:`VerificationError`."""
        sig = self.signature
        if len(sig) != _SIG_LEN:
            raise VerificationError(
                f"{what}の署名の長さが不正です", f"{what_en} signature has the wrong length"
            )
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        try:
            key.verify(der, self.signing_input, _ECDSA_SHA256)
        except InvalidSignature:
            raise VerificationError(
                f"{what}の署名が一致しません（改ざんされたか、別の鍵で署名されています）",
                f"{what_en} signature does not match (tampered, or signed by another key)",
            ) from None
