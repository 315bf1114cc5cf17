"""The parties' agreements to a contract: a small compact JWS each. No Flask.

Header ``{"alg": "ES256", "typ": "shomei-contract-agreement+jwt", "jwk": <public key>}``;
payload ``{"aud": <issuer id>, "contract_number", "document_sha256", "party",
"iat", "nonce"}``. The contractor signs in its browser (WebCrypto, ``contract-sign.js``)
with the key it registered; the city signs on the server with its issuing key. The
credential's ``agreements`` entry keeps the party, the time, the key's RFC 7638
thumbprint and the JWS signature (base64url of r‖s); the whole JWS stays in
``contract_signatures``.

:func:`verify_agreement` is strict: ES256 only, the exact ``typ``, no ``crit``, no
``kid``/``x5c``/``jku``, the header key must be the registered one, every payload member
must match, ``iat`` recent, the nonce the one the server handed out.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from credentials import jws as _jws
from credentials.encoding import JST, b64e
from credentials.errors import ShomeiError
from credentials.keys import SigningKey, jwk_thumbprint, public_key_from_jwk

TYP = "shomei-contract-agreement+jwt"
MAX_AGE = 600  # an agreement signed longer ago than this is stale...
SKEW = 60  # ...and one this far in the future is refused
MAX_LENGTH = 4096
_NONCE_LABEL = b"shomei contract agreement nonce v1\x00"
_WHAT, _WHAT_EN = "合意の署名", "agreement"


class AgreementError(ShomeiError):
    """An agreement that does not verify. ``reason`` is a short code for the audit log."""

    def __init__(self, reason: str, ja: str, en: str) -> None:
        super().__init__(f"署名を受け付けられません: {ja}", f"signature refused: {en}")
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class Expected:
    """What an agreement must say."""

    audience: str
    contract_number: str
    document_sha256: str
    party: str
    nonce: str


@dataclass(frozen=True, kw_only=True)
class Agreement:
    """A verified agreement."""

    jws: str
    party: str
    signed_at: int
    key_thumbprint: str

    def claim(self) -> dict[str, str]:
        """The credential's ``agreements`` entry."""
        return {
            "party": self.party,
            "signed_at": rfc3339(self.signed_at),
            "key_thumbprint": self.key_thumbprint,
            "signature": self.jws.rsplit(".", 1)[1],
            # The whole JWS (its header names the key, its payload the digest and the
            # nonce), so the credential alone lets a verifier check the signature.
            "jws": self.jws,
        }


def rfc3339(timestamp: float) -> str:
    """``2025-10-10T10:00:00+09:00`` (Japan time, whole seconds)."""
    return datetime.fromtimestamp(int(timestamp), UTC).astimezone(JST).isoformat()


def nonce_for(storage_key: bytes, link_hash: bytes) -> str:
    """The server nonce of one signing link: a MAC of its token's hash, so nothing
    more is stored and it dies with the link."""
    return b64e(hmac.new(storage_key, _NONCE_LABEL + link_hash, hashlib.sha256).digest()[:18])


def payload(expected: Expected, *, iat: int) -> dict[str, Any]:
    return {
        "aud": expected.audience,
        "contract_number": expected.contract_number,
        "document_sha256": expected.document_sha256,
        "party": expected.party,
        "iat": iat,
        "nonce": expected.nonce,
    }


def to_sign(expected: Expected) -> dict[str, Any]:
    """The payload a signer completes with ``iat`` (what the contractor's page gets)."""
    body = payload(expected, iat=0)
    del body["iat"]
    return body


def sign(key: SigningKey, expected: Expected, *, now: float) -> Agreement:
    """The agreement signed with ``key`` (the city's, on approval)."""
    header = _jws.encode_header({"alg": _jws.ALG, "typ": TYP, "jwk": key.jwk})
    iat = int(now)
    token = _jws.sign(header, payload(expected, iat=iat), key.private_key)
    return Agreement(jws=token, party=expected.party, signed_at=iat, key_thumbprint=key.kid)


def _refuse(reason: str, ja: str, en: str) -> AgreementError:
    return AgreementError(reason, ja, en)


def verify_agreement(
    unverified_token: Any, *, registered_jwk: dict[str, Any], expected: Expected, now: float
) -> Agreement:
    """The agreement, verified against the registered key and what it must say.
    Raises :class:`AgreementError`."""
    # (1) a well-formed compact JWS of our type
    jws = _parse(unverified_token)
    # (2) signed by the registered key, named in its header
    thumbprint = _check_signature(jws, registered_jwk)
    # (3) saying exactly what it must, recently
    iat = _check_payload(jws.unverified_payload, expected, now)
    return Agreement(
        jws=str(unverified_token).strip(),
        party=expected.party,
        signed_at=iat,
        key_thumbprint=thumbprint,
    )


def _parse(unverified_token: Any) -> _jws.CompactJws:
    if not isinstance(unverified_token, str) or not 0 < len(unverified_token) <= MAX_LENGTH:
        raise _refuse("malformed", "署名がありません", "no agreement JWS")
    try:
        jws = _jws.CompactJws(unverified_token.strip(), what=_WHAT, what_en=_WHAT_EN)
        jws.check_header(typ=TYP, what=_WHAT, what_en=_WHAT_EN)
    except ShomeiError as e:
        raise _refuse("malformed", e.ja, e.en) from None
    if set(jws.unverified_header) - {"alg", "typ", "jwk"}:
        raise _refuse("header", "ヘッダーに余分な項目があります", "unexpected header members")
    return jws


def _check_signature(jws: _jws.CompactJws, registered_jwk: dict[str, Any]) -> str:
    header = jws.unverified_header
    try:
        header_key = public_key_from_jwk(header.get("jwk"))
        thumbprint = jwk_thumbprint(header["jwk"])
    except ShomeiError as e:
        raise _refuse("header", e.ja, e.en) from None
    if not hmac.compare_digest(thumbprint, jwk_thumbprint(registered_jwk)):
        raise _refuse(
            "wrong_key", "登録された鍵で署名されていません", "not signed by the registered key"
        )
    try:
        jws.verify(header_key, what=_WHAT, what_en=_WHAT_EN)
    except ShomeiError as e:
        raise _refuse("bad_signature", e.ja, e.en) from None
    return thumbprint


def _check_payload(claims: dict[str, Any], expected: Expected, now: float) -> int:
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise _refuse("payload", "署名時刻（iat）がありません", "no iat")
    wanted = payload(expected, iat=iat)
    for name, value in wanted.items():
        if claims.get(name) != value:
            reason = "wrong_document" if name == "document_sha256" else "payload"
            raise _refuse(
                reason, f"{name} が契約と一致しません", f"{name} does not match the contract"
            )
    if set(claims) != set(wanted):
        raise _refuse("payload", "ペイロードに余分な項目があります", "unexpected payload members")
    if not now - MAX_AGE <= iat <= now + SKEW:
        raise _refuse("stale", "署名時刻が古すぎるか未来です", "iat is stale or in the future")
    return iat
