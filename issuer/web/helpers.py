"""Small helpers shared by the issuer's blueprints: bilingual HTTP errors, the
client's address, the app's password hasher."""

from __future__ import annotations

from typing import NoReturn

from argon2 import PasswordHasher
from flask import current_app, request
from werkzeug.exceptions import HTTPException, default_exceptions

from issuer.accounts.sessions import SessionPolicy
from issuer.accounts.throttle import ThrottlePolicy


def abort_with(code: int, ja: str, en: str) -> NoReturn:
    """Raise the HTTP error ``code`` carrying a message for people in both languages;
    the error page shows it."""
    error: HTTPException = default_exceptions[code](description=en)
    error.ja = ja  # type: ignore[attr-defined]
    error.en = en  # type: ignore[attr-defined]
    raise error


def client_address() -> str:
    """The address requests come from (the proxy's, unless a ProxyFix is configured)."""
    return request.remote_addr or "unknown"


def hasher() -> PasswordHasher:
    """The app's argon2id hasher."""
    h: PasswordHasher = current_app.extensions["shomei_hasher"]
    return h


def throttle_policy() -> ThrottlePolicy:
    return ThrottlePolicy(
        max_failures=int(current_app.config["LOGIN_MAX_FAILURES"]),
        window=float(current_app.config["LOGIN_WINDOW_SECONDS"]),
    )


def session_policy() -> SessionPolicy:
    """Sessions last ``PERMANENT_SESSION_LIFETIME`` at most, ``SESSION_IDLE_SECONDS``
    without a request."""
    return SessionPolicy(
        lifetime=current_app.permanent_session_lifetime.total_seconds(),
        idle=float(current_app.config["SESSION_IDLE_SECONDS"]),
    )
