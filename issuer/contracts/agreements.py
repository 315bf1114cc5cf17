"""The parties' agreements to a contract, as the issuer takes them. No Flask.

The format is the core's (:mod:`credentials.agreement`). The contractor signs in its
browser (WebCrypto, ``contract-sign.js``) with the key it registered; the city signs on
the server with its issuing key. The credential's ``agreements`` entry keeps the party,
the time, the key's RFC 7638 thumbprint and the JWS signature (base64url of r‖s); the
whole JWS stays in ``contract_signatures``.

:func:`verify_agreement` is strict: the core's format checks, then the header key must
be the registered one, every payload member must match, ``iat`` recent, the nonce the
one the server handed out.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from credentials import agreement as fmt
from credentials.agreement import Terms as Expected
from credentials.agreement import rfc3339
from credentials.encoding import b64e
from credentials.errors import ShomeiError
from credentials.keys import SigningKey, jwk_thumbprint

__all__ = [
    "Agreement",
    "AgreementError",
    "Expected",
    "nonce_for",
    "rfc3339",
    "sign",
    "to_sign",
    "verify_agreement",
]

MAX_AGE = 600  # an agreement signed longer ago than this is stale...
SKEW = 60  # ...and one this far in the future is refused
_NONCE_LABEL = b"shomei contract agreement nonce v1\x00"


class AgreementError(ShomeiError):
    """An agreement that does not verify. ``reason`` is a short code for the audit log."""

    def __init__(self, reason: str, ja: str, en: str) -> None:
        super().__init__(f"署名を受け付けられません: {ja}", f"signature refused: {en}")
        self.reason = reason


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
            "signature": fmt.signature_of(self.jws),
            # The whole JWS (its header names the key, its payload the digest and the
            # nonce), so the credential alone lets a verifier check the signature.
            "jws": self.jws,
        }


def nonce_for(storage_key: bytes, link_hash: bytes) -> str:
    """The server nonce of one signing link: a MAC of its token's hash, so nothing
    more is stored and it dies with the link."""
    return b64e(hmac.new(storage_key, _NONCE_LABEL + link_hash, hashlib.sha256).digest()[:18])


def to_sign(expected: Expected) -> dict[str, Any]:
    """The payload a signer completes with ``iat`` (what the contractor's page gets)."""
    body = expected.payload(iat=0)
    del body["iat"]
    return body


def sign(key: SigningKey, expected: Expected, *, now: float) -> Agreement:
    """The agreement signed with ``key`` (the city's, on approval)."""
    token = fmt.sign(key, expected, now=now)
    return Agreement(jws=token, party=expected.party, signed_at=int(now), key_thumbprint=key.kid)


def verify_agreement(
    unverified_token: Any, *, registered_jwk: dict[str, Any], expected: Expected, now: float
) -> Agreement:
    """The agreement, verified against the registered key and what it must say.
    Raises :class:`AgreementError`."""
    try:
        # (1) a well-formed agreement JWS (the core's format)
        unverified = fmt.UnverifiedAgreement.parse(unverified_token)
        # (2) signed by the registered key, named in its header
        if not hmac.compare_digest(unverified.thumbprint, jwk_thumbprint(registered_jwk)):
            raise AgreementError(
                "wrong_key", "登録された鍵で署名されていません", "not signed by the registered key"
            )
        claims = unverified.verify()
    except fmt.AgreementFormatError as e:
        raise AgreementError(e.reason, e.ja, e.en) from None
    # (3) saying exactly what it must, recently
    iat = _check_payload(claims, expected, now)
    return Agreement(
        jws=unverified.token,
        party=expected.party,
        signed_at=iat,
        key_thumbprint=unverified.thumbprint,
    )


def _check_payload(claims: dict[str, Any], expected: Expected, now: float) -> int:
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise AgreementError("payload", "署名時刻（iat）がありません", "no iat")
    wanted = expected.payload(iat=iat)
    for name, value in wanted.items():
        if claims.get(name) != value:
            reason = "wrong_document" if name == "document_sha256" else "payload"
            raise AgreementError(
                reason, f"{name} が契約と一致しません", f"{name} does not match the contract"
            )
    if set(claims) != set(wanted):
        raise AgreementError(
            "payload", "ペイロードに余分な項目があります", "unexpected payload members"
        )
    if not now - MAX_AGE <= iat <= now + SKEW:
        raise AgreementError(
            "stale", "署名時刻が古すぎるか未来です", "iat is stale or in the future"
        )
    return iat
