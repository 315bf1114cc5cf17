"""Server-side sessions: who a browser's cookie signs in, and until when.

The cookie carries a random token (``start`` makes a new one at every sign-in); the
database keeps its SHA-256 with the user, the times and whether it ended. ``resume``
answers the token's user only while the session is open: not ended (sign-out, a password
change, a deactivation), not past its absolute lifetime, not idle too long. So a cookie
copied before sign-out is worth nothing after it. Time is a parameter (``now``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from issuer.accounts.models import User, UserSession

#: A token is 32 random bytes, base64url: 43 characters. Anything longer is not one.
_MAX_TOKEN = 64


@dataclass(frozen=True, kw_only=True)
class SessionPolicy:
    lifetime: float = 8 * 3600.0  # absolute: a counter shift
    idle: float = 30 * 60.0  # no request for this long ends the session
    touch_every: float = 60.0  # ``last_seen_at`` is written at most this often


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(session: Session, user: User, *, now: float, policy: SessionPolicy) -> str:
    """A new session for ``user`` (committed); returns its token for the cookie.
    Sessions that ended or lapsed are deleted on the way."""
    session.execute(
        delete(UserSession).where(
            or_(
                UserSession.ended_at.is_not(None),
                UserSession.expires_at <= now,
                UserSession.last_seen_at <= now - policy.idle,
            )
        )
    )
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            token_hash=_digest(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + policy.lifetime,
        )
    )
    session.commit()
    return token


def resume(session: Session, token: object, *, now: float, policy: SessionPolicy) -> User | None:
    """The active user whose open session ``token`` names, else None."""
    if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN:
        return None
    row = session.scalar(select(UserSession).where(UserSession.token_hash == _digest(token)))
    if (
        row is None
        or row.ended_at is not None
        or now >= row.expires_at
        or now - row.last_seen_at >= policy.idle
    ):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen_at >= policy.touch_every:
        row.last_seen_at = now
    session.commit()  # also ends the read: SQLite then lets this request write
    return user


def end(session: Session, token: object, *, now: float) -> None:
    """End the session ``token`` names, if any (committed)."""
    if isinstance(token, str) and 0 < len(token) <= _MAX_TOKEN:
        session.execute(
            update(UserSession)
            .where(UserSession.token_hash == _digest(token), UserSession.ended_at.is_(None))
            .values(ended_at=now)
        )
    session.commit()


def end_all(session: Session, user_id: int, *, now: float) -> None:
    """End every open session of the user (not committed: part of the caller's change)."""
    session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def open_sessions(session: Session, user_id: int, *, now: float) -> int:
    """How many sessions of the user are neither ended nor past their lifetime."""
    rows = session.scalars(
        select(UserSession.id).where(
            UserSession.user_id == user_id,
            UserSession.ended_at.is_(None),
            UserSession.expires_at > now,
        )
    )
    return len(list(rows))
