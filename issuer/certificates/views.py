"""The clerk's certificate pages: form -> preview -> issue, the certificate's page, and
the supervisor's revocation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

import issuer.certificates.forms as forms
import issuer.certificates.offer_views as offer_views
import issuer.certificates.printing as printing
import issuer.certificates.service as certificates
import issuer.oid4vci as oid4vci
from credentials import doctypes
from credentials.encoding import loads_bounded
from credentials.errors import ValidationError
from issuer.accounts.models import SUPERVISOR
from issuer.city import city
from issuer.db import get_session
from issuer.web.auth import login_required, role_required
from issuer.web.helpers import abort_with
from issuer.web.i18n import current_lang, datetime_filter, t

bp = Blueprint("certificates", __name__, url_prefix="/certificates")
home_bp = Blueprint("home", __name__)

DOC_TYPES = (certificates.JUMINHYO, certificates.PARTNERSHIP)


def _doc_type(name: str) -> doctypes.DocumentType:
    if name not in DOC_TYPES:
        abort(404)
    return doctypes.get(name)


def _form_page(
    doc_type: str, values: dict[str, str], errors: Any = None, options: Any = None
) -> str:
    return render_template(
        "issuer/certificates/form.html",
        doc_type=doc_type,
        dt=doctypes.get(doc_type),
        fields=forms.fields(doc_type),
        child_rows=forms.CHILD_ROWS,
        child_parts=forms.CHILD_PARTS,
        values=values,
        errors=errors or {},
        options=options or {},
    )


def _options() -> dict[str, bool]:
    return {
        "include_household": request.form.get("include_household") == "1",
        "include_domicile": request.form.get("include_domicile") == "1",
    }


@bp.get("/new/<doc_type>")
@login_required
def new(doc_type: str) -> ResponseReturnValue:
    _doc_type(doc_type)
    values = {"recognized_by": city().settings.municipality_code}
    return _form_page(doc_type, values if doc_type == certificates.PARTNERSHIP else {})


@bp.post("/new/<doc_type>")
@login_required
def preview(doc_type: str) -> ResponseReturnValue:
    dt = _doc_type(doc_type)
    options = _options()
    claims = forms.claims_from_form(doc_type, request.form)
    try:
        valid = certificates.validated(doc_type, claims, **options)
    except ValidationError as e:
        errors = forms.field_errors(e.errors)
        page = _form_page(doc_type, forms.form_values(doc_type, claims), errors, options)
        return page, 400
    return render_template(
        "issuer/certificates/preview.html",
        doc_type=doc_type,
        dt=dt,
        # What the certificate will say, computed claims included (年齢到達 as of today);
        # the form posts only what the clerk entered: issuance computes the rest again.
        claims=certificates.with_computed_claims(doc_type, valid, now=time.time()),
        claims_json=json.dumps(valid, ensure_ascii=False),
        date_fields={f.name for f in forms.fields(doc_type) if f.kind == "date"},
        options=options,
    )


@bp.post("/issue/<doc_type>")
@login_required
def issue(doc_type: str) -> ResponseReturnValue:
    _doc_type(doc_type)
    try:
        claims = loads_bounded(request.form.get("claims", ""))
    except ValueError:
        abort(400)
    if not isinstance(claims, dict):  # the preview page sends an object; nothing else
        abort(400)
    session, now = get_session(), time.time()
    try:
        if doc_type == certificates.JUMINHYO:
            issued = [
                certificates.issue_juminhyo(
                    session, claims, city=city(), clerk=g.user, now=now, **_options()
                )
            ]
        else:
            issued = certificates.issue_partnership(
                session, claims, city=city(), clerk=g.user, now=now
            )
    except ValidationError as e:
        errors = forms.field_errors(e.errors)
        page = _form_page(doc_type, forms.form_values(doc_type, claims), errors, _options())
        return page, 400
    flash(t("証明書を発行しました", "Certificate issued"), "info")
    if len(issued) > 1:
        flash(
            t(
                f"{len(issued)}通（パートナーそれぞれに1通）発行しました",
                f"Issued {len(issued)} certificates, one per partner",
            ),
            "info",
        )
    return redirect(url_for("certificates.show", public_id=issued[0].public_id))


@bp.get("/<public_id>")
@login_required
def show(public_id: str) -> ResponseReturnValue:
    return _certificate_page(public_id)


def _certificate_page(public_id: str, offer: offer_views.OfferView | None = None) -> str:
    session = get_session()
    try:
        opened = certificates.open_certificate(
            session, public_id, city=city(), viewer=g.user, now=time.time()
        )
    except certificates.NotFound:
        abort(404)
    cert = opened.certificate
    return render_template(
        "issuer/certificates/show.html",
        cert=cert,
        dt=doctypes.get(cert.doc_type),
        holder=certificates.holder_name(cert.doc_type, opened.claims),
        anchor=certificates.anchor_state(session, cert.leaf),
        lang=current_lang(),
        credential_offer=offer,
    )


@bp.post("/<public_id>/offer")
@login_required
def create_offer(public_id: str) -> ResponseReturnValue:
    ttl = float(current_app.config.get("OFFER_TTL_SECONDS", oid4vci.DEFAULT_OFFER_TTL))
    issuer = city()
    try:
        new = oid4vci.create_offer(
            get_session(), public_id, city=issuer, clerk=g.user, now=time.time(), ttl=ttl
        )
    except certificates.NotFound:
        abort(404)
    except oid4vci.OfferError as e:
        flash(t(e.ja, e.en), "error")
        return redirect(url_for("certificates.show", public_id=public_id)), 303
    offer_views.keep(new, city=issuer)
    target = url_for("certificates.show_offer", public_id=public_id, offer_id=new.public_id)
    return redirect(target), 303


@bp.get("/<public_id>/offer/<offer_id>")
@login_required
def show_offer(public_id: str, offer_id: str) -> ResponseReturnValue:
    state = oid4vci.offer_state(get_session(), offer_id, cert_id=public_id, now=time.time())
    if state is None:
        abort(404)
    return _certificate_page(public_id, offer_views.offer_view(offer_id, state, city=city()))


@bp.get("/<public_id>/anchor.json")
@login_required
def anchor_json(public_id: str) -> ResponseReturnValue:
    """The certificate's anchoring state, for the page's polling script."""
    session = get_session()
    try:
        cert = certificates.find(session, public_id)
    except certificates.NotFound:
        abort(404)
    state = certificates.anchor_state(session, cert.leaf)
    return {
        "state": state.state,
        "block": state.block,
        "time": _datetime_text(state.block_time),
        "tx": state.tx,
        "label": _anchor_label(state.state),
        "block_label": t("ブロック", "block"),
    }


def _anchor_label(state: str) -> str:
    if state == "anchored":
        return t("記録済み", "Anchored")
    if state == "batched":
        return t("記録中…", "Anchoring…")
    if state == "confirming":
        return t("ブロックに記録済み、確定待ち…", "In a block, waiting for finality…")
    return t("記録待ち…", "Waiting to be anchored…")


def _datetime_text(value: float | None) -> str | None:
    return None if value is None else datetime_filter(value)


@bp.post("/<public_id>/revoke")
@role_required(SUPERVISOR)
def revoke(public_id: str) -> ResponseReturnValue:
    try:
        certificates.revoke(
            get_session(),
            public_id,
            city=city(),
            supervisor=g.user,
            reason=request.form.get("reason", ""),
            now=time.time(),
        )
    except certificates.NotFound:
        abort(404)
    except certificates.CertificateError as e:
        flash(t(e.ja, e.en), "error")
        return redirect(url_for("certificates.show", public_id=public_id)), 303
    flash(t("証明書を取り消しました", "Certificate revoked"), "info")
    return redirect(url_for("certificates.show", public_id=public_id)), 303


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


@home_bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    # Type, state and time only: opening a certificate (and its holder's name) is a
    # view of personal data, recorded in the audit log.
    return render_template(
        "issuer/certificates/home.html", recent=certificates.recent(get_session())
    )
