"""The contract agreement JWS: one party's ES256 signature over a contract PDF's digest.

Header ``{"alg": "ES256", "typ": "shomei-contract-agreement+jwt", "jwk": <public key>}``
and nothing else; payload ``{"aud": <issuer id>, "contract_number", "document_sha256",
"party", "iat", "nonce"}``. The signer's key is the header's ``jwk``; who may sign
(the registered key, the issuer's key) is decided by the caller. The issuer makes and
checks these when a contract is signed, the verifier checks them inside a contract PDF
or credential: both read the format from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from credentials import jws as _jws
from credentials.encoding import JST
from credentials.errors import InvalidCredential, ShomeiError
from credentials.keys import SigningKey, jwk_thumbprint, public_key_from_jwk

TYP = "shomei-contract-agreement+jwt"
MAX_LENGTH = 4096
PARTIES = ("orderer", "contractor")
HEADER_MEMBERS = frozenset({"alg", "typ", "jwk"})
_WHAT, _WHAT_EN = "合意の署名", "agreement"


class AgreementFormatError(InvalidCredential):
    """An agreement JWS that is not well formed or whose signature does not verify.
    ``reason`` is ``malformed``, ``header`` or ``bad_signature``."""

    def __init__(self, reason: str, ja: str, en: str) -> None:
        super().__init__(ja, en)
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class Terms:
    """What an agreement says, but its time."""

    audience: str
    contract_number: str
    document_sha256: str
    party: str
    nonce: str

    def payload(self, *, iat: int) -> dict[str, Any]:
        return {
            "aud": self.audience,
            "contract_number": self.contract_number,
            "document_sha256": self.document_sha256,
            "party": self.party,
            "iat": iat,
            "nonce": self.nonce,
        }


def rfc3339(timestamp: float) -> str:
    """``2025-10-10T10:00:00+09:00`` (Japan time, whole seconds)."""
    return datetime.fromtimestamp(int(timestamp), UTC).astimezone(JST).isoformat()


def sign(key: SigningKey, terms: Terms, *, now: float) -> str:
    """The agreement JWS of ``terms`` signed with ``key`` at ``now``."""
    header = _jws.encode_header({"alg": _jws.ALG, "typ": TYP, "jwk": key.jwk})
    return _jws.sign(header, terms.payload(iat=int(now)), key.private_key)


def signature_of(token: str) -> str:
    """The JWS signature part (base64url of r‖s), as a credential's entry keeps it."""
    return token.rsplit(".", 1)[-1]


class UnverifiedAgreement:
    """A well-formed agreement JWS whose signature is not checked yet: its header key
    and that key's RFC 7638 thumbprint are known, its payload is ``unverified``."""

    __slots__ = ("_jws", "jwk", "thumbprint", "token")

    def __init__(self, jws: _jws.CompactJws, token: str, jwk: dict[str, Any], thumbprint: str):
        self._jws = jws
        self.token = token
        self.jwk = jwk
        self.thumbprint = thumbprint

    @classmethod
    def parse(cls, token: Any) -> UnverifiedAgreement:
        """Raises :class:`AgreementFormatError` (``malformed`` or ``header``)."""
        if not isinstance(token, str) or not 0 < len(token.strip()) <= MAX_LENGTH:
            raise AgreementFormatError("malformed", "署名がありません", "no agreement JWS")
        token = token.strip()
        try:
            jws = _jws.CompactJws(token, what=_WHAT, what_en=_WHAT_EN)
            jws.check_header(typ=TYP, what=_WHAT, what_en=_WHAT_EN)
        except ShomeiError as e:
            raise AgreementFormatError("malformed", e.ja, e.en) from None
        header = jws.unverified_header
        if set(header) - HEADER_MEMBERS:
            raise AgreementFormatError(
                "header", "ヘッダーに余分な項目があります", "unexpected header members"
            )
        try:
            public_key_from_jwk(header.get("jwk"))
            thumbprint = jwk_thumbprint(header["jwk"])
        except ShomeiError as e:
            raise AgreementFormatError("header", e.ja, e.en) from None
        return cls(jws, token, header["jwk"], thumbprint)

    @property
    def unverified_payload(self) -> dict[str, Any]:
        return self._jws.unverified_payload

    def verify(self) -> dict[str, Any]:
        """The payload, once the signature verifies under the header's key. Raises
        :class:`AgreementFormatError` (``bad_signature``)."""
        try:
            self._jws.verify(public_key_from_jwk(self.jwk), what=_WHAT, what_en=_WHAT_EN)
        except ShomeiError as e:
            raise AgreementFormatError("bad_signature", e.ja, e.en) from None
        return self._jws.unverified_payload


def looks_like_agreement(text: str) -> bool:
    """Whether ``text`` is a compact JWS whose (unverified) ``typ`` is an agreement's."""
    if not 0 < len(text) <= MAX_LENGTH or text.count(".") != 2:
        return False
    try:
        jws = _jws.CompactJws(text, what=_WHAT, what_en=_WHAT_EN)
    except ShomeiError:
        return False
    return jws.unverified_header.get("typ") == TYP
