"""Clerk accounts, their sign-in counters and their sessions."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String
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


class SignInCounter(Base):
    """Sign-in attempts counted against one account (``user:<username>``) or one client
    address (``addr:<address>``) in the window ending at ``window_ends_at``.

    An attempt is counted before its password is checked, by one conditional UPDATE
    (``count < limit``), so simultaneous attempts cannot all slip under the limit; a
    success takes its own attempt back and clears the account's count."""

    __tablename__ = "sign_in_counters"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    window_ends_at: Mapped[float] = mapped_column(Float, index=True)


class UserSession(Base):
    """One signed-in browser. The cookie carries a random token; only its SHA-256 is
    stored, so the table alone cannot be used to sign in. A session ends (``ended_at``)
    at sign-out, and with every other session of its user at a password change or a
    deactivation; it lapses after ``expires_at`` or when idle too long."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"), index=True)
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
