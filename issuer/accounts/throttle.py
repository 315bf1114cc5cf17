"""The sign-in limit: attempts counted per account and per client address, atomically.

An attempt takes its place in every counter *before* the password is checked, by one
conditional UPDATE per counter (``count < limit``, or a window that has ended), and the
database row decides: two attempts at the same moment can never both take the last
place, on SQLite (one writer at a time) or PostgreSQL (the second UPDATE waits for the
row and re-reads it). A counter's window starts at its first attempt and lasts
``policy.window`` seconds. Each step commits at once so the row is not held while the
slow hash runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from credentials.errors import ShomeiError
from issuer.accounts.models import SignInCounter


class Throttled(ShomeiError):
    """Too many sign-in attempts for this username or from this address."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        minutes = max(1, -(-retry_after // 60))
        super().__init__(
            f"サインインの失敗が続いたため、一時的に受け付けを停止しています。"
            f"約{minutes}分後にもう一度お試しください",
            f"too many failed sign-ins: try again in about {minutes} minute(s)",
        )


@dataclass(frozen=True, kw_only=True)
class ThrottlePolicy:
    max_failures: int = 5
    window: float = 15 * 60.0


def account_key(username: str) -> str:
    return f"user:{username}"


def address_key(address: str) -> str:
    return f"addr:{address}"


def reserve(session: Session, keys: Sequence[str], *, now: float, policy: ThrottlePolicy) -> None:
    """Count one attempt against each of ``keys`` (committed). Raises Throttled, with
    nothing counted, when any of them is at its limit."""
    session.commit()  # a fresh transaction: SQLite cannot upgrade an old read to a write
    taken: list[str] = []
    for key in keys:
        window_ends = _take(session, key, now, policy)
        if window_ends is not None:
            release(session, taken)
            raise Throttled(retry_after=max(1, int(window_ends - now) + 1))
        taken.append(key)


def release(session: Session, keys: Sequence[str]) -> None:
    """Give back one counted attempt of each of ``keys`` (committed)."""
    if keys:
        session.execute(
            update(SignInCounter)
            .where(SignInCounter.key.in_(keys), SignInCounter.count > 0)
            .values(count=SignInCounter.count - 1)
        )
    session.commit()


def clear(session: Session, key: str) -> None:
    """Forget ``key``'s attempts (not committed: part of the caller's transaction)."""
    session.execute(delete(SignInCounter).where(SignInCounter.key == key))


def purge(session: Session, *, now: float, policy: ThrottlePolicy) -> None:
    """Delete counters whose window ended a whole window ago (not committed)."""
    session.execute(delete(SignInCounter).where(SignInCounter.window_ends_at < now - policy.window))


def count(session: Session, key: str) -> int:
    """The attempts counted against ``key`` (0 when it has no counter)."""
    return int(session.scalar(select(SignInCounter.count).where(SignInCounter.key == key)) or 0)


def _take(session: Session, key: str, now: float, policy: ThrottlePolicy) -> float | None:
    """Take a place in ``key``'s counter and commit; or the end of its full window."""
    ended = SignInCounter.window_ends_at <= now
    for _ in range(3):
        session.execute(_insert_missing(session, key, now + policy.window))
        taken = session.execute(
            update(SignInCounter)
            .where(SignInCounter.key == key, ended | (SignInCounter.count < policy.max_failures))
            .values(
                count=case((ended, 1), else_=SignInCounter.count + 1),
                window_ends_at=case(
                    (ended, now + policy.window), else_=SignInCounter.window_ends_at
                ),
            )
        )
        session.commit()
        if cast("CursorResult[Any]", taken).rowcount == 1:
            return None
        window_ends = session.scalar(
            select(SignInCounter.window_ends_at).where(SignInCounter.key == key)
        )
        session.commit()
        if window_ends is not None:
            return float(window_ends)
        # Purged between the two statements by another attempt: once more.
    return now + policy.window


def _insert_missing(
    session: Session, key: str, window_ends_at: float
) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT DO NOTHING: an empty counter unless one exists."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(SignInCounter)
        .values(key=key, count=0, window_ends_at=window_ends_at)
        .on_conflict_do_nothing(index_elements=["key"])
    )
