"""Contractors: a company's name, 法人番号, representative and contact address, kept
sealed with the city's storage key (``City.seal``, AES-256-GCM) like a certificate's
content, so the database alone does not tell with whom the city contracts. No Flask.

A row holds its public id, the sealed JSON of those four fields (authenticated with
the row's public id: a ciphertext copied to another row does not open), a keyed MAC of
the 法人番号 (HMAC-SHA256 under the storage key) that finds a number registered twice
without opening every row, and the contractor's signing key (a public JWK, no secret).
Services and pages read a contractor through :func:`open_contractor`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import issuer.contracts.terms as terms_mod
from credentials.errors import ValidationError
from issuer.accounts.models import User
from issuer.audit import service as audit
from issuer.contracts.forms import ContractorForm
from issuer.contracts.models import Contractor, ContractorRevokedKey
from issuer.keys.service import City

# The sealed JSON's members; the migration that sealed the rows first writes the same.
SEALED_FIELDS = ("name", "corporate_number", "representative", "email")
_MAC_LABEL = b"shomei contractor corporate number v1\x00"


@dataclass(frozen=True, kw_only=True)
class OpenContractor:
    """A contractor with its sealed fields opened, as the pages show it."""

    row: Contractor
    name: str
    corporate_number: str
    representative: str
    email: str

    @property
    def public_id(self) -> str:
        return self.row.public_id

    @property
    def key_thumbprint(self) -> str | None:
        return self.row.key_thumbprint


def context_of(public_id: str) -> bytes:
    """The authenticated data of a contractor's sealed fields."""
    return f"contractor:{public_id}".encode()


def corporate_number_mac(storage_key: bytes, corporate_number: str) -> str:
    """The keyed MAC a row keeps of its 法人番号 (hex): equal numbers, equal MACs."""
    message = _MAC_LABEL + corporate_number.encode("utf-8")
    return hmac.new(storage_key, message, hashlib.sha256).hexdigest()


def open_contractor(city: City, row: Contractor) -> OpenContractor:
    """``row`` with its fields unsealed. Raises ``cryptography.exceptions.InvalidTag``
    when the sealed fields were altered or moved from another row."""
    fields = json.loads(city.unseal(row.sealed, context=context_of(row.public_id)))
    return OpenContractor(row=row, **{name: str(fields[name]) for name in SEALED_FIELDS})


def register_contractor(
    session: Session, form: ContractorForm, *, city: City, clerk: User, now: float
) -> Contractor:
    """A new contractor, its fields sealed (committed, audited). Raises
    ``ValidationError`` (field errors; a 法人番号 already registered is one)."""
    entered = terms_mod.contractor_input(form)
    mac = corporate_number_mac(city.storage_key, entered.corporate_number)
    if session.scalar(select(Contractor.id).where(Contractor.corporate_number_mac == mac)):
        raise ValidationError(
            [("corporate_number", "この法人番号は登録済みです", "already registered")]
        )
    public_id = secrets.token_urlsafe(16)
    plain = json.dumps({name: getattr(entered, name) for name in SEALED_FIELDS}, ensure_ascii=False)
    contractor = Contractor(
        public_id=public_id,
        sealed=city.seal(plain.encode("utf-8"), context=context_of(public_id)),
        corporate_number_mac=mac,
        created_by=clerk.id,
        created_at=now,
    )
    session.add(contractor)
    try:
        session.flush()
    except IntegrityError:  # another clerk registered the same number meanwhile
        session.rollback()
        raise ValidationError(
            [("corporate_number", "この法人番号は登録済みです", "already registered")]
        ) from None
    audit.record(
        session,
        actor=clerk.username,
        action=audit.CONTRACTOR_REGISTERED,
        target=f"contractor:{contractor.public_id}",
        now=now,
    )
    session.commit()
    return contractor


def all_contractors(session: Session, *, city: City) -> list[OpenContractor]:
    """Every contractor, opened, by name (the database cannot sort what it cannot read)."""
    opened = [open_contractor(city, row) for row in session.scalars(select(Contractor))]
    return sorted(opened, key=lambda c: (c.name, c.public_id))


def find_contractor(session: Session, public_id: str) -> Contractor:
    """Raises ``ValidationError`` on the ``contractor`` field for an unknown id."""
    found = session.scalar(select(Contractor).where(Contractor.public_id == public_id))
    if found is None:
        raise ValidationError([("contractor", "受注者を選んでください", "choose the contractor")])
    return found


def revoked_keys(session: Session, contractor_id: int) -> dict[str, ContractorRevokedKey]:
    """The contractor's revoked keys by thumbprint."""
    rows = session.scalars(
        select(ContractorRevokedKey).where(ContractorRevokedKey.contractor_id == contractor_id)
    )
    return {row.key_thumbprint: row for row in rows}
