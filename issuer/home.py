"""The clerk's start page: what to issue, and the certificates issued most recently."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from . import certificates
from .auth import login_required
from .db import get_session

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    # Type, state and time only: opening a certificate (and its holder's name) is a
    # view of personal data, recorded in the audit log.
    return render_template("issuer/home.html", recent=certificates.recent(get_session()))
