"""The clerk's start page (later: the list of issued certificates)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from .auth import login_required

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    return render_template("issuer/home.html")
