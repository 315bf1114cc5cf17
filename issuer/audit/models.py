"""The audit log's tables: the hash-chained entries, the chain's head, anchored heads.

``audit_head`` is a single row (id 1) naming the newest entry; every append locks and
updates it, which serialises writers on both SQLite and PostgreSQL and lets
``verify_chain`` notice the newest entries being deleted. ``audit_anchors`` records
each head that went into an anchoring batch, with the leaf it became.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from issuer.models import Base

HEAD_ROW = 1


class AuditEntry(Base):
    __tablename__ = "audit_entries"

    # Assigned by ``issuer.audit.record`` as the previous id + 1 (never a sequence, which
    # leaves gaps on rollback): a gap in the ids is a deleted entry.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entry_id: Mapped[int] = mapped_column(Integer)  # 0: the log is empty
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditAnchor(Base):
    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(Integer, index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    leaf: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    queued_at: Mapped[float] = mapped_column(Float)
