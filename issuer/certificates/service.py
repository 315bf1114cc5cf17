"""Issuing and revoking certificates: the service behind the clerk's pages. No Flask.

Issuance, in one database transaction: validate the claims against the document type,
take a random free index in the current status list (herd privacy), sign the SD-JWT VC
with the city's key, queue its Merkle leaf for anchoring, store the row (credential
sealed), write the audit entry, commit. Nothing is handed out before that commit, so
every credential a resident holds is on its way to the chain.

Every function takes ``now`` (seconds since the epoch) and the loaded
:class:`~issuer.keys.City`; callers commit nothing themselves.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from anchor import merkle
from anchor.queue import enqueue
from anchor.store import ANCHORED, MINED, Batch, Leaf
from credentials import doctypes, sdjwt
from credentials import status_list as sl
from credentials.errors import ShomeiError
from issuer.accounts.models import User
from issuer.audit import service as audit
from issuer.certificates.models import REVOKED, VALID, Certificate, StatusListRow
from issuer.keys.service import City

JUMINHYO = "juminhyo"
PARTNERSHIP = "partnership"
HOUSEHOLD_FIELDS = ("head_of_household", "relationship_to_head")
DOMICILE_FIELDS = ("registered_domicile", "domicile_head")
STATUS_BITS = 2
STATUS_SIZE = sl.DEFAULT_SIZE
REVOKED_VALUE = 1
MAX_REASON = 500
DAY = 86_400


class CertificateError(ShomeiError):
    """A request about a certificate that cannot be carried out (unknown, already
    revoked, no reason given)."""


class NotFound(CertificateError):
    pass


@dataclass(frozen=True, kw_only=True)
class AnchorState:
    """Where a certificate's leaf is on its way to the chain."""

    state: str  # "pending" (queued), "batched" (in a batch being sent), "confirming"
    # (in a block, waiting for finality: no receipt yet), "anchored"
    batch_id: int | None = None
    block: int | None = None
    block_time: int | None = None
    tx: str | None = None


@dataclass(frozen=True, kw_only=True)
class Opened:
    """A certificate with its unsealed content."""

    certificate: Certificate
    credential: str  # the SD-JWT VC with every disclosure
    claims: dict[str, Any]


# ------------------------------------------------------------------ issuing
def issue_juminhyo(
    session: Session,
    claims: Mapping[str, Any],
    *,
    city: City,
    clerk: User,
    now: float,
    include_household: bool,
    include_domicile: bool,
) -> Certificate:
    """Issue a 住民票の写し. 世帯主・続柄 and 本籍・筆頭者 go into it only when asked for
    (as on paper); otherwise they are dropped before validation. Raises
    ``ValidationError`` (field errors, nothing written)."""
    valid = validated(
        JUMINHYO,
        claims,
        include_household=include_household,
        include_domicile=include_domicile,
    )
    certificate = _issue_one(session, JUMINHYO, valid, city=city, clerk=clerk, now=now)
    session.commit()
    return certificate


def validated(
    doc_type: str,
    claims: Mapping[str, Any],
    *,
    include_household: bool = False,
    include_domicile: bool = False,
) -> dict[str, Any]:
    """The claims that would be issued as the clerk entered them: a 住民票's household
    and domicile fields left out unless asked for, ``age_equal_or_over`` left out (the
    issuer computes it at issuance: :func:`with_computed_claims`), then validated.
    Raises ``ValidationError`` and ValueError for a document type the clerk does not
    issue."""
    if doc_type not in (JUMINHYO, PARTNERSHIP):
        raise ValueError(f"the clerk does not issue {doc_type!r}")
    wanted = dict(claims)
    if doc_type == JUMINHYO:
        wanted.pop(doctypes.AGE_CLAIM, None)
        for asked, names in (
            (include_household, HOUSEHOLD_FIELDS),
            (include_domicile, DOMICILE_FIELDS),
        ):
            if not asked:
                for name in names:
                    wanted.pop(name, None)
    return doctypes.validate_claims(doc_type, wanted)


def issue_partnership(
    session: Session, claims: Mapping[str, Any], *, city: City, clerk: User, now: float
) -> list[Certificate]:
    """Issue a パートナーシップ宣誓書受領証 to each partner: the first as entered, the
    second with holder and partner swapped. Raises ``ValidationError``."""
    valid = validated(PARTNERSHIP, claims)
    issued = [
        _issue_one(session, PARTNERSHIP, claims_for, city=city, clerk=clerk, now=now)
        for claims_for in (valid, swap_partners(valid))
    ]
    session.commit()
    return issued


def swap_partners(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The same partnership seen from the other partner."""
    swapped = dict(claims)
    for part in ("family_name", "given_name", "birthdate"):
        swapped[f"holder_{part}"] = claims[f"partner_{part}"]
        swapped[f"partner_{part}"] = claims[f"holder_{part}"]
    return swapped


def issue_validated(
    session: Session,
    doc_type: str,
    claims: Mapping[str, Any],
    *,
    city: City,
    clerk: User,
    now: float,
) -> Certificate:
    """Validate ``claims`` for any document type and issue one certificate inside the
    caller's transaction (status index, signature, leaf queued, sealed row, audit
    entry); the caller commits. Raises ``ValidationError`` (nothing added)."""
    valid = doctypes.validate_claims(doc_type, claims)
    return _issue_one(session, doc_type, valid, city=city, clerk=clerk, now=now)


def with_computed_claims(doc_type: str, claims: Mapping[str, Any], *, now: float) -> dict[str, Any]:
    """``claims`` with what the issuer computes rather than the clerk enters: for a
    住民票, ``age_equal_or_over`` on the issuance date in Japan (after ``birthdate``,
    replacing any value given)."""
    dt = doctypes.get(doc_type)
    if doctypes.AGE_CLAIM not in dt.schema["properties"] or "birthdate" not in claims:
        return dict(claims)
    ages = doctypes.age_equal_or_over(claims["birthdate"], on=doctypes.issuance_date(now))
    out: dict[str, Any] = {}
    for name, value in claims.items():
        if name != doctypes.AGE_CLAIM:
            out[name] = value
        if name == "birthdate":
            out[doctypes.AGE_CLAIM] = ages
    return out


def _issue_one(
    session: Session,
    doc_type: str,
    claims: dict[str, Any],
    *,
    city: City,
    clerk: User,
    now: float,
) -> Certificate:
    dt = doctypes.get(doc_type)
    claims = with_computed_claims(doc_type, claims, now=now)
    list_row, index = _allocate(session, now)
    iat = int(now)
    exp = iat + dt.default_validity_days * DAY
    issued = sdjwt.issue(
        claims,
        key=city.key,
        issuer=city.issuer_id,
        vct=dt.vct_for(city.issuer_id),
        iat=iat,
        exp=exp,
        always_plain=dt.never_disclosable,
        disclosable_members=dt.member_disclosable,
        status={"status_list": {"idx": index, "uri": city.status_uri(list_row.id)}},
    )
    leaf = merkle.leaf_hash(issued.jwt)
    public_id = secrets.token_urlsafe(16)
    content = json.dumps({"credential": issued.sd_jwt, "claims": claims}, ensure_ascii=False)
    certificate = Certificate(
        public_id=public_id,
        doc_type=doc_type,
        state=VALID,
        issued_by=clerk.id,
        issued_at=now,
        expires_at=float(exp),
        status_list_id=list_row.id,
        status_index=index,
        leaf=leaf,
        sealed=city.seal(content.encode("utf-8"), context=public_id.encode()),
    )
    session.add(certificate)
    enqueue(session, leaf, now=now)
    session.flush()
    _audit(
        session,
        actor=clerk,
        action=audit.CERTIFICATE_ISSUED,
        certificate=certificate,
        now=now,
    )
    return certificate


def _allocate(session: Session, now: float) -> tuple[StatusListRow, int]:
    """The newest status list with room (locked for this transaction) and a random free
    index in it; a new list when the newest is full."""
    while True:
        row = _lock_newest_list(session, now)
        used = set(
            session.scalars(
                select(Certificate.status_index).where(Certificate.status_list_id == row.id)
            )
        )
        try:
            return row, sl.allocate_index(used, row.size)
        except sl.StatusListFull:
            session.add(_new_list(now))
            session.flush()


def _lock_newest_list(session: Session, now: float) -> StatusListRow:
    newest = session.scalar(select(StatusListRow.id).order_by(StatusListRow.id.desc()).limit(1))
    if newest is None:
        row = _new_list(now)
        session.add(row)
        session.flush()
        return row
    return _locked(session, newest, now)


def _locked(session: Session, list_id: int, now: float) -> StatusListRow:
    # An UPDATE takes SQLite's write lock and PostgreSQL's row lock before anything is
    # read, so two clerks never draw the same index or lose each other's revocation.
    session.execute(update(StatusListRow).where(StatusListRow.id == list_id).values(updated_at=now))
    row = session.get(StatusListRow, list_id, populate_existing=True)
    assert row is not None
    return row


def _new_list(now: float) -> StatusListRow:
    empty = sl.StatusList(bits=STATUS_BITS, size=STATUS_SIZE)
    return StatusListRow(bits=STATUS_BITS, size=STATUS_SIZE, data=empty.to_bytes(), updated_at=now)


# ------------------------------------------------------------------ revoking
def revoke(
    session: Session, cert_id: str, *, city: City, supervisor: User, reason: str, now: float
) -> Certificate:
    """Revoke the certificate with public id ``cert_id``: its status list entry becomes
    1 (revoked). Raises :class:`NotFound`, :class:`CertificateError` (no reason, too
    long a reason, already revoked) and ValueError when ``supervisor`` is not one."""
    if not supervisor.is_supervisor:
        raise ValueError("only a supervisor revokes")
    reason = reason.strip()
    if not reason:
        raise CertificateError("取り消しの理由を入力してください", "enter the reason for revoking")
    if len(reason) > MAX_REASON:
        raise CertificateError(
            f"取り消しの理由は{MAX_REASON}文字以内にしてください",
            f"the reason may have at most {MAX_REASON} characters",
        )
    certificate = find(session, cert_id)
    try:
        revoke_in_transaction(session, certificate, supervisor=supervisor, reason=reason, now=now)
    except CertificateError:
        session.rollback()
        raise
    session.commit()
    return certificate


def revoke_in_transaction(
    session: Session, certificate: Certificate, *, supervisor: User, reason: str, now: float
) -> None:
    """Set ``certificate``'s status list entry to revoked inside the caller's
    transaction (the list row locked), with its audit entry; the caller commits.
    Raises :class:`CertificateError` when it is already revoked."""
    row = _locked(session, certificate.status_list_id, now)
    session.refresh(certificate)
    if certificate.state == REVOKED:
        raise CertificateError("この証明書はすでに取り消されています", "already revoked")
    entries = sl.StatusList.from_bytes(row.data, bits=row.bits)
    entries.set(certificate.status_index, REVOKED_VALUE)
    row.data = entries.to_bytes()
    certificate.state = REVOKED
    certificate.revoked_at = now
    certificate.revoked_by = supervisor.id
    certificate.revoke_reason = reason
    _audit(
        session,
        actor=supervisor,
        action=audit.CERTIFICATE_REVOKED,
        certificate=certificate,
        now=now,
    )


# ------------------------------------------------------------------ reading
def find(session: Session, cert_id: str) -> Certificate:
    """The certificate with public id ``cert_id``; raises :class:`NotFound`."""
    certificate = session.scalar(select(Certificate).where(Certificate.public_id == cert_id))
    if certificate is None:
        raise NotFound("証明書が見つかりません", "no such certificate")
    return certificate


def open_certificate(
    session: Session, cert_id: str, *, city: City, viewer: User, now: float, page: str = "detail"
) -> Opened:
    """The certificate and its content, the view recorded in the audit log (committed).
    Raises :class:`NotFound`."""
    certificate = find(session, cert_id)
    content = json.loads(
        city.unseal(certificate.sealed, context=certificate.public_id.encode()).decode("utf-8")
    )
    _audit(
        session,
        actor=viewer,
        action=audit.CERTIFICATE_VIEWED,
        certificate=certificate,
        now=now,
        page=page,
    )
    session.commit()
    return Opened(
        certificate=certificate, credential=content["credential"], claims=content["claims"]
    )


def recent(session: Session, *, limit: int = 20) -> list[Certificate]:
    """The newest certificates, newest first (no personal data is read)."""
    query = select(Certificate).order_by(Certificate.issued_at.desc(), Certificate.id.desc())
    return list(session.scalars(query.limit(limit)))


def anchor_state(session: Session, leaf: bytes) -> AnchorState:
    """Where ``leaf`` is: queued, in a batch on its way, or anchored (block, time, tx)."""
    row = session.execute(
        select(Leaf.batch_id, Batch.state, Batch.block, Batch.block_time, Batch.tx_hash)
        .outerjoin(Batch, Leaf.batch_id == Batch.id)
        .where(Leaf.leaf == leaf)
    ).first()
    if row is None or row.batch_id is None:
        return AnchorState(state="pending")
    if row.state == MINED:
        return AnchorState(
            state="confirming", batch_id=row.batch_id, block=row.block, tx=row.tx_hash
        )
    if row.state != ANCHORED:
        return AnchorState(state="batched", batch_id=row.batch_id, tx=row.tx_hash)
    return AnchorState(
        state="anchored",
        batch_id=row.batch_id,
        block=row.block,
        block_time=row.block_time,
        tx=row.tx_hash,
    )


def status_list(session: Session, list_id: int) -> sl.StatusList:
    """The entries of status list ``list_id``; raises :class:`NotFound`."""
    row = session.get(StatusListRow, list_id)
    if row is None:
        raise NotFound("失効リストが見つかりません", "no such status list")
    return sl.StatusList.from_bytes(row.data, bits=row.bits)


def holder_name(doc_type: str, claims: Mapping[str, Any]) -> str:
    """The holder's name as printed: family name, a space, given name (a contract's:
    the contractor's name)."""
    if doc_type == "contract":
        contractor = claims.get("contractor")
        return str(contractor.get("name", "")) if isinstance(contractor, dict) else ""
    prefix = "holder_" if doc_type == PARTNERSHIP else ""
    return (
        f"{claims.get(prefix + 'family_name', '')} {claims.get(prefix + 'given_name', '')}".strip()
    )


# ------------------------------------------------------------------ audit
def _audit(
    session: Session,
    *,
    actor: User,
    action: str,
    certificate: Certificate,
    now: float,
    page: str | None = None,
) -> None:
    """The one place a certificate event reaches the audit log, inside the caller's
    transaction: the certificate's public id, type and status index, never its claims."""
    details: dict[str, Any] = {
        "vct": certificate.doc_type,
        "status_index": certificate.status_index,
    }
    if page is not None:
        details["page"] = page
    audit.record(
        session,
        actor=actor.username,
        action=action,
        target=f"certificate:{certificate.public_id}",
        details=details,
        now=now,
    )
