"""Replacing a contractor's lost signing key: a supervisor revokes it and hands out a
one-time key link, through which the contractor registers its new key. No Flask.

1. :func:`replace_key` (supervisors only, a reason and an explicit confirmation): the
   current key moves to ``contractor_revoked_keys`` with the time, the supervisor and
   the reason; earlier unused key links stop working; a new link is made with the
   signing link's mechanics (random token shown once, only its SHA-256 stored, an
   expiry, used once); audited as ``contractor_key_replaced``. With no current key but
   a replacement pending (the link was lost or expired), it only makes a new link.
2. :func:`register_new_key` through that link: any valid P-256 key but a revoked one;
   the link is used up; audited as ``contractor_key_registered``.

A revoked key never registers again (here or through a signing link) and so never
signs: a signature is checked against the registered key only. Agreements it signed
before stay as they were, and the contract page shows them as signed with a key
revoked since (:func:`revoked_keys`). Every refusal is audited and writes nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

import issuer.contracts.links as links
from credentials.errors import ShomeiError
from credentials.keys import jwk_thumbprint, public_key_from_jwk
from issuer.accounts.models import User
from issuer.audit import service as audit
from issuer.certificates.service import MAX_REASON
from issuer.contracts.contractors import OpenContractor, open_contractor, revoked_keys
from issuer.contracts.links import LinkError
from issuer.contracts.models import Contractor, ContractorKeyLink, ContractorRevokedKey
from issuer.contracts.records import ContractError, NotFound
from issuer.contracts.signing import NewLink
from issuer.keys.service import City


@dataclass(frozen=True, kw_only=True)
class KeyRecord:
    """A contractor's keys as the supervisor's page shows them."""

    contractor: OpenContractor
    revoked: list[ContractorRevokedKey]

    @property
    def pending(self) -> bool:
        """Revoked, and the new key not registered yet."""
        return self.contractor.key_thumbprint is None and bool(self.revoked)


@dataclass(frozen=True, kw_only=True)
class KeyLinkPage:
    contractor: OpenContractor
    expires_at: float


def _find(session: Session, public_id: str) -> Contractor:
    row = session.scalar(select(Contractor).where(Contractor.public_id == public_id))
    if row is None:
        raise NotFound("受注者が見つかりません", "no such contractor")
    return row


def key_record(session: Session, public_id: str, *, city: City) -> KeyRecord:
    """Raises :class:`NotFound`."""
    row = _find(session, public_id)
    revoked = sorted(revoked_keys(session, row.id).values(), key=lambda r: r.revoked_at)
    return KeyRecord(contractor=open_contractor(city, row), revoked=revoked)


def replace_key(
    session: Session,
    public_id: str,
    *,
    supervisor: User,
    reason: str,
    confirmed: bool,
    now: float,
    ttl: float,
) -> NewLink:
    """Revoke the contractor's key and make a key link (committed, audited). Raises
    ValueError for a non-supervisor, :class:`NotFound`, and :class:`ContractError` (no
    reason, not confirmed, no key ever registered, or the key changed meanwhile)."""
    if not supervisor.is_supervisor:
        raise ValueError("only a supervisor replaces a contractor's key")
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise ContractError(
            f"理由を{MAX_REASON}文字以内で入力してください",
            f"enter the reason (at most {MAX_REASON} characters)",
        )
    if not confirmed:
        raise ContractError(
            "確認欄にチェックしてください", "tick the box to confirm the replacement"
        )
    row = _find(session, public_id)
    old = row.key_thumbprint
    if old is None and not revoked_keys(session, row.id):
        raise ContractError(
            "この受注者はまだ鍵を登録していません（署名用リンクで登録されます）",
            "this contractor has no key yet: it registers one through a signing link",
        )
    if old is not None:
        _revoke_current(session, row, old, supervisor=supervisor, reason=reason, now=now)
    token = links.issue(
        session,
        ContractorKeyLink,
        owner="contractor_id",
        owner_id=row.id,
        created_by=supervisor.id,
        now=now,
        ttl=ttl,
        reason=reason,
    )
    details = {"contractor": row.public_id, **({"old_key_id": old} if old else {})}
    audit.record(
        session,
        actor=supervisor.username,
        action=audit.CONTRACTOR_KEY_REPLACED,
        target=f"contractor:{row.public_id}",
        details=details,
        now=now,
    )
    session.commit()
    return NewLink(token=token, expires_at=now + ttl)


def _revoke_current(
    session: Session, row: Contractor, old: str, *, supervisor: User, reason: str, now: float
) -> None:
    jwk = row.jwk
    taken = session.execute(
        update(Contractor)
        .where(Contractor.id == row.id, Contractor.key_thumbprint == old)
        .values(jwk=None, key_thumbprint=None)
    )
    if cast("CursorResult[Any]", taken).rowcount != 1 or jwk is None:
        session.rollback()
        raise ContractError(
            "鍵が同時に変更されました。画面を読み込み直してください",
            "the key changed meanwhile: reload the page",
        )
    session.add(
        ContractorRevokedKey(
            contractor_id=row.id,
            jwk=jwk,
            key_thumbprint=old,
            revoked_at=now,
            revoked_by=supervisor.id,
            reason=reason,
        )
    )


# ------------------------------------------------------------------ the key link
def _refused(session: Session, row: Contractor | None, reason: str, *, now: float) -> None:
    """A refused attempt: everything else rolled back, the audit entry committed."""
    session.rollback()
    audit.record_committed(
        session,
        actor=None,
        action=audit.CONTRACT_REFUSED,
        target=f"contractor:{row.public_id}" if row is not None else "contractor:unknown",
        details={"reason": reason, **({"contractor": row.public_id} if row else {})},
        now=now,
    )


def _open_link(session: Session, token: str, *, now: float) -> tuple[ContractorKeyLink, Contractor]:
    def contractor_of(link: ContractorKeyLink) -> Contractor:
        row = session.get(Contractor, link.contractor_id)
        assert row is not None
        return row

    return links.open_link(
        session,
        ContractorKeyLink,
        token,
        now=now,
        name="key_link",
        owner=contractor_of,
        refuse=lambda row, reason: _refused(session, row, reason, now=now),
    )


def key_link_page(session: Session, token: str, *, city: City, now: float) -> KeyLinkPage:
    """The contractor behind a working key link. Raises :class:`LinkError` (audited)."""
    link, row = _open_link(session, token, now=now)
    return KeyLinkPage(contractor=open_contractor(city, row), expires_at=link.expires_at)


def register_new_key(session: Session, token: str, jwk: Any, *, now: float) -> str:
    """Register the contractor's new public key through its key link, which is used up
    (committed, audited); returns the key's thumbprint. Raises :class:`LinkError` and
    :class:`ContractError` (a malformed or revoked key)."""
    _, row = _open_link(session, token, now=now)
    try:
        public_key_from_jwk(jwk)
        public = {k: jwk[k] for k in ("kty", "crv", "x", "y")}
    except ShomeiError as e:
        _refused(session, row, "bad_key", now=now)
        raise ContractError(
            f"鍵を登録できません: {e.ja}", f"cannot register the key: {e.en}"
        ) from None
    thumbprint = jwk_thumbprint(public)
    if thumbprint in revoked_keys(session, row.id):
        _refused(session, row, "revoked_key", now=now)
        raise ContractError(
            "失効した鍵は登録できません。新しい鍵を作成してください",
            "a revoked key cannot be registered: make a new key",
        )
    used = session.execute(
        update(ContractorKeyLink)
        .where(
            ContractorKeyLink.token_hash == links.token_hash(token),
            ContractorKeyLink.used_at.is_(None),
        )
        .values(used_at=now)
    )
    taken = session.execute(
        update(Contractor)
        .where(Contractor.id == row.id, Contractor.key_thumbprint.is_(None))
        .values(jwk=json.dumps(public, sort_keys=True), key_thumbprint=thumbprint)
    )
    if cast("CursorResult[Any]", used).rowcount != 1:  # another request took the link first
        _refused(session, row, "used_key_link", now=now)
        raise LinkError("このリンクはすでに使われました", "this link has already been used")
    if cast("CursorResult[Any]", taken).rowcount != 1:
        _refused(session, row, "other_key", now=now)
        raise ContractError(
            "別の鍵がすでに登録されています。発注者にお問い合わせください",
            "another key is registered: ask the city",
        )
    audit.record(
        session,
        actor=None,
        action=audit.CONTRACTOR_KEY_REGISTERED,
        target=f"contractor:{row.public_id}",
        details={"contractor": row.public_id, "key_id": thumbprint},
        now=now,
    )
    session.commit()
    return thumbprint
