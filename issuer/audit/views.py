"""The supervisor's audit page: the latest entries, the chain's verification, and the
heads anchored on chain."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

import issuer.audit.service as audit
from issuer.accounts.models import SUPERVISOR
from issuer.db import get_session
from issuer.web.auth import role_required

bp = Blueprint("audit", __name__, url_prefix="/audit")
PER_PAGE = 50


@bp.get("/")
@role_required(SUPERVISOR)
def index() -> ResponseReturnValue:
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    session = get_session()
    report = audit.verify_chain(session)
    entries = audit.latest(session, page=page, per_page=PER_PAGE)
    return render_template(
        "issuer/audit/index.html",
        report=report,
        entries=entries,
        page=page,
        has_more=report.entries > page * PER_PAGE,
        labels=audit.LABELS,
    )
