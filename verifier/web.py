"""The pages: ``GET /`` (scan, upload, paste) and ``POST /verify`` (the result)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from . import display, service
from .app import lang
from .service import InputError

bp = Blueprint("web", __name__)


@bp.get("/")
def scan() -> str:
    return render_template("verifier/scan.html")


def _submitted_text() -> str:
    """Return the uploaded file's text (its QR code's, for an image or PDF) or the
    pasted text. Raises :class:`InputError` when neither was given."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        return service.upload_text(upload.read())
    pasted = request.form.get("presentation", "").strip()
    if not pasted:
        raise InputError(
            "bad_request",
            "QRコードの画像・ファイルを選ぶか、内容を貼り付けてください",
            "choose a QR image or a file, or paste the contents",
        )
    return pasted


@bp.post("/verify")
def verify() -> str:
    text = _submitted_text()
    result = service.verify_text(
        current_app.config["VERIFIER"],
        text,
        now=current_app.config["CLOCK"](),
        fetch_link=current_app.config["LINK_FETCHER"],
    )
    page = display.view(
        result.to_json(), lang(), explorer_tx_url=current_app.config["EXPLORER_TX_URL"]
    )
    return render_template("verifier/result.html", r=page, text=text.strip())
