"""The supervisor's page for clerk accounts: list, add, (de)activate, reset password."""

from __future__ import annotations

import time

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

import issuer.accounts.service as accounts
from issuer.accounts.models import ROLES, SUPERVISOR, User
from issuer.audit import service as audit
from issuer.db import get_session
from issuer.web.auth import role_required
from issuer.web.helpers import hasher
from issuer.web.i18n import t

bp = Blueprint("users", __name__, url_prefix="/users")


@bp.get("/")
@role_required(SUPERVISOR)
def index() -> ResponseReturnValue:
    return render_template(
        "issuer/accounts/users.html", users=accounts.list_users(get_session()), roles=ROLES
    )


@bp.post("/")
@role_required(SUPERVISOR)
def add() -> ResponseReturnValue:
    form = request.form
    try:
        _confirmed(form.get("password", ""), form.get("password_confirm", ""))
        user = accounts.create_user(
            get_session(),
            hasher(),
            username=form.get("username", ""),
            display_name=form.get("display_name", ""),
            role=form.get("role", ""),
            password=form.get("password", ""),
            now=time.time(),
        )
    except accounts.AccountError as e:
        flash(t(e.ja, e.en), "error")
        users = accounts.list_users(get_session())
        page = render_template("issuer/accounts/users.html", users=users, roles=ROLES, form=form)
        return page, 400
    _audit(audit.USER_CREATED, user, {"role": user.role})
    flash(t(f"{user.display_name}さんを追加しました", f"Added {user.display_name}"), "info")
    return redirect(url_for("users.index"))


@bp.post("/<int:user_id>/deactivate")
@role_required(SUPERVISOR)
def deactivate(user_id: int) -> ResponseReturnValue:
    return _set_active(user_id, False)


@bp.post("/<int:user_id>/activate")
@role_required(SUPERVISOR)
def activate(user_id: int) -> ResponseReturnValue:
    return _set_active(user_id, True)


def _set_active(user_id: int, active: bool) -> ResponseReturnValue:
    try:
        user = accounts.set_active(get_session(), user_id, active, acting=g.user, now=time.time())
    except accounts.AccountError as e:
        flash(t(e.ja, e.en), "error")
        return redirect(url_for("users.index"))
    _audit(audit.USER_ACTIVATED if active else audit.USER_DEACTIVATED, user)
    if active:
        flash(t(f"{user.display_name}さんを有効にしました", f"Activated {user.display_name}"))
    else:
        flash(t(f"{user.display_name}さんを無効にしました", f"Deactivated {user.display_name}"))
    return redirect(url_for("users.index"))


@bp.route("/<int:user_id>/password", methods=("GET", "POST"))
@role_required(SUPERVISOR)
def password(user_id: int) -> ResponseReturnValue:
    session = get_session()
    user = session.get(User, user_id)
    if user is None:
        abort(404)
    if request.method == "GET":
        return render_template("issuer/accounts/password.html", user=user)
    try:
        _confirmed(request.form.get("password", ""), request.form.get("password_confirm", ""))
        accounts.reset_password(
            session, hasher(), user_id, request.form.get("password", ""), now=time.time()
        )
    except accounts.AccountError as e:
        flash(t(e.ja, e.en), "error")
        return render_template("issuer/accounts/password.html", user=user), 400
    _audit(audit.PASSWORD_RESET, user)
    flash(
        t(
            f"{user.display_name}さんのパスワードを再設定しました",
            f"Reset the password of {user.display_name}",
        )
    )
    return redirect(url_for("users.index"))


def _audit(action: str, user: User, details: dict[str, str] | None = None) -> None:
    """The supervisor's change to ``user``, recorded right after it was committed."""
    audit.record_committed(
        get_session(),
        actor=g.user.username,
        action=action,
        target=f"user:{user.username}",
        details=details,
        now=time.time(),
    )


def _confirmed(password: str, confirm: str) -> None:
    if password != confirm:
        raise accounts.AccountError(
            "確認用のパスワードが一致しません", "the passwords do not match"
        )
