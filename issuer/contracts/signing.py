"""The contractor's side of a contract: the one-time signing link, the key the
contractor registers through it, and its agreement. No Flask.

The clerk makes the link (:func:`create_link`): a random token shown once, only its
SHA-256 stored, expiring after ``CONTRACT_LINK_TTL_SECONDS`` (7 days by default); a new
link replaces the old ones. Through it the contractor reads the terms and the PDF,
registers its public key once (:func:`register_key`) and signs the agreement JWS
(:func:`sign_as_contractor`), which uses the link up. A key a supervisor revoked never
registers again; its replacement comes through a key link
(:mod:`issuer.contracts.key_replacement`), not a signing link. Every refusal (unknown,
used or expired link, another or a revoked key, a JWS that does not verify) is audited
and writes nothing else. Every function takes ``now``; the service commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

import issuer.contracts.agreements as agreements
import issuer.contracts.links as links
from credentials.errors import ShomeiError
from credentials.keys import jwk_thumbprint, public_key_from_jwk
from issuer.accounts.models import User
from issuer.audit import service as audit
from issuer.contracts.contractors import OpenContractor, open_contractor, revoked_keys
from issuer.contracts.links import LinkError as LinkError
from issuer.contracts.models import (
    AWAITING_APPROVAL,
    AWAITING_CONTRACTOR,
    CONTRACTOR,
    DRAFT,
    Contract,
    ContractLink,
)
from issuer.contracts.records import (
    ContractError,
    _audit,
    _contractor,
    _document_bytes,
    _expected,
    _refused,
    _signature_row,
    find,
)
from issuer.keys.service import City

DEFAULT_LINK_TTL = 7 * 86_400


@dataclass(frozen=True, kw_only=True)
class NewLink:
    token: str  # shown once to the clerk, never stored
    expires_at: float


@dataclass(frozen=True, kw_only=True)
class SigningPage:
    """What the contractor's page needs: the contract, and what to sign."""

    contract: Contract
    contractor: OpenContractor
    expected: agreements.Expected
    registered_jwk: dict[str, Any] | None


# ------------------------------------------------------------------ the signing link
def create_link(
    session: Session, contract_id: str, *, clerk: User, now: float, ttl: float
) -> NewLink:
    """A one-time signing link for the contractor (committed, audited); earlier unused
    links of the contract stop working. Raises :class:`ContractError` unless the
    contract waits for the contractor."""
    contract = find(session, contract_id)
    if contract.state not in (DRAFT, AWAITING_CONTRACTOR):
        raise ContractError(
            "受注者の署名を待っている契約ではありません", "not waiting for the contractor"
        )
    token = links.issue(
        session,
        ContractLink,
        owner="contract_id",
        owner_id=contract.id,
        created_by=clerk.id,
        now=now,
        ttl=ttl,
    )
    contract.state = AWAITING_CONTRACTOR
    _audit(session, clerk.username, audit.CONTRACT_LINK_CREATED, contract, now=now)
    session.commit()
    return NewLink(token=token, expires_at=now + ttl)


def _open_link(session: Session, token: str, *, now: float) -> tuple[ContractLink, Contract]:
    def contract_of(link: ContractLink) -> Contract:
        contract = session.get(Contract, link.contract_id)
        assert contract is not None
        return contract

    link, contract = links.open_link(
        session,
        ContractLink,
        token,
        now=now,
        name="link",
        owner=contract_of,
        refuse=lambda row, reason: _refused(session, row, reason, now=now),
    )
    if contract.state != AWAITING_CONTRACTOR:
        _refused(session, contract, "not_awaiting", now=now)
        raise LinkError(
            "この契約は署名を受け付けていません", "this contract takes no signature now"
        )
    return link, contract


def signing_page(session: Session, token: str, *, city: City, now: float) -> SigningPage:
    """The contract behind a working link. Raises :class:`LinkError` (audited)."""
    link, contract = _open_link(session, token, now=now)
    contractor = _contractor(session, contract)
    return SigningPage(
        contract=contract,
        contractor=open_contractor(city, contractor),
        expected=_expected(
            contract, city, CONTRACTOR, agreements.nonce_for(city.storage_key, link.token_hash)
        ),
        registered_jwk=json.loads(contractor.jwk) if contractor.jwk else None,
    )


def link_document(session: Session, token: str, *, city: City, now: float) -> bytes:
    """The PDF, for the contractor's browser (audited). Raises :class:`LinkError`."""
    _, contract = _open_link(session, token, now=now)
    _audit(session, None, audit.CONTRACT_VIEWED, contract, now=now, party=CONTRACTOR)
    session.commit()
    return _document_bytes(session, contract, city)


def register_key(session: Session, token: str, jwk: Any, *, now: float) -> str:
    """Register the contractor's public key (first use); returns its thumbprint.
    Registering the same key again is harmless; another key is refused (audited).
    Raises :class:`LinkError`, :class:`ContractError`."""
    _, contract = _open_link(session, token, now=now)
    contractor = _contractor(session, contract)
    try:
        public_key_from_jwk(jwk)
        public = {k: jwk[k] for k in ("kty", "crv", "x", "y")}
    except ShomeiError as e:
        _refused(session, contract, "bad_key", now=now)
        raise ContractError(
            f"鍵を登録できません: {e.ja}", f"cannot register the key: {e.en}"
        ) from None
    thumbprint = jwk_thumbprint(public)
    revoked = revoked_keys(session, contractor.id)
    if thumbprint in revoked:
        _refused(session, contract, "revoked_key", now=now, key_id=thumbprint)
        raise ContractError(
            "この鍵は失効しています。発注者から届いた鍵の登録用リンクで新しい鍵を登録してください",
            "this key is revoked: register a new key through the key link the city sent",
        )
    if contractor.key_thumbprint is None and revoked:  # a replacement is pending
        _refused(session, contract, "key_replacement_pending", now=now, key_id=thumbprint)
        raise ContractError(
            "新しい鍵は発注者から届いた鍵の登録用リンクで登録してください",
            "register the new key through the key link the city sent",
        )
    if contractor.key_thumbprint not in (None, thumbprint):
        _refused(session, contract, "other_key", now=now, key_id=thumbprint)
        raise ContractError(
            "別の鍵がすでに登録されています。最初に署名したブラウザーで開くか、発注者にお問い合わせください",
            "another key is registered: open the link in the browser that signed first,"
            " or ask the city",
        )
    if contractor.key_thumbprint is None:
        contractor.jwk = json.dumps(public, sort_keys=True)
        contractor.key_thumbprint = thumbprint
        _audit(
            session,
            None,
            audit.CONTRACTOR_REGISTERED,
            contract,
            now=now,
            key_id=thumbprint,
            contractor=contractor.public_id,
        )
        session.commit()
    return thumbprint


def sign_as_contractor(
    session: Session, token: str, jws: Any, *, city: City, now: float
) -> Contract:
    """Take the contractor's agreement: verified strictly against the registered key
    and this contract's digest, number, role and the link's nonce; the link is used up
    and the contract awaits the city's approval (committed, audited). Raises
    :class:`LinkError` and ``agreements.AgreementError`` (nothing but the audit entry
    written)."""
    page = signing_page(session, token, city=city, now=now)
    contract = page.contract
    if page.registered_jwk is None:
        _refused(session, contract, "no_key", now=now)
        raise agreements.AgreementError("no_key", "鍵が登録されていません", "no key is registered")
    try:
        agreed = agreements.verify_agreement(
            jws, registered_jwk=page.registered_jwk, expected=page.expected, now=now
        )
    except agreements.AgreementError as e:
        _refused(session, contract, e.reason, now=now)
        raise
    used = session.execute(
        update(ContractLink)
        .where(ContractLink.token_hash == links.token_hash(token), ContractLink.used_at.is_(None))
        .values(used_at=now)
    )
    if cast("CursorResult[Any]", used).rowcount != 1:  # another request took the link first
        session.rollback()
        _refused(session, contract, "used_link", now=now)
        raise LinkError("このリンクはすでに使われました", "this link has already been used")
    session.add(_signature_row(contract, agreed, signed_by=None))
    contract.state = AWAITING_APPROVAL
    _audit(
        session,
        None,
        audit.CONTRACT_SIGNED,
        contract,
        now=now,
        party=CONTRACTOR,
        key_id=agreed.key_thumbprint,
        document_sha256=contract.document_sha256,
    )
    session.commit()
    return contract
