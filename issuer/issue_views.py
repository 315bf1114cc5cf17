"""The clerk's certificate pages: form -> preview -> issue, the certificate's page, and
the supervisor's revocation."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from credentials import doctypes
from credentials.errors import KeyFileError, ValidationError

from . import certificate_forms as forms
from . import certificates, keys
from .auth import login_required, role_required
from .db import get_session
from .i18n import current_lang, datetime_filter, t
from .models import SUPERVISOR
from .web import abort_with

bp = Blueprint("certificates", __name__, url_prefix="/certificates")

DOC_TYPES = (certificates.JUMINHYO, certificates.PARTNERSHIP)
_CITY = "shomei_city"


def city() -> keys.City:
    """The city's issuer, loaded once per app; a 503 page when not initialised."""
    loaded: keys.City | None = current_app.extensions.get(_CITY)
    if loaded is not None:
        return loaded
    passphrase = current_app.config.get("KEY_PASSPHRASE") or os.environ.get(keys.PASSPHRASE_ENV)
    try:
        loaded = keys.load(current_app.config["DATA_DIR"], passphrase)
    except (keys.NotInitialised, KeyFileError) as e:
        abort_with(503, e.ja, e.en)
    current_app.extensions[_CITY] = loaded
    return loaded


def _doc_type(name: str) -> doctypes.DocumentType:
    if name not in DOC_TYPES:
        abort(404)
    return doctypes.get(name)


def _form_page(
    doc_type: str, values: dict[str, str], errors: Any = None, options: Any = None
) -> str:
    return render_template(
        "issuer/certificate_form.html",
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
        "issuer/certificate_preview.html",
        doc_type=doc_type,
        dt=dt,
        claims=valid,
        claims_json=json.dumps(valid, ensure_ascii=False),
        date_fields={f.name for f in forms.fields(doc_type) if f.kind == "date"},
        options=options,
    )


@bp.post("/issue/<doc_type>")
@login_required
def issue(doc_type: str) -> ResponseReturnValue:
    _doc_type(doc_type)
    try:
        claims = json.loads(request.form.get("claims", ""))
    except ValueError:
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
    session = get_session()
    try:
        opened = certificates.open_certificate(
            session, public_id, city=city(), viewer=g.user, now=time.time()
        )
    except certificates.NotFound:
        abort(404)
    cert = opened.certificate
    return render_template(
        "issuer/certificate.html",
        cert=cert,
        dt=doctypes.get(cert.doc_type),
        holder=certificates.holder_name(cert.doc_type, opened.claims),
        anchor=certificates.anchor_state(session, cert.leaf),
        lang=current_lang(),
    )


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
