"""Public-works contracts signed by both parties (当事者型): the service behind the
clerk's and the contractor's pages. No Flask.

1. A clerk registers the contractor and uploads the contract PDF with its terms
   (:func:`register_contractor`, :func:`create_contract`); an amendment is a new
   version of an issued contract (:func:`amend`).
2. The clerk makes a one-time signing link; through it the contractor registers its
   key once and signs the agreement JWS (:mod:`issuer.contract_signing`).
3. A supervisor approves (:func:`approve`): the city signs with its issuing key, and in
   the same transaction one ``contract/1`` credential per party is issued (status index,
   signature, leaf queued, sealed, audited, through :mod:`issuer.certificates`). Nothing
   is issued before that approval.
4. Termination revokes both credentials (:func:`terminate`); issuing an amendment
   revokes the credentials of the version it replaces.

Every step and every refused attempt is in the audit log, with identifiers only
(public ids, version, party, digest, key thumbprint, a reason code). A refused request
writes nothing else. Every function takes ``now``; the service commits.
"""

from __future__ import annotations

import secrets
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import issuer.contracts.agreements as agreements
import issuer.contracts.pdf as contract_pdf
import issuer.contracts.terms as terms_mod
from anchor import evidence as anchor_evidence
from anchor import merkle
from anchor.queue import find_evidence
from credentials import qr
from credentials.errors import ValidationError
from issuer.accounts.models import User
from issuer.audit import service as audit
from issuer.certificates import service as certificates
from issuer.certificates.models import Certificate
from issuer.contracts.contractors import (
    OpenContractor,
    find_contractor,
    open_contractor,
    revoked_keys,
)
from issuer.contracts.forms import TermsForm
from issuer.contracts.models import (
    AWAITING_APPROVAL,
    CONTRACTOR,
    DRAFT,
    ISSUED,
    ORDERER,
    SUPERSEDED,
    TERMINATED,
    Contract,
    ContractCredential,
    ContractDocument,
    ContractLink,
    Contractor,
)
from issuer.contracts.pdf import CheckedPdf
from issuer.contracts.records import (
    ContractError,
    ContractView,
    IssuedCopy,
    NotFound,
    _audit,
    _contractor,
    _copies,
    _document_bytes,
    _document_context,
    _expected,
    _party_order,
    _signature_row,
    _signatures,
    find,
)
from issuer.keys.service import City

MAX_REASON = certificates.MAX_REASON
PARTIES = (ORDERER, CONTRACTOR)


# ------------------------------------------------------------------ versions
def create_contract(
    session: Session,
    form: TermsForm,
    pdf: CheckedPdf,
    *,
    contractor_id: str,
    city: City,
    clerk: User,
    now: float,
    previous: Contract | None = None,
) -> Contract:
    """A new contract version in ``draft`` with its PDF sealed (committed, audited).
    Raises ``ValidationError`` (field errors, nothing written)."""
    contractor = find_contractor(session, contractor_id)
    terms = terms_mod.terms_input(form, city=city, contractor=open_contractor(city, contractor))
    if previous is None and _versions(session, terms.contract_number):
        raise ValidationError(
            [("contract_number", "この契約番号は使われています", "contract number already used")]
        )
    contract = Contract(
        public_id=secrets.token_urlsafe(16),
        contract_number=terms.contract_number,
        version=1 if previous is None else _next_version(session, terms.contract_number),
        previous_id=previous.id if previous else None,
        contractor_id=contractor.id,
        title=terms.title,
        amount_jpy=terms.amount_jpy,
        period_start=terms.period_start,
        period_end=terms.period_end,
        site=terms.site,
        document_sha256=pdf.sha256,
        document_pages=pdf.pages,
        document_size=pdf.size,
        state=DRAFT,
        created_by=clerk.id,
        created_at=now,
    )
    session.add(contract)
    session.flush()
    sealed = city.seal(pdf.data, context=_document_context(contract))
    session.add(ContractDocument(contract_id=contract.id, sealed=sealed))
    details: dict[str, Any] = {"version": contract.version, "document_sha256": pdf.sha256}
    if previous is not None:
        details["previous"] = previous.public_id
    _audit(session, clerk.username, audit.CONTRACT_UPLOADED, contract, now=now, **details)
    if previous is not None:
        _audit(session, clerk.username, audit.CONTRACT_AMENDED, previous, now=now)
    session.commit()
    return contract


def amend(
    session: Session,
    previous_id: str,
    form: TermsForm,
    pdf: CheckedPdf,
    *,
    city: City,
    clerk: User,
    now: float,
) -> Contract:
    """A new version of the issued contract ``previous_id``, with its own PDF, to be
    signed by both parties again. Its contract number may change. Raises
    :class:`ContractError` (not issued, an amendment already on its way) and
    ``ValidationError``."""
    previous = find(session, previous_id)
    if previous.state != ISSUED:
        raise ContractError(
            "変更できるのは締結済みの契約だけです", "only an issued contract is amended"
        )
    pending = session.scalar(
        select(Contract.id).where(
            Contract.previous_id == previous.id, Contract.state.not_in((TERMINATED,))
        )
    )
    if pending is not None:
        raise ContractError("この契約の変更はすでに作成されています", "an amendment already exists")
    if pdf.sha256 == previous.document_sha256:
        raise ValidationError(
            [("document", "変更前と同じPDFです", "the PDF is the same as the previous version's")]
        )
    return create_contract(
        session,
        form,
        pdf,
        contractor_id=_contractor(session, previous).public_id,
        city=city,
        clerk=clerk,
        now=now,
        previous=previous,
    )


def _versions(session: Session, number: str) -> list[int]:
    return list(session.scalars(select(Contract.version).where(Contract.contract_number == number)))


def _next_version(session: Session, number: str) -> int:
    return max(_versions(session, number), default=0) + 1


# ------------------------------------------------------------------ approval and issuance
def approve(
    session: Session, contract_id: str, *, city: City, supervisor: User, now: float
) -> list[Certificate]:
    """The city's agreement, signed with its issuing key, then one credential per party
    (city's copy first), all in one transaction; an amendment's previous version is
    superseded and its credentials revoked. Raises ValueError for a non-supervisor and
    :class:`ContractError` unless the contractor has signed and nothing was issued."""
    if not supervisor.is_supervisor:
        raise ValueError("only a supervisor approves a contract")
    contract = find(session, contract_id)
    taken = session.execute(
        update(Contract)
        .where(Contract.id == contract.id, Contract.state == AWAITING_APPROVAL)
        .values(state=ISSUED)
    )
    if cast("CursorResult[Any]", taken).rowcount != 1:
        session.rollback()
        raise ContractError(
            "受注者の署名が済んだ契約だけを承認できます",
            "only a contract the contractor signed is approved",
        )
    session.refresh(contract)
    contractor_sig = _signatures(session, contract)[CONTRACTOR]
    expected = _expected(contract, city, ORDERER, secrets.token_urlsafe(18))
    city_agreement = agreements.sign(city.key, expected, now=now)
    session.add(_signature_row(contract, city_agreement, signed_by=supervisor.id))
    contract.approved_by, contract.approved_at = supervisor.id, now
    contract.concluded_on = terms_mod.concluded_on(now)
    _audit(
        session,
        supervisor.username,
        audit.CONTRACT_APPROVED,
        contract,
        now=now,
        party=ORDERER,
        key_id=city_agreement.key_thumbprint,
        document_sha256=contract.document_sha256,
    )
    contractor_agreement = agreements.Agreement(
        jws=contractor_sig.jws,
        party=CONTRACTOR,
        signed_at=int(contractor_sig.signed_at),
        key_thumbprint=contractor_sig.key_thumbprint,
    )
    claims = terms_mod.claims_of(
        terms_mod.terms_of(contract),
        contractor=open_contractor(city, _contractor(session, contract)),
        city=city,
        document_sha256=contract.document_sha256,
        concluded_on=contract.concluded_on,
        agreements=[city_agreement.claim(), contractor_agreement.claim()],
    )
    issued = []
    for party in PARTIES:
        cert = certificates.issue_validated(
            session, "contract", claims, city=city, clerk=supervisor, now=now
        )
        session.add(
            ContractCredential(contract_id=contract.id, party=party, certificate_id=cert.id)
        )
        _audit(
            session,
            supervisor.username,
            audit.CONTRACT_ISSUED,
            contract,
            now=now,
            party=party,
            certificate=cert.public_id,
        )
        issued.append(cert)
    if contract.previous_id is not None:
        previous = session.get(Contract, contract.previous_id)
        assert previous is not None
        _end(
            session,
            previous,
            SUPERSEDED,
            supervisor=supervisor,
            now=now,
            reason=f"superseded by version {contract.version}",
        )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ContractError("承認が重複しました", "the contract was approved twice") from None
    return issued


def terminate(
    session: Session, contract_id: str, *, supervisor: User, reason: str, now: float
) -> Contract:
    """End a contract: its credentials are revoked (status list), it takes no more
    signatures (committed, audited). Raises ValueError for a non-supervisor and
    :class:`ContractError` (no reason, already ended)."""
    if not supervisor.is_supervisor:
        raise ValueError("only a supervisor terminates a contract")
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise ContractError(
            f"解除の理由を{MAX_REASON}文字以内で入力してください",
            f"enter the reason (at most {MAX_REASON} characters)",
        )
    contract = find(session, contract_id)
    if contract.state in (TERMINATED, SUPERSEDED):
        raise ContractError("この契約はすでに終了しています", "this contract has already ended")
    _end(session, contract, TERMINATED, supervisor=supervisor, now=now, reason=reason)
    _audit(session, supervisor.username, audit.CONTRACT_TERMINATED, contract, now=now)
    session.commit()
    return contract


def _end(
    session: Session, contract: Contract, state: str, *, supervisor: User, now: float, reason: str
) -> None:
    for copy in _copies(session, contract):
        if copy.state != "revoked":
            certificates.revoke_in_transaction(
                session, copy, supervisor=supervisor, reason=reason, now=now
            )
    session.execute(
        update(ContractLink)
        .where(
            ContractLink.contract_id == contract.id,
            ContractLink.used_at.is_(None),
            ContractLink.expires_at > now,
        )
        .values(expires_at=now)
    )
    contract.state = state
    contract.ended_by, contract.ended_at, contract.end_reason = supervisor.id, now, reason


# ------------------------------------------------------------------ reading


def listing(
    session: Session, *, city: City, limit: int = 100
) -> list[tuple[Contract, OpenContractor]]:
    query = (
        select(Contract, Contractor)
        .join(Contractor, Contract.contractor_id == Contractor.id)
        .order_by(Contract.created_at.desc(), Contract.id.desc())
        .limit(limit)
    )
    opened: dict[int, OpenContractor] = {}
    rows = []
    for contract, row in session.execute(query).all():
        if row.id not in opened:
            opened[row.id] = open_contractor(city, row)
        rows.append((contract, opened[row.id]))
    return rows


def view(session: Session, public_id: str, *, city: City) -> ContractView:
    contract = find(session, public_id)
    links = session.execute(
        select(ContractCredential.party, Certificate)
        .join(Certificate, ContractCredential.certificate_id == Certificate.id)
        .where(ContractCredential.contract_id == contract.id)
    ).all()
    order = {p: i for i, p in enumerate(PARTIES)}
    copies = sorted(
        (
            IssuedCopy(party=p, certificate=c, anchor=certificates.anchor_state(session, c.leaf))
            for p, c in links
        ),
        key=lambda copy: order[copy.party],
    )
    return ContractView(
        contract=contract,
        contractor=open_contractor(city, _contractor(session, contract)),
        signatures=_signatures(session, contract),
        copies=copies,
        previous=session.get(Contract, contract.previous_id) if contract.previous_id else None,
        amendments=list(
            session.scalars(select(Contract).where(Contract.previous_id == contract.id))
        ),
        revoked_keys=revoked_keys(session, contract.contractor_id),
    )


def clerk_document(
    session: Session, public_id: str, *, city: City, viewer: User, now: float
) -> bytes:
    """The PDF for a clerk (audited). Raises :class:`NotFound`."""
    contract = find(session, public_id)
    _audit(session, viewer.username, audit.CONTRACT_VIEWED, contract, now=now, party=ORDERER)
    session.commit()
    return _document_bytes(session, contract, city)


def credential_of(
    session: Session, public_id: str, party: str, *, city: City, viewer: User, now: float
) -> str:
    """The SD-JWT VC (every disclosure) of ``party``'s copy, its opening audited.
    Raises :class:`NotFound`."""
    contract = find(session, public_id)
    cert = session.scalar(
        select(Certificate)
        .join(ContractCredential, ContractCredential.certificate_id == Certificate.id)
        .where(ContractCredential.contract_id == contract.id, ContractCredential.party == party)
    )
    if cert is None:
        raise NotFound("発行された契約書がありません", "no credential issued for this party")
    opened = certificates.open_certificate(
        session, cert.public_id, city=city, viewer=viewer, now=now, page="download"
    )
    return opened.credential


def signed_document(
    session: Session, public_id: str, party: str, *, city: City, viewer: User, now: float
) -> bytes:
    """The contract PDF as ``party`` keeps it: the original bytes, then an incremental
    update carrying that party's credential and both agreement JWSs, so the PDF alone
    proves itself to a verifier (its opening audited). Raises :class:`NotFound`."""
    contract = find(session, public_id)
    credential = credential_of(session, public_id, party, city=city, viewer=viewer, now=now)
    jws = [s.jws for s in sorted(_signatures(session, contract).values(), key=_party_order)]
    found = find_evidence(session, merkle.leaf_hash(credential.split("~", 1)[0]))
    anchored = None
    if found is not None:
        anchored = qr.encode_embedded(credential, anchor_evidence.encode_receipt(found.receipt))
    return contract_pdf.with_credential(
        _document_bytes(session, contract, city),
        credential=credential,
        agreements=jws,
        anchored=anchored,
    )


# ------------------------------------------------------------------ audit
