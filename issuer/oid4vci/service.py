"""Delivering an issued certificate to the resident's wallet: OpenID4VCI 1.0, the
pre-authorized code flow with a tx_code. No Flask.

1. The clerk creates an offer for a valid certificate (:func:`create_offer`): a
   ``openid-credential-offer://`` QR code names the offer by reference
   (``credential_offer_uri``, an unguessable id), a 6-digit tx_code is shown to the
   resident. The wallet fetches the offer document there (:func:`offer_by_reference`)
   while the offer waits: it carries the pre-authorized code, derived from the id
   under a MAC key (so only hashes are stored, as for the tx_code). The offer expires
   and works once.
2. The wallet exchanges code and tx_code for an access token (:func:`exchange_code`).
   A wrong tx_code counts; :data:`MAX_TX_ATTEMPTS` of them block the offer.
3. The wallet proves possession of its key (a JWT over a ``c_nonce``) and receives a
   new SD-JWT VC of the certificate's claims bound to that key (:func:`deliver`): same
   status-list entry (revoking the certificate revokes this copy), same ``exp``, its
   leaf queued for anchoring in the same transaction.

``c_nonce`` values (from the Nonce Endpoint only, as in 1.0) are stateless (an expiry
and random bytes under a MAC derived from the storage key), so the unauthenticated
nonce endpoint writes nothing; a proof consumes its nonce in ``oid4vci_used_nonces``,
so each works once.

A refused request raises :class:`OfferError` carrying the OAuth / OpenID4VCI error
code; the only thing written then is the audit entry (and a wrong tx_code's count).
Every function takes ``now`` (seconds since the epoch); the service commits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anchor import merkle
from anchor.anchoring import evidence_json
from anchor.config import ChainConfig
from anchor.queue import AnchorEvidence, enqueue, find_evidence
from credentials import doctypes, sdjwt
from credentials.encoding import b64e
from credentials.errors import CodedError, ShomeiError
from issuer.accounts.models import User
from issuer.audit import service as audit
from issuer.certificates import service as certificates
from issuer.certificates.models import VALID, Certificate
from issuer.keys.service import City
from issuer.oid4vci.models import (
    BLOCKED,
    OFFERED,
    REDEEMED,
    TOKEN_ISSUED,
    DeliveredCredential,
    Offer,
)
from issuer.oid4vci.proofs import (
    _consume_nonce,
    check_nonce,
    proof_jwt,
    verify_proof,
)
from issuer.oid4vci.protocol import (
    MAX_TX_ATTEMPTS,
    PRE_AUTHORIZED_GRANT,
    TOKEN_TTL,
    TX_CODE_LENGTH,
    Delivered,
    NewOffer,
    NonceError,
    OfferError,
    Proof,
    TokenGrant,
    _hash,
    offer_document,
    offer_reference_uri,
)

_CODE_LABEL = b"shomei oid4vci pre-authorized_code v1"


class OfferUnavailable(CodedError):
    """No offer waits under this reference: unknown, used, blocked or expired."""

    def __init__(self) -> None:
        super().__init__(
            "offer_unavailable",
            "この受け取りは期限切れか、すでに使われています。窓口で新しいQRコードを出してもらってください",
            "this offer has expired or was already used: ask the counter for a new QR code",
            status=404,
        )


def _tx_hash(code: str, tx_code: str) -> bytes:
    # Keyed with the code: a dump of the table alone does not allow trying tx_codes.
    return hashlib.sha256(
        b"shomei tx_code\x00" + code.encode() + b"\x00" + tx_code.encode()
    ).digest()


# ------------------------------------------------------------------ offers
def _offer_code(city: City, reference: str) -> str:
    """The pre-authorized code of the offer with ``reference``: a MAC of it under a
    key derived from the storage key, so the code is stored nowhere but as a hash."""
    key = hmac.new(city.storage_key, _CODE_LABEL, hashlib.sha256).digest()
    return b64e(hmac.new(key, reference.encode("utf-8"), hashlib.sha256).digest())


def create_offer(
    session: Session, cert_id: str, *, city: City, clerk: User, now: float, ttl: float
) -> NewOffer:
    """A new offer for the certificate with public id ``cert_id`` (committed, audited).
    Raises ``certificates.NotFound`` and :class:`OfferError` when the certificate is
    revoked or expired."""
    certificate = certificates.find(session, cert_id)
    if certificate.state != VALID or certificate.expires_at <= now:
        raise OfferError(
            "credential_request_denied",
            "有効な証明書だけをウォレットに送れます",
            "only a valid certificate can be sent to a wallet",
        )
    reference = secrets.token_urlsafe(16)
    code = _offer_code(city, reference)
    tx_code = f"{secrets.randbelow(10**TX_CODE_LENGTH):0{TX_CODE_LENGTH}d}"
    offer = Offer(
        public_id=secrets.token_urlsafe(16),
        certificate_id=certificate.id,
        code_hash=_hash(code),
        tx_code_hash=_tx_hash(code, tx_code),
        state=OFFERED,
        attempts=0,
        created_by=clerk.id,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(offer)
    session.flush()
    _audit(session, audit.OFFER_CREATED, offer, certificate, now=now, actor=clerk.username)
    session.commit()
    return NewOffer(
        public_id=offer.public_id,
        pre_authorized_code=code,
        tx_code=tx_code,
        expires_at=offer.expires_at,
        uri=offer_reference_uri(city.issuer_id, reference),
    )


def offer_by_reference(
    session: Session, reference: str, *, city: City, now: float
) -> dict[str, Any]:
    """The Credential Offer document behind a ``credential_offer_uri``, served while
    the offer waits for its code to be exchanged (not after, not once expired or
    blocked). Writes nothing. Raises :class:`OfferUnavailable`."""
    if not 16 <= len(reference) <= 64:
        raise OfferUnavailable
    code = _offer_code(city, reference)
    row = session.execute(
        select(Offer.state, Offer.expires_at, Certificate.doc_type)
        .join(Certificate, Offer.certificate_id == Certificate.id)
        .where(Offer.code_hash == _hash(code))
    ).one_or_none()
    if row is None or row.state != OFFERED or row.expires_at <= now:
        raise OfferUnavailable
    return offer_document(city.issuer_id, row.doc_type, code)


def offer_state(session: Session, offer_id: str, *, cert_id: str, now: float) -> str | None:
    """``offered``, ``token_issued``, ``redeemed``, ``blocked`` or ``expired`` (an
    offer or token past its time); None for an offer unknown or not for the
    certificate with public id ``cert_id``."""
    offer = session.scalar(
        select(Offer)
        .join(Certificate, Offer.certificate_id == Certificate.id)
        .where(Offer.public_id == offer_id, Certificate.public_id == cert_id)
    )
    if offer is None:
        return None
    if offer.state == OFFERED and offer.expires_at <= now:
        return "expired"
    if offer.state == TOKEN_ISSUED and (offer.token_expires_at or 0) <= now:
        return "expired"
    return offer.state


def _locked_offer(session: Session, column: Any, digest: bytes) -> Offer | None:
    # An UPDATE first: SQLite's write lock, PostgreSQL's row lock, so two wallets (or
    # two processes) racing with one code see each other's result.
    session.execute(update(Offer).where(column == digest).values(attempts=Offer.attempts))
    offer = session.scalar(
        select(Offer).where(column == digest).execution_options(populate_existing=True)
    )
    return offer


def _reject(
    session: Session, offer: Offer, reason: str, error: OfferError, *, now: float
) -> OfferError:
    """Roll back whatever the request did, write only the audit entry, commit; return
    ``error`` for the caller to raise."""
    offer_id, cert_id = offer.id, offer.certificate_id
    session.rollback()
    offer = session.get(Offer, offer_id) or offer
    certificate = session.get(Certificate, cert_id)
    assert certificate is not None
    _audit(session, audit.OFFER_REJECTED, offer, certificate, now=now, reason=reason)
    session.commit()
    return error


def _invalid_grant(ja: str, en: str) -> OfferError:
    return OfferError("invalid_grant", ja, en)


def exchange_code(
    session: Session,
    *,
    grant_type: str | None,
    code: str | None,
    tx_code: str | None,
    now: float,
) -> TokenGrant:
    """The token response for a pre-authorized code and its tx_code (committed).
    Raises :class:`OfferError`: ``unsupported_grant_type``, ``invalid_request``
    (missing parameters) or ``invalid_grant`` (unknown, used, expired or blocked code,
    wrong tx_code, certificate no longer valid)."""
    if grant_type != PRE_AUTHORIZED_GRANT:
        raise OfferError(
            "unsupported_grant_type",
            "この付与方式には対応していません",
            f"only {PRE_AUTHORIZED_GRANT} is supported",
        )
    if not code or not tx_code:
        raise OfferError(
            "invalid_request",
            "pre-authorized_code と tx_code が必要です",
            "pre-authorized_code and tx_code are required",
        )
    offer = _locked_offer(session, Offer.code_hash, _hash(code))
    if offer is None:
        session.rollback()
        raise _invalid_grant("この受け取りコードは無効です", "unknown pre-authorized code")
    if offer.state != OFFERED:
        error = _invalid_grant(
            "この受け取りコードはすでに使われたか無効になっています",
            "the pre-authorized code was already used or is blocked",
        )
        raise _reject(
            session, offer, "reused" if offer.state != BLOCKED else "blocked", error, now=now
        )
    if offer.expires_at <= now:
        error = _invalid_grant(
            "この受け取りコードは期限切れです", "the pre-authorized code expired"
        )
        raise _reject(session, offer, "expired", error, now=now)
    if not hmac.compare_digest(offer.tx_code_hash, _tx_hash(code, tx_code)):
        offer.attempts += 1
        if offer.attempts >= MAX_TX_ATTEMPTS:
            offer.state = BLOCKED
        certificate = session.get(Certificate, offer.certificate_id)
        assert certificate is not None
        _audit(session, audit.OFFER_REJECTED, offer, certificate, now=now, reason="wrong_tx_code")
        session.commit()
        left = max(MAX_TX_ATTEMPTS - offer.attempts, 0)
        raise OfferError(
            "invalid_grant",
            f"確認番号（tx_code）が違います（あと{left}回）",
            f"wrong tx_code ({left} tries left)",
            extra={"attempts_remaining": left},
        )
    certificate = session.get(Certificate, offer.certificate_id)
    assert certificate is not None
    if certificate.state != VALID or certificate.expires_at <= now:
        error = _invalid_grant(
            "この証明書は有効ではありません", "the certificate is no longer valid"
        )
        raise _reject(session, offer, certificate.state, error, now=now)
    access_token = secrets.token_urlsafe(32)
    offer.state = TOKEN_ISSUED
    offer.access_token_hash = _hash(access_token)
    offer.token_expires_at = now + TOKEN_TTL
    session.commit()
    return TokenGrant(access_token=access_token, expires_in=TOKEN_TTL)


# ------------------------------------------------------------------ delivery
def authorize(session: Session, access_token: str | None, *, now: float) -> Offer:
    """The offer an access token was issued for (row locked for this transaction).
    Raises :class:`OfferError` (``invalid_token``, 401)."""
    offer = None
    if access_token:
        offer = _locked_offer(session, Offer.access_token_hash, _hash(access_token))
    if (
        offer is None
        or offer.state != TOKEN_ISSUED
        or offer.access_token_hash is None
        or not hmac.compare_digest(offer.access_token_hash, _hash(access_token or ""))
        or (offer.token_expires_at or 0) <= now
    ):
        session.rollback()
        raise OfferError(
            "invalid_token",
            "アクセストークンが無効か期限切れです",
            "the access token is invalid, used or expired",
            status=401,
        )
    return offer


def deliver(
    session: Session, access_token: str | None, body: Any, *, city: City, now: float
) -> Delivered:
    """Sign the certificate's claims again, bound to the wallet key the proof names,
    queue the leaf, store the copy sealed, mark the offer redeemed, audit, commit.
    Raises :class:`OfferError` (``invalid_token``, ``invalid_credential_request``,
    ``unknown_credential_configuration``, ``invalid_proof``, ``credential_request_denied``)
    and :class:`NonceError`."""
    offer = authorize(session, access_token, now=now)
    if not isinstance(body, dict):
        session.rollback()
        raise OfferError(
            "invalid_credential_request",
            "リクエストがJSONオブジェクトではありません",
            "the request body is not a JSON object",
        )
    certificate = session.get(Certificate, offer.certificate_id)
    assert certificate is not None
    if body.get("credential_configuration_id") != certificate.doc_type:
        error = OfferError(
            "unknown_credential_configuration",
            "この受け取りでは発行できない種類です",
            "credential_configuration_id is not the one offered",
        )
        raise _reject(session, offer, "unknown_credential_configuration", error, now=now)
    try:
        proof = verify_proof(proof_jwt(body), audience=city.issuer_id, now=now)
        _consume_nonce(session, proof.nonce, check_nonce(city, proof.nonce, now=now), now=now)
    except IntegrityError:  # another request consumed the same nonce at this moment
        nonce_error = NonceError("この c_nonce はすでに使われています", "the c_nonce was used")
        raise _reject(session, offer, "invalid_nonce", nonce_error, now=now) from None
    except OfferError as e:
        raise _reject(session, offer, e.code, e, now=now) from None
    if certificate.state != VALID or certificate.expires_at <= now:
        error = OfferError(
            "credential_request_denied",
            "この証明書は取り消されたか期限切れです",
            "the certificate was revoked or has expired",
        )
        raise _reject(session, offer, certificate.state, error, now=now)
    delivered = _issue_bound(session, offer, certificate, proof, city=city, now=now)
    session.commit()
    return delivered


def _issue_bound(
    session: Session,
    offer: Offer,
    certificate: Certificate,
    proof: Proof,
    *,
    city: City,
    now: float,
) -> Delivered:
    content = json.loads(
        city.unseal(certificate.sealed, context=certificate.public_id.encode()).decode("utf-8")
    )
    dt = doctypes.get(certificate.doc_type)
    issued = sdjwt.issue(
        content["claims"],
        key=city.key,
        issuer=city.issuer_id,
        vct=dt.vct_for(city.issuer_id),
        iat=int(now),
        exp=int(certificate.expires_at),
        always_plain=dt.never_disclosable,
        disclosable_members=dt.member_disclosable,
        holder_jwk=proof.jwk,
        status={
            "status_list": {
                "idx": certificate.status_index,
                "uri": city.status_uri(certificate.status_list_id),
            }
        },
    )
    leaf = merkle.leaf_hash(issued.jwt)
    session.add(
        DeliveredCredential(
            certificate_id=certificate.id,
            offer_id=offer.id,
            leaf=leaf,
            sealed=city.seal(issued.sd_jwt.encode("ascii"), context=b"delivered:" + leaf),
            holder_kid=proof.kid,
            delivered_at=now,
        )
    )
    enqueue(session, leaf, now=now)
    offer.state = REDEEMED
    offer.redeemed_at = now
    offer.holder_key_id = proof.kid
    offer.access_token_hash = None
    session.flush()
    _audit(session, audit.OFFER_REDEEMED, offer, certificate, now=now, holder_key_id=proof.kid)
    return Delivered(credential=issued.sd_jwt, leaf=leaf)


# ------------------------------------------------------------------ evidence
class NotDelivered(ShomeiError):
    """No credential delivered to a wallet has this leaf."""


def evidence(session: Session, leaf: bytes) -> AnchorEvidence | None:
    """The anchor evidence of a delivered credential's leaf; None while not anchored.
    Raises :class:`NotDelivered`."""
    known = session.scalar(select(DeliveredCredential.id).where(DeliveredCredential.leaf == leaf))
    if known is None:
        raise NotDelivered("この証明書は見つかりません", "no credential delivered with this leaf")
    return find_evidence(session, leaf)


def evidence_document(ev: AnchorEvidence, chain: ChainConfig | None) -> dict[str, Any]:
    """The evidence as ``shomei receipt`` prints it; ``chain_id`` and
    ``registry_address`` are null when this issuer has no chain configured."""
    return evidence_json(chain, ev)


# ------------------------------------------------------------------ audit
def _audit(
    session: Session,
    action: str,
    offer: Offer,
    certificate: Certificate,
    *,
    now: float,
    actor: str | None = None,
    reason: str | None = None,
    holder_key_id: str | None = None,
) -> None:
    """An offer event in the caller's transaction: ids, type and index, never claims.
    The wallet is anonymous: its events have no actor."""
    details: dict[str, Any] = {
        "offer": offer.public_id,
        "vct": certificate.doc_type,
        "status_index": certificate.status_index,
    }
    if reason is not None:
        details["reason"] = reason
    if holder_key_id is not None:
        details["holder_key_id"] = holder_key_id
    audit.record(
        session,
        actor=actor,
        action=action,
        target=f"certificate:{certificate.public_id}",
        details=details,
        now=now,
    )
