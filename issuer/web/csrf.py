"""CSRF protection for every form (written here: small, no extra dependency).

One random token per session, sent back in a hidden ``csrf_token`` field (or the
``X-CSRF-Token`` header) and compared in constant time on every POST, PUT, PATCH and
DELETE. A missing or wrong token is a 400 before the view runs, so nothing is written.
API endpoints that authenticate otherwise (OpenID4VCI bearer tokens) opt out with
``@exempt``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from flask import current_app, request, session

from issuer.web.helpers import abort_with

if TYPE_CHECKING:
    from flask import Flask

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
_SESSION_KEY = "csrf"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

F = TypeVar("F", bound=Callable[..., object])


def token() -> str:
    """This session's token (created on first use)."""
    value = session.get(_SESSION_KEY)
    if not isinstance(value, str):
        value = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = value
    return value


def exempt(view: F) -> F:
    """Mark a view that does not take browser forms (it must authenticate otherwise)."""
    view._csrf_exempt = True  # type: ignore[attr-defined]
    return view


def init_app(app: Flask) -> None:
    app.before_request(protect)
    app.jinja_env.globals["csrf_token"] = token


def protect() -> None:
    """Reject a state-changing request without this session's token (400)."""
    if request.method in _SAFE_METHODS or request.routing_exception is not None:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "_csrf_exempt", False):
        return
    expected = session.get(_SESSION_KEY)
    sent = request.form.get(FIELD) or request.headers.get(HEADER)
    if not sent:
        abort_with(
            400,
            "フォームの確認用トークンがありません。ページを開き直してからもう一度送信してください",
            "the form's CSRF token is missing: reload the page and submit again",
        )
    if not isinstance(expected, str) or not hmac.compare_digest(
        sent.encode("utf-8"), expected.encode("utf-8")
    ):
        abort_with(
            400,
            "フォームの確認用トークンが一致しません（ページの有効期限切れの可能性があります）。"
            "ページを開き直してからもう一度送信してください",
            "the form's CSRF token does not match (the page may have expired): "
            "reload the page and submit again",
        )
