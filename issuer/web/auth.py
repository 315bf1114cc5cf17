"""Sign in and sign out; who is signed in (``g.user``); ``login_required`` and
``role_required``."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

import issuer.accounts.sessions as sessions
from issuer.accounts import service as accounts
from issuer.audit import service as audit
from issuer.db import get_session
from issuer.web.helpers import (
    abort_with,
    client_address,
    hasher,
    session_policy,
    throttle_policy,
)
from issuer.web.i18n import t

bp = Blueprint("auth", __name__, url_prefix="/auth")

F = TypeVar("F", bound=Callable[..., Any])
#: The cookie's key for the session token (the cookie holds no user id).
_SESSION_TOKEN = "sid"


@bp.before_app_request
def load_signed_in_user() -> None:
    """``g.user``: the user the cookie's session token names while that session is open
    on the server (see ``issuer.accounts.sessions``), else None. A cookie whose session
    has ended is emptied (the language kept)."""
    g.user = None
    token = session.get(_SESSION_TOKEN)
    if token is None:
        return
    g.user = sessions.resume(get_session(), token, now=time.time(), policy=session_policy())
    if g.user is None:
        _forget_cookie()


def login_required(view: F) -> F:
    """Redirect to the sign-in page unless someone is signed in."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("auth.login", next=target))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def role_required(role: str) -> Callable[[F], F]:
    """``login_required``, then 403 unless the user has ``role``."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.user.role != role:
                abort_with(
                    403,
                    "この操作には監督者（スーパーバイザー）の権限が必要です",
                    "this action needs a supervisor account",
                )
            return view(*args, **kwargs)

        return login_required(cast(F, wrapped))

    return decorate


@bp.route("/login", methods=("GET", "POST"))
def login() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("issuer/web/login.html", next=_safe_next())
    try:
        user = accounts.authenticate(
            get_session(),
            hasher(),
            username=request.form.get("username", ""),
            password=request.form.get("password", ""),
            address=client_address(),
            now=time.time(),
            policy=throttle_policy(),
        )
    except accounts.Throttled as e:
        _record_failed_sign_in("throttled")
        flash(t(e.ja, e.en), "error")
        page = render_template("issuer/web/login.html", next=_safe_next())
        return page, 429, {"Retry-After": str(e.retry_after)}
    except accounts.SignInFailed as e:
        _record_failed_sign_in("wrong_password")
        flash(t(e.ja, e.en), "error")
        return render_template("issuer/web/login.html", next=_safe_next()), 401
    audit.record_committed(
        get_session(),
        actor=user.username,
        action=audit.SIGN_IN,
        target=f"user:{user.username}",
        now=time.time(),
    )
    # A new session, token and CSRF token: nothing from before the sign-in survives it.
    sessions.end(get_session(), session.get(_SESSION_TOKEN), now=time.time())
    _forget_cookie()
    token = sessions.start(get_session(), user, now=time.time(), policy=session_policy())
    session[_SESSION_TOKEN] = token
    session.permanent = True
    return redirect(_safe_next() or url_for("home.index"))


@bp.route("/logout", methods=("POST",))
def logout() -> ResponseReturnValue:
    if g.user is not None:
        audit.record_committed(
            get_session(), actor=g.user.username, action=audit.SIGN_OUT, now=time.time()
        )
    sessions.end(get_session(), session.get(_SESSION_TOKEN), now=time.time())
    _forget_cookie()
    flash(t("サインアウトしました", "Signed out"), "info")
    return redirect(url_for("auth.login"))


def _record_failed_sign_in(reason: str) -> None:
    """The username typed (never the password), as the target: nobody is signed in.
    Control characters are dropped (PostgreSQL refuses a NUL in text)."""
    typed = accounts.normalize_username(request.form.get("username", ""))
    username = "".join(c for c in typed if c.isprintable())
    audit.record_committed(
        get_session(),
        actor=None,
        action=audit.SIGN_IN_FAILED,
        target=f"user:{username}",
        details={"reason": reason},
        now=time.time(),
    )


def _forget_cookie() -> None:
    """Empty the cookie's session, keeping only the chosen language."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def _safe_next() -> str | None:
    return local_path(request.values.get("next"))


#: Longer than any page of this site; a longer ``next`` is not one of ours.
MAX_NEXT = 2000


def local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site (one leading ``/``, nothing a browser
    could read as another host), else None: the page to return to after signing in.

    Browsers drop tabs and newlines inside a URL and read ``\\`` as ``/``, so
    ``/<TAB>/evil.example`` and ``/\\evil.example`` both mean ``//evil.example``: any
    control character or backslash is refused outright, as is anything ``urlsplit``
    finds a scheme or host in. CR/LF could not go into a Location header anyway."""
    if not target or len(target) > MAX_NEXT or not target.startswith("/"):
        return None
    if "\\" in target or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in target):
        return None
    stripped = target.strip()
    if stripped != target or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    return target
