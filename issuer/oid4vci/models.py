"""Credential offers (OpenID4VCI pre-authorized code flow) and the credentials they
delivered to residents' wallets.

Only SHA-256 hashes of the pre-authorized code, the access token and the consumed
``c_nonce`` values are stored; the tx_code's hash is keyed with the pre-authorized
code, so a database dump alone does not let anyone try the million tx_codes. A
delivered credential is kept sealed with the city's storage key, like a certificate.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from issuer.models import Base

OFFERED = "offered"  # waiting for the wallet to exchange the pre-authorized code
TOKEN_ISSUED = "token_issued"  # code exchanged: the access token may fetch one credential
REDEEMED = "redeemed"  # the credential was delivered
BLOCKED = "blocked"  # too many wrong tx_codes


class Offer(Base):
    __tablename__ = "credential_offers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    tx_code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    access_token_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    token_expires_at: Mapped[float | None] = mapped_column(Float)
    holder_key_id: Mapped[str | None] = mapped_column(String(64))
    redeemed_at: Mapped[float | None] = mapped_column(Float)


class UsedNonce(Base):
    """A ``c_nonce`` a proof consumed: nonces are stateless (MAC-protected, so the
    unauthenticated nonce endpoint writes nothing) and this table makes each one work
    once. Rows past their expiry are pruned as new ones arrive."""

    __tablename__ = "oid4vci_used_nonces"

    nonce_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class DeliveredCredential(Base):
    __tablename__ = "delivered_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("credential_offers.id"), unique=True)
    leaf: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    holder_kid: Mapped[str] = mapped_column(String(64))
    delivered_at: Mapped[float] = mapped_column(Float)
