"""The contracts' records as the services read them: the errors, the page's view of a
contract, lookups, the sealed document, and the audit entries. No Flask."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import issuer.contracts.agreements as agreements
from credentials.errors import ShomeiError
from issuer.audit import service as audit
from issuer.certificates import service as certificates
from issuer.certificates.models import Certificate
from issuer.contracts.contractors import OpenContractor
from issuer.contracts.models import (
    ORDERER,
    Contract,
    ContractCredential,
    ContractDocument,
    Contractor,
    ContractorRevokedKey,
    ContractSignature,
)
from issuer.keys.service import City


class ContractError(ShomeiError):
    """A contract request that cannot be carried out (wrong state, unknown, no reason)."""


class NotFound(ContractError):
    pass


@dataclass(frozen=True, kw_only=True)
class IssuedCopy:
    party: str
    certificate: Certificate
    anchor: certificates.AnchorState


@dataclass(frozen=True, kw_only=True)
class ContractView:
    contract: Contract
    contractor: OpenContractor
    signatures: dict[str, ContractSignature]
    copies: list[IssuedCopy]
    previous: Contract | None
    amendments: list[Contract]
    revoked_keys: dict[str, ContractorRevokedKey]  # the contractor's, by thumbprint


def _document_context(contract: Contract) -> bytes:
    return f"contract-document:{contract.public_id}:{contract.document_sha256}".encode()


def find(session: Session, public_id: str) -> Contract:
    contract = session.scalar(select(Contract).where(Contract.public_id == public_id))
    if contract is None:
        raise NotFound("契約が見つかりません", "no such contract")
    return contract


def _party_order(signature: ContractSignature) -> int:
    return 0 if signature.party == ORDERER else 1


def _document_bytes(session: Session, contract: Contract, city: City) -> bytes:
    row = session.scalar(
        select(ContractDocument).where(ContractDocument.contract_id == contract.id)
    )
    assert row is not None
    data = city.unseal(row.sealed, context=_document_context(contract))
    if hashlib.sha256(data).hexdigest() != contract.document_sha256:  # never hand out another PDF
        raise ContractError(
            "保存された契約書が一致しません", "the stored document does not match its digest"
        )
    return data


def _contractor(session: Session, contract: Contract) -> Contractor:
    contractor = session.get(Contractor, contract.contractor_id)
    assert contractor is not None
    return contractor


def _signatures(session: Session, contract: Contract) -> dict[str, ContractSignature]:
    rows = session.scalars(
        select(ContractSignature).where(ContractSignature.contract_id == contract.id)
    )
    return {row.party: row for row in rows}


def _copies(session: Session, contract: Contract) -> list[Certificate]:
    return list(
        session.scalars(
            select(Certificate)
            .join(ContractCredential, ContractCredential.certificate_id == Certificate.id)
            .where(ContractCredential.contract_id == contract.id)
        )
    )


def _expected(contract: Contract, city: City, party: str, nonce: str) -> agreements.Expected:
    return agreements.Expected(
        audience=city.issuer_id,
        contract_number=contract.contract_number,
        document_sha256=contract.document_sha256,
        party=party,
        nonce=nonce,
    )


def _signature_row(
    contract: Contract, agreed: agreements.Agreement, *, signed_by: int | None
) -> ContractSignature:
    return ContractSignature(
        contract_id=contract.id,
        party=agreed.party,
        signed_at=float(agreed.signed_at),
        key_thumbprint=agreed.key_thumbprint,
        jws=agreed.jws,
        signed_by=signed_by,
    )


def _audit(
    session: Session,
    actor: str | None,
    action: str,
    contract: Contract,
    *,
    now: float,
    **details: Any,
) -> None:
    """A contract event in the caller's transaction: identifiers only."""
    audit.record(
        session,
        actor=actor,
        action=action,
        target=f"contract:{contract.public_id}",
        details={"contract": contract.public_id, "version": contract.version, **details},
        now=now,
    )


def _refused(
    session: Session, contract: Contract | None, reason: str, *, now: float, **details: Any
) -> None:
    """A refused attempt: everything else rolled back, the audit entry committed."""
    target = f"contract:{contract.public_id}" if contract is not None else "contract:unknown"
    session.rollback()
    audit.record_committed(
        session,
        actor=None,
        action=audit.CONTRACT_REFUSED,
        target=target,
        details={"reason": reason, **details},
        now=now,
    )
