"""Clerk accounts and failed sign-ins."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from issuer.models import Base

CLERK = "clerk"  # issues certificates
SUPERVISOR = "supervisor"  # also revokes, manages clerks, rotates keys
ROLES = (CLERK, SUPERVISOR)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)

    @property
    def is_supervisor(self) -> bool:
        return self.role == SUPERVISOR


class LoginFailure(Base):
    """One failed sign-in. Throttling counts these per username and per client address
    over a sliding window; rows older than the window are pruned as new ones arrive."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_at", "username", "at"),
        Index("ix_login_failures_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float, index=True)
