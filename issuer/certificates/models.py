"""The certificates the city issued, and the status lists that say whether they stand.

A certificate's credential (the SD-JWT VC with every disclosure, and the claims it was
issued from) is kept sealed with the issuer's storage key (``issuer.keys.City.seal``):
the rows themselves hold no resident's data in the clear. ``leaf`` is the credential's
Merkle leaf, the link to its row in ``anchor_leaves``.

A status list stores its entries as the raw bytes of a
``credentials.status_list.StatusList``; revocation and index allocation lock its row.
"""

from __future__ import annotations

from sqlalchemy import (
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

VALID = "valid"
REVOKED = "revoked"


class StatusListRow(Base):
    __tablename__ = "status_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bits: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[float] = mapped_column(Float)


class Certificate(Base):
    __tablename__ = "certificates"
    __table_args__ = (UniqueConstraint("status_list_id", "status_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    doc_type: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    issued_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[float] = mapped_column(Float, index=True)
    expires_at: Mapped[float] = mapped_column(Float)
    status_list_id: Mapped[int] = mapped_column(ForeignKey("status_lists.id"))
    status_index: Mapped[int] = mapped_column(Integer)
    leaf: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    revoked_at: Mapped[float | None] = mapped_column(Float)
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
