"""The pages: ``GET /`` (scan, upload, paste), ``POST /verify`` (the result), and a
request to a phone's wallet (``POST /request`` … ``GET /request/<id>/result``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask.wrappers import Response

import verifier.dcql as dcql
import verifier.oid4vp_web as oid4vp_web
from credentials.errors import CodedError

from . import display, requests, service
from .http import decoder, lang, upload_part
from .inputs import InputError

bp = Blueprint("web", __name__)


@bp.get("/")
def scan() -> str:
    return render_template("verifier/scan.html")


def _submission() -> service.Submission:
    """Return the uploaded credential file (its QR code's text, for an image or a PDF)
    or the pasted text, with the contract PDF when one was chosen. Raises
    :class:`InputError` when nothing usable was given."""
    upload = request.files.get("file")
    document = request.files.get("document")
    config = current_app.config
    return service.submission(
        file=upload_part("file") if upload is not None and upload.filename else None,
        pasted=request.form.get("presentation", ""),
        document=upload_part("document") if document is not None and document.filename else None,
        max_document_bytes=config["DOCUMENT_MAX_BYTES"],
        max_pages=config["DOCUMENT_MAX_PAGES"],
        decoder=decoder(),
    )


@bp.post("/verify")
def verify() -> str:
    sub = _submission()
    result = service.verify_submission(
        current_app.config["VERIFIER"],
        sub,
        now=current_app.config["CLOCK"](),
        fetch_link=current_app.config["LINK_FETCHER"],
    )
    page = display.view(
        result.to_json(), lang(), explorer_tx_url=current_app.config["EXPLORER_TX_URL"]
    )
    return render_template(
        "verifier/result.html", r=page, text=sub.text.strip(), with_document=bool(sub.document)
    )


# ------------------------------------------------------------------ requests to a wallet
# The company's screen asks a phone for a presentation over OpenID4VP 1.0 (the pool in
# verifier/requests.py, the protocol in verifier/oid4vp_web.py): the page shows the
# request QR code and link and polls until the wallet's answer has arrived.


def _requests() -> requests.Store:
    store: requests.Store = current_app.extensions["shomei_requests"]
    return store


def _now() -> float:
    return float(current_app.config["CLOCK"]())


def _json(doc: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(doc)
    response.status_code = status
    return response


def _refused(e: CodedError) -> Response:
    """The refusal as the JSON error document for a client that asks for JSON, else as
    the error page; with ``Retry-After`` when waiting helps (429, 503)."""
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == (
        "application/json"
    ):
        response = _json(e.to_json(), e.status)
    else:
        message = e.en if lang() == "en" else e.ja
        response = Response(render_template("verifier/error.html", message=message))
        response.status_code = e.status
    retry_after = getattr(e, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.post("/request")
def new_request() -> ResponseReturnValue:
    base = _base_url()
    form = request.form
    try:
        paths = dcql.parse_paths(form.getlist("claims"), form.get("preset") or None)
        # The top-level claims asked for, kept with the request (the pool's record).
        claims = requests.parse_claims(list(dict.fromkeys(p[0] for p in paths)))
        params = oid4vp_web.new_params(
            base_url=base,
            paths=paths,
            mode=form.get("response_mode") or current_app.config["OID4VP_RESPONSE_MODE"],
            signed=form.get("signed") != "0",
        )
        req = _requests().create(
            client_id=base,
            claims=claims,
            address=request.remote_addr or "",
            now=_now(),
            oid4vp=params.to_json(),
        )
    except (requests.RequestError, dcql.RequestedClaimsError) as e:
        return _refused(e)
    if lang() == "en":
        target = url_for("web.request_page", rid=req.id, lang="en")
    else:
        target = url_for("web.request_page", rid=req.id)
    return redirect(target, code=303)


def _base_url() -> str:
    return str(current_app.config.get("VERIFIER_URL") or request.host_url).rstrip("/")


@bp.get("/request/<rid>")
def request_page(rid: str) -> ResponseReturnValue:
    try:
        req = _requests().get(rid, now=_now())
    except requests.RequestError as e:
        raise InputError(e.code, e.ja, e.en, status=e.status) from None
    if req.result is not None:  # answered: a reload shows the verdict
        return _result_page(req)
    view = oid4vp_web.page(req, base_url=_base_url(), origin=_base_url(), lang=lang())
    return render_template("verifier/request.html", req=req, vp=view)


@bp.get("/request/<rid>/status")
def request_status(rid: str) -> Response:
    try:
        req = _requests().get(rid, now=_now())
    except requests.RequestError as e:
        if e is requests.EXPIRED:
            return _json({"state": "expired"})
        return _json(e.to_json(), e.status)
    return _json({"state": req.state()})


@bp.get("/request/<rid>/result")
def request_result(rid: str) -> str:
    try:
        req = _requests().get(rid, now=_now())
    except requests.RequestError as e:
        raise InputError(e.code, e.ja, e.en, status=e.status) from None
    if req.result is None:
        raise InputError(
            requests.UNKNOWN.code, "まだ回答がありません", "not answered yet", status=404
        )
    return _result_page(req)


def _result_page(req: requests.PendingRequest) -> str:
    """The verdict of an answered request (a refusal says so); shown until it expires."""
    assert req.result is not None
    if req.result.get("verdict") == "refused":
        return render_template("verifier/refused.html", result=req.result)
    page = display.view(req.result, lang(), explorer_tx_url=current_app.config["EXPLORER_TX_URL"])
    return render_template("verifier/result.html", r=page, text=req.presentation or "")
