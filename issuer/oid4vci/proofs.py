"""The wallet's proof of its key: stateless ``c_nonce`` values (an expiry and random
bytes under a MAC derived from the storage key; a proof consumes its nonce once) and
the JWT key proof of OpenID4VCI 1.0 Appendix F.1. No Flask."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from credentials import jws as _jws
from credentials.encoding import b64d, b64e
from credentials.errors import ShomeiError
from credentials.keys import jwk_thumbprint, public_key_from_jwk
from issuer.keys.service import City
from issuer.oid4vci.models import UsedNonce
from issuer.oid4vci.protocol import (
    NONCE_TTL,
    PROOF_MAX_AGE,
    PROOF_SKEW,
    PROOF_TYP,
    NonceError,
    OfferError,
    Proof,
    _hash,
)

_NONCE_LABEL = b"shomei oid4vci c_nonce v1"
_NONCE_RANDOM = 16
_NONCE_MAC = 16


def _nonce_key(city: City) -> bytes:
    return hmac.new(city.storage_key, _NONCE_LABEL, hashlib.sha256).digest()


def mint_nonce(city: City, *, now: float) -> str:
    """A fresh ``c_nonce``, valid :data:`NONCE_TTL` seconds."""
    body = int(now + NONCE_TTL).to_bytes(8, "big") + secrets.token_bytes(_NONCE_RANDOM)
    mac = hmac.new(_nonce_key(city), body, hashlib.sha256).digest()[:_NONCE_MAC]
    return b64e(body + mac)


def check_nonce(city: City, nonce: str, *, now: float) -> float:
    """The expiry of a ``c_nonce`` this issuer minted that has not expired. Raises
    :class:`NonceError` (used nonces are refused by :func:`deliver`)."""
    try:
        raw = b64d(nonce)
    except (ValueError, TypeError):
        raw = b""
    size = 8 + _NONCE_RANDOM + _NONCE_MAC
    if len(raw) != size:
        raise NonceError("c_nonce が不正です", "the c_nonce is not one of this issuer's")
    body, mac = raw[:-_NONCE_MAC], raw[-_NONCE_MAC:]
    expected = hmac.new(_nonce_key(city), body, hashlib.sha256).digest()[:_NONCE_MAC]
    if not hmac.compare_digest(mac, expected):
        raise NonceError("c_nonce が不正です", "the c_nonce is not one of this issuer's")
    expires = float(int.from_bytes(body[:8], "big"))
    if expires <= now:
        raise NonceError("c_nonce の期限が切れています", "the c_nonce expired")
    return expires


def _consume_nonce(session: Session, nonce: str, expires: float, *, now: float) -> None:
    session.execute(delete(UsedNonce).where(UsedNonce.expires_at < now))
    digest = _hash(nonce)
    if session.get(UsedNonce, digest) is not None:
        raise NonceError("この c_nonce はすでに使われています", "the c_nonce was already used")
    session.add(UsedNonce(nonce_hash=digest, expires_at=expires))
    session.flush()


def _bad_proof(ja: str, en: str) -> OfferError:
    return OfferError("invalid_proof", f"鍵の証明が不正です: {ja}", f"invalid key proof: {en}")


def verify_proof(token: Any, *, audience: str, now: float) -> Proof:
    """The wallet's key from a JWT key proof (OpenID4VCI 1.0 Appendix F.1): typ
    ``openid4vci-proof+jwt``, ES256 only, the key as a public ``jwk`` header, signed by
    it, ``aud`` the issuer, ``iat`` recent, a ``nonce``. The nonce itself is checked
    by the caller. Raises :class:`OfferError` (``invalid_proof``)."""
    if not isinstance(token, str) or len(token) > 8192:
        raise _bad_proof("JWTがありません", "no proof JWT")
    try:
        jws = _jws.CompactJws(token, what="鍵の証明", what_en="key proof")
        jws.check_header(typ=PROOF_TYP, what="鍵の証明", what_en="key proof")
        header = jws.unverified_header
        if "kid" in header or "x5c" in header:
            raise _bad_proof("jwk 以外の鍵指定は使えません", "only a jwk header names the key")
        jwk = header.get("jwk")
        key = public_key_from_jwk(jwk)
        jws.verify(key, what="鍵の証明", what_en="key proof")
    except ShomeiError as e:
        if isinstance(e, OfferError):
            raise
        raise _bad_proof(e.ja, e.en) from None
    claims = jws.unverified_payload
    if claims.get("aud") != audience:
        raise _bad_proof("aud が発行者と一致しません", "aud is not this credential issuer")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise _bad_proof("iat がありません", "no iat")
    if not now - PROOF_MAX_AGE - PROOF_SKEW <= iat <= now + PROOF_SKEW:
        raise _bad_proof("iat が古すぎるか未来です", "iat is stale or in the future")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise NonceError("鍵の証明に c_nonce がありません", "the proof carries no nonce")
    assert isinstance(jwk, dict)  # public_key_from_jwk accepted it
    public = {k: jwk[k] for k in ("kty", "crv", "x", "y")}
    return Proof(jwk=public, kid=jwk_thumbprint(public), nonce=nonce)


def proof_jwt(body: Any) -> Any:
    """The one JWT proof of a credential request: ``proof`` (drafts) or ``proofs``
    (1.0) with exactly one ``jwt``. Raises :class:`OfferError` (``invalid_proof``)."""
    proof, proofs = body.get("proof"), body.get("proofs")
    if proof is not None and proofs is None and isinstance(proof, dict):
        if proof.get("proof_type") == "jwt":
            return proof.get("jwt")
    if proofs is not None and proof is None and isinstance(proofs, dict):
        jwts = proofs.get("jwt")
        if set(proofs) == {"jwt"} and isinstance(jwts, list) and len(jwts) == 1:
            return jwts[0]
    raise _bad_proof("JWTの証明が1つだけ必要です", "exactly one jwt proof is required")
