"""Clerk accounts: sign-in with throttling, and the supervisor's user management.

Every function takes the database session and plain values, commits its own work, and
raises an ``AccountError`` (or ``SignInFailed`` / ``Throttled``) with a Japanese and an
English message; nothing here knows about HTTP. Time is a parameter (``now``).
"""

from __future__ import annotations

import contextlib
import re

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import issuer.accounts.passwords as passwords
import issuer.accounts.sessions as sessions
import issuer.accounts.throttle as throttle
from credentials.errors import ShomeiError
from issuer.accounts.models import ROLES, User
from issuer.accounts.throttle import Throttled as Throttled
from issuer.accounts.throttle import ThrottlePolicy as ThrottlePolicy

DEFAULT_POLICY = ThrottlePolicy()
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


class AccountError(ShomeiError):
    """A user-management request cannot be carried out (bad input, unknown user...)."""


class SignInFailed(ShomeiError):
    """Wrong username or password, or a deactivated account (deliberately one message)."""

    def __init__(self) -> None:
        super().__init__("ユーザー名またはパスワードが違います", "wrong username or password")


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
    policy: ThrottlePolicy = DEFAULT_POLICY,
) -> User:
    """The active user with this username and password.

    The attempt is counted against the username and the address first (atomically,
    see ``throttle``): Throttled, before anything is checked, once either has
    ``policy.max_failures`` attempts in its window. A wrong password, an unknown or
    deactivated user is SignInFailed, the attempt staying counted; a success gives
    the address its attempt back and clears the username's count, and replaces a hash
    made with outdated parameters. Busy (nothing counted) when the hasher had no turn."""
    username = normalize_username(username)
    # A name that cannot be an account is counted against the address only (and never
    # reaches the database: PostgreSQL refuses a NUL in text).
    well_formed = USERNAME.fullmatch(username) is not None
    keys = [throttle.address_key(address[:64])]
    if well_formed:
        keys.insert(0, throttle.account_key(username))
    throttle.reserve(session, keys, now=now, policy=policy)
    try:
        user = None
        if well_formed:
            user = session.scalar(select(User).where(User.username == username))
        stored = user.password_hash if user is not None else _dummy_hash(hasher)
        # The hash is checked even for unknown users: response time does not reveal them.
        ok = passwords.check(hasher, stored, password)
    except passwords.Busy:
        session.rollback()
        throttle.release(session, keys)  # never checked: not a failure
        raise
    if user is None or not ok or not user.active:
        throttle.purge(session, now=now, policy=policy)
        session.commit()
        raise SignInFailed()
    if hasher.check_needs_rehash(user.password_hash):
        with contextlib.suppress(passwords.Busy):  # then at a later sign-in
            user.password_hash = hasher.hash(password)
    throttle.clear(session, keys[0])
    session.commit()
    throttle.release(session, keys[1:])
    return user


_dummies: dict[tuple[int, int, int], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash with ``hasher``'s parameters, to check unknown users' passwords against."""
    params = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if params not in _dummies:
        _dummies[params] = hasher.hash("no such user")
    return _dummies[params]


def failures(session: Session, *, username: str | None = None, address: str | None = None) -> int:
    """How many sign-in attempts count against ``username`` or ``address`` (failures,
    and attempts still being checked)."""
    total = 0
    if username is not None:
        total += throttle.count(session, throttle.account_key(normalize_username(username)))
    if address is not None:
        total += throttle.count(session, throttle.address_key(address))
    return total


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


def set_active(session: Session, user_id: int, active: bool, *, acting: User, now: float) -> User:
    """(De)activate a user; deactivation ends all of their sessions. Raises
    AccountError for an unknown user or when a supervisor would deactivate their own
    account (nobody could then undo it)."""
    user = get_user(session, user_id)
    if user.id == acting.id and not active:
        raise AccountError(
            "自分自身のアカウントは無効にできません", "you cannot deactivate your own account"
        )
    user.active = active
    if not active:
        sessions.end_all(session, user.id, now=now)
    session.commit()
    return user


def reset_password(
    session: Session, hasher: PasswordHasher, user_id: int, password: str, *, now: float
) -> User:
    """Give a user a new password and end all of their sessions (the caller's too,
    when it is their own). Raises AccountError for an unknown user or a password too
    short or too long."""
    user = get_user(session, user_id)
    _check_password(password)
    user.password_hash = hasher.hash(password)
    sessions.end_all(session, user.id, now=now)
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
