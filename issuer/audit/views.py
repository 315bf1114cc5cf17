"""The supervisor's audit page: the latest entries, the chain's verification, and the
heads anchored on chain."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue

import issuer.audit.service as audit
from issuer.accounts.models import SUPERVISOR
from issuer.db import get_session
from issuer.web.auth import role_required
from issuer.web.routing import bounded_int

bp = Blueprint("audit", __name__, url_prefix="/audit")
PER_PAGE = 50


@bp.get("/")
@role_required(SUPERVISOR)
def index() -> ResponseReturnValue:
    page = bounded_int(request.args.get("page", "1"), minimum=1)
    session = get_session()
    report = audit.verify_chain(session)
    if page is None or page > max(1, -(-report.entries // PER_PAGE)):
        abort(404)  # not a page of this log (also: an offset the database cannot hold)
    entries = audit.latest(session, page=page, per_page=PER_PAGE)
    return render_template(
        "issuer/audit/index.html",
        report=report,
        entries=entries,
        page=page,
        has_more=report.entries > page * PER_PAGE,
        labels=audit.LABELS,
    )
