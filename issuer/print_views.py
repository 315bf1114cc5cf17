"""The print view: ``GET /certificates/<id>/print.pdf``, the certificate as an A4 PDF
with its QR code, for any signed-in clerk. A revoked or expired certificate is refused
(409)."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Blueprint, abort, current_app, g, make_response
from flask.typing import ResponseReturnValue

from . import certificates, printing
from .auth import login_required
from .db import get_session
from .issue_views import city
from .web import abort_with

bp = Blueprint("printing", __name__, url_prefix="/certificates")


@bp.get("/<public_id>/print.pdf")
@login_required
def pdf(public_id: str) -> ResponseReturnValue:
    font = current_app.config.get("PRINT_FONT")
    try:
        printed = printing.print_certificate(
            get_session(),
            public_id,
            city=city(),
            clerk=g.user,
            now=time.time(),
            font=Path(font) if font else None,
        )
    except certificates.NotFound:
        abort(404)
    except printing.NotPrintable as e:
        abort_with(409, e.ja, e.en)
    except printing.PrintError as e:
        abort_with(503, e.ja, e.en)
    response = make_response(printed.pdf)
    response.content_type = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{printed.filename}"'
    response.headers["Cache-Control"] = "no-store"
    # Browsers' PDF viewers count as plugins: the pages' "object-src 'none'" would
    # block this document from showing.
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return response
