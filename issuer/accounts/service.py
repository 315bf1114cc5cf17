"""Clerk accounts: sign-in with throttling, and the supervisor's user management.

Every function takes the database session and plain values, commits its own work, and
raises an ``AccountError`` (or ``SignInFailed`` / ``Throttled``) with a Japanese and an
English message; nothing here knows about HTTP. Time is a parameter (``now``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import issuer.accounts.passwords as passwords
from credentials.errors import ShomeiError
from issuer.accounts.models import ROLES, LoginFailure, User

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


class AccountError(ShomeiError):
    """A user-management request cannot be carried out (bad input, unknown user...)."""


class SignInFailed(ShomeiError):
    """Wrong username or password, or a deactivated account (deliberately one message)."""

    def __init__(self) -> None:
        super().__init__("ユーザー名またはパスワードが違います", "wrong username or password")


class Throttled(ShomeiError):
    """Too many failed sign-ins for this username or from this address."""

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


def normalize_username(username: str) -> str:
    return username.strip().lower()[:64]


# ------------------------------------------------------------------ sign-in
def authenticate(
    session: Session,
    hasher: PasswordHasher,
    *,
    username: str,
    password: str,
    address: str,
    now: float,
    policy: ThrottlePolicy = ThrottlePolicy(),
) -> User:
    """The active user with this username and password.

    Raises Throttled before checking anything once ``policy.max_failures`` failures for
    this username or from this address fall within ``policy.window`` seconds, and
    SignInFailed (recording the failure) when the password is wrong, the user unknown
    or deactivated. A hash made with outdated parameters is replaced."""
    username = normalize_username(username)
    address = address[:64]
    _check_throttle(session, username, address, now, policy)
    user = session.scalar(select(User).where(User.username == username))
    stored = user.password_hash if user is not None else _dummy_hash(hasher)
    # The hash is checked even for unknown users: response time does not reveal them.
    ok = passwords.check(hasher, stored, password)
    if user is None or not ok or not user.active:
        session.execute(delete(LoginFailure).where(LoginFailure.at < now - policy.window))
        session.add(LoginFailure(username=username, address=address, at=now))
        session.commit()
        raise SignInFailed()
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    session.execute(delete(LoginFailure).where(LoginFailure.username == username))
    session.commit()
    return user


def _check_throttle(
    session: Session, username: str, address: str, now: float, policy: ThrottlePolicy
) -> None:
    since = now - policy.window
    for column, value in ((LoginFailure.username, username), (LoginFailure.address, address)):
        count, oldest = session.execute(
            select(func.count(), func.min(LoginFailure.at)).where(
                column == value, LoginFailure.at > since
            )
        ).one()
        if count >= policy.max_failures:
            raise Throttled(retry_after=max(1, int(oldest + policy.window - now) + 1))


@lru_cache(maxsize=8)
def _dummy_for(time_cost: int, memory_cost: int, parallelism: int) -> str:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
    return hasher.hash("no such user")


def _dummy_hash(hasher: PasswordHasher) -> str:
    return _dummy_for(hasher.time_cost, hasher.memory_cost, hasher.parallelism)


def failures(session: Session, *, username: str | None = None, address: str | None = None) -> int:
    """How many failed sign-ins are recorded for ``username`` or ``address``."""
    conditions = []
    if username is not None:
        conditions.append(LoginFailure.username == normalize_username(username))
    if address is not None:
        conditions.append(LoginFailure.address == address)
    query = select(func.count()).select_from(LoginFailure)
    if conditions:
        query = query.where(or_(*conditions))
    return int(session.scalar(query) or 0)


# ------------------------------------------------------------------ user management
def create_user(
    session: Session,
    hasher: PasswordHasher,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str,
    now: float,
) -> User:
    """A new active user. Raises AccountError for a malformed username or display
    name, an unknown role, a password too short or too long, or a taken username."""
    username = username.strip().lower()
    if not USERNAME.fullmatch(username):
        raise AccountError(
            "ユーザー名は半角の英小文字・数字・. _ - で2〜64文字です",
            "a username is 2-64 characters: a-z, 0-9, '.', '_', '-'",
        )
    display_name = _display_name(display_name)
    if role not in ROLES:
        raise AccountError(f"役割が不正です: {role}", f"unknown role {role!r}")
    _check_password(password)
    user = User(
        username=username,
        display_name=display_name,
        role=role,
        password_hash=hasher.hash(password),
        active=True,
        created_at=now,
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise AccountError(
            f"ユーザー名 {username} は既に使われています", f"username {username} is taken"
        ) from None
    return user


def list_users(session: Session) -> list[User]:
    """Every user, supervisors first, then by username."""
    return list(session.scalars(select(User).order_by(User.role.desc(), User.username)))


def get_user(session: Session, user_id: int) -> User:
    """The user with this id. Raises AccountError when there is none."""
    user = session.get(User, user_id)
    if user is None:
        raise AccountError("該当するユーザーがいません", "no such user")
    return user


def set_active(session: Session, user_id: int, active: bool, *, acting: User) -> User:
    """(De)activate a user. Raises AccountError for an unknown user or when a
    supervisor would deactivate their own account (nobody could then undo it)."""
    user = get_user(session, user_id)
    if user.id == acting.id and not active:
        raise AccountError(
            "自分自身のアカウントは無効にできません", "you cannot deactivate your own account"
        )
    user.active = active
    session.commit()
    return user


def reset_password(session: Session, hasher: PasswordHasher, user_id: int, password: str) -> User:
    """Give a user a new password. Raises AccountError for an unknown user or a
    password too short or too long."""
    user = get_user(session, user_id)
    _check_password(password)
    user.password_hash = hasher.hash(password)
    session.commit()
    return user


def _display_name(name: str) -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 100:
        raise AccountError("表示名は1〜100文字です", "a display name is 1-100 characters")
    return name


def _check_password(password: str) -> None:
    if len(password) < passwords.MIN_LENGTH:
        raise AccountError(
            f"パスワードは{passwords.MIN_LENGTH}文字以上にしてください",
            f"a password has at least {passwords.MIN_LENGTH} characters",
        )
    if len(password) > passwords.MAX_LENGTH:
        raise AccountError(
            f"パスワードは{passwords.MAX_LENGTH}文字以内にしてください",
            f"a password has at most {passwords.MAX_LENGTH} characters",
        )
