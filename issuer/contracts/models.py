"""Public-works contracts signed by both parties (当事者型): contractors, contract
versions, their PDFs, the contractor's one-time signing links, the parties' signatures
and the credentials issued for them.

A contract row is one *version*: an amendment is a new row pointing at the version it
replaces (``previous_id``), with its own PDF and both signatures again. States:
``draft`` → ``awaiting_contractor`` (a signing link exists) → ``awaiting_approval``
(the contractor signed) → ``issued`` (the city approved and signed; one credential per
party); an issued version becomes ``superseded`` when its amendment is issued, or
``terminated`` (credentials revoked).

The PDF is kept sealed with the city's storage key in ``contract_documents`` (one
database for every server process and for backups, never a file a second host cannot
see); the contract row carries only its digest. A signing link stores only the
SHA-256 of its token. A contractor's name, 法人番号, representative and contact
address are sealed with the storage key too (:mod:`issuer.contracts.contractors`); the
row keeps a keyed MAC of the 法人番号 to refuse a second registration.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from issuer.models import Base

DRAFT = "draft"
AWAITING_CONTRACTOR = "awaiting_contractor"
AWAITING_APPROVAL = "awaiting_approval"
ISSUED = "issued"
SUPERSEDED = "superseded"
TERMINATED = "terminated"
STATES = (DRAFT, AWAITING_CONTRACTOR, AWAITING_APPROVAL, ISSUED, SUPERSEDED, TERMINATED)

ORDERER = "orderer"
CONTRACTOR = "contractor"


class Contractor(Base):
    __tablename__ = "contractors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    # name, corporate_number, representative, email: JSON sealed with the storage key
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    corporate_number_mac: Mapped[str] = mapped_column(String(64), unique=True)
    # The contractor's signing key (public JWK, JSON), registered at first signature;
    # None again after a supervisor revoked it, until the new one is registered.
    jwk: Mapped[str | None] = mapped_column(Text)
    key_thumbprint: Mapped[str | None] = mapped_column(String(43))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[float] = mapped_column(Float)


class ContractorRevokedKey(Base):
    """A contractor's signing key a supervisor revoked (lost, or feared stolen): its
    public JWK kept, so an agreement it signed before ``revoked_at`` is still checked
    and shown as signed with a key revoked since; it never registers or signs again."""

    __tablename__ = "contractor_revoked_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contractor_id: Mapped[int] = mapped_column(ForeignKey("contractors.id"), index=True)
    jwk: Mapped[str] = mapped_column(Text)
    key_thumbprint: Mapped[str] = mapped_column(String(43), index=True)
    revoked_at: Mapped[float] = mapped_column(Float)
    revoked_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)


class ContractorKeyLink(Base):
    """A one-time link through which the contractor registers its new key after a
    replacement: the signing link's mechanics (only the token's SHA-256 stored, an
    expiry, used once)."""

    __tablename__ = "contractor_key_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contractor_id: Mapped[int] = mapped_column(ForeignKey("contractors.id"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float)


class Contract(Base):
    __tablename__ = "contracts"
    __table_args__ = (UniqueConstraint("contract_number", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    contract_number: Mapped[str] = mapped_column(String(50), index=True)
    version: Mapped[int] = mapped_column(Integer)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.id"))
    contractor_id: Mapped[int] = mapped_column(ForeignKey("contractors.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    amount_jpy: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[str] = mapped_column(String(10))
    period_end: Mapped[str] = mapped_column(String(10))
    site: Mapped[str | None] = mapped_column(String(200))
    document_sha256: Mapped[str] = mapped_column(String(64))
    document_pages: Mapped[int] = mapped_column(Integer)
    document_size: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(24))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[float] = mapped_column(Float, index=True)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[float | None] = mapped_column(Float)
    concluded_on: Mapped[str | None] = mapped_column(String(10))
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ended_at: Mapped[float | None] = mapped_column(Float)
    end_reason: Mapped[str | None] = mapped_column(Text)


class ContractDocument(Base):
    __tablename__ = "contract_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), unique=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class ContractLink(Base):
    __tablename__ = "contract_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float)


class ContractSignature(Base):
    """One party's agreement: the compact JWS it signed (ES256 over the contract
    digest, number, role, time and a nonce) and the key that signed it."""

    __tablename__ = "contract_signatures"
    __table_args__ = (UniqueConstraint("contract_id", "party"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    party: Mapped[str] = mapped_column(String(16))
    signed_at: Mapped[float] = mapped_column(Float)
    key_thumbprint: Mapped[str] = mapped_column(String(43))
    jws: Mapped[str] = mapped_column(Text)
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ContractCredential(Base):
    """The certificate (an issued ``contract/1`` SD-JWT VC) held by one party."""

    __tablename__ = "contract_credentials"
    __table_args__ = (UniqueConstraint("contract_id", "party"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    party: Mapped[str] = mapped_column(String(16))
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), unique=True)
