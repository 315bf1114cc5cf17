"""The contract pages: the clerk's (list, contractors, new contract, a contract's page,
approval, amendment, termination, downloads) and the contractor's signing page reached
through its one-time link."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

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
from werkzeug.wrappers import Response

import issuer.contracts as contracts
import issuer.contracts.pdf as contract_pdf
import issuer.contracts.signing as contract_signing
from credentials.encoding import loads_bounded
from credentials.errors import ValidationError
from issuer.accounts.models import SUPERVISOR
from issuer.certificates.forms import field_errors
from issuer.city import city
from issuer.contracts.agreements import AgreementError, to_sign
from issuer.contracts.forms import ContractorForm, TermsForm
from issuer.contracts.models import CONTRACTOR, ORDERER
from issuer.db import get_session
from issuer.web.auth import login_required, role_required
from issuer.web.i18n import t

T = TypeVar("T")

bp = Blueprint("contracts", __name__, url_prefix="/contracts")
sign_bp = Blueprint("contract_sign", __name__, url_prefix="/contract-sign")

PDF_CSP = (
    "default-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
SIGN_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def _max_pdf() -> int:
    return int(current_app.config.get("CONTRACT_MAX_PDF_BYTES", contract_pdf.MAX_BYTES))


def _uploaded_pdf() -> contract_pdf.CheckedPdf:
    """The PDF of the form, checked. Raises ``ValidationError`` on the ``document`` field."""
    try:
        upload = request.files.get("document")
        data = upload.read(_max_pdf() + 1) if upload else b""
        return contract_pdf.check_pdf(
            data,
            max_bytes=_max_pdf(),
            max_pages=int(current_app.config.get("CONTRACT_MAX_PDF_PAGES", contract_pdf.MAX_PAGES)),
        )
    except contract_pdf.DocumentError as e:
        raise ValidationError([("document", e.ja, e.en)]) from None


UPLOADS = frozenset({"contracts.create", "contracts.amend"})


def _allow_upload() -> None:
    # Forms are limited to 1 MiB app-wide; a contract upload may carry its PDF. This
    # runs before every other hook: the CSRF check reads (and so parses) the form.
    if request.endpoint in UPLOADS and request.method == "POST":
        request.max_content_length = _max_pdf() + 256 * 1024


@bp.record_once
def _first_hook(state: Any) -> None:
    state.app.before_request_funcs.setdefault(None, []).insert(0, _allow_upload)


def _pdf_response(data: bytes, name: str) -> ResponseReturnValue:
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = PDF_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------------ clerk pages
@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    rows = contracts.listing(get_session(), city=city())
    return render_template("issuer/contracts/list.html", rows=rows)


@bp.route("/contractors/new", methods=("GET", "POST"))
@login_required
def new_contractor() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("issuer/contracts/contractor_form.html", values={}, errors={})
    try:
        contracts.register_contractor(
            get_session(),
            ContractorForm.from_form(request.form),
            city=city(),
            clerk=g.user,
            now=time.time(),
        )
    except ValidationError as e:
        page = render_template(
            "issuer/contracts/contractor_form.html",
            values=request.form,
            errors=field_errors(e.errors),
        )
        return page, 400
    flash(t("受注者を登録しました", "Contractor registered"), "info")
    return redirect(url_for("contracts.new")), 303


def _form(
    values: Any, errors: Any = None, previous: Any = None, status: int = 200
) -> tuple[str, int]:
    page = render_template(
        "issuer/contracts/form.html",
        contractors=contracts.all_contractors(get_session(), city=city()),
        values=values,
        errors=errors or {},
        previous=previous,
    )
    return page, status


@bp.get("/new")
@login_required
def new() -> ResponseReturnValue:
    return _form({})


@bp.post("/new")
@login_required
def create() -> ResponseReturnValue:
    session, now = get_session(), time.time()
    try:
        pdf = _uploaded_pdf()
        contract = contracts.create_contract(
            session,
            TermsForm.from_form(request.form),
            pdf,
            contractor_id=request.form.get("contractor", ""),
            city=city(),
            clerk=g.user,
            now=now,
        )
    except ValidationError as e:
        return _form(request.form, field_errors(e.errors), status=400)
    flash(t("契約書を登録しました", "Contract uploaded"), "info")
    return redirect(url_for("contracts.show", public_id=contract.public_id)), 303


def _view(public_id: str) -> contracts.ContractView:
    try:
        return contracts.view(get_session(), public_id, city=city())
    except contracts.NotFound:
        abort(404)


def _page(public_id: str, *, new_link: contract_signing.NewLink | None = None) -> str:
    return render_template("issuer/contracts/show.html", v=_view(public_id), new_link=new_link)


@bp.get("/<public_id>")
@login_required
def show(public_id: str) -> ResponseReturnValue:
    return _page(public_id)


@bp.get("/<public_id>/document.pdf")
@login_required
def document(public_id: str) -> ResponseReturnValue:
    try:
        data = contracts.clerk_document(
            get_session(), public_id, city=city(), viewer=g.user, now=time.time()
        )
    except contracts.NotFound:
        abort(404)
    return _pdf_response(data, f"contract-{public_id}.pdf")


@bp.post("/<public_id>/link")
@login_required
def create_link(public_id: str) -> ResponseReturnValue:
    ttl = float(
        current_app.config.get("CONTRACT_LINK_TTL_SECONDS", contract_signing.DEFAULT_LINK_TTL)
    )
    try:
        link = contract_signing.create_link(
            get_session(), public_id, clerk=g.user, now=time.time(), ttl=ttl
        )
    except contracts.NotFound:
        abort(404)
    except contracts.ContractError as e:
        flash(t(e.ja, e.en), "error")
        return redirect(url_for("contracts.show", public_id=public_id)), 303
    return _page(public_id, new_link=link)


@bp.post("/<public_id>/approve")
@role_required(SUPERVISOR)
def approve(public_id: str) -> ResponseReturnValue:
    try:
        contracts.approve(get_session(), public_id, city=city(), supervisor=g.user, now=time.time())
    except contracts.NotFound:
        abort(404)
    except contracts.ContractError as e:
        flash(t(e.ja, e.en), "error")
        return redirect(url_for("contracts.show", public_id=public_id)), 303
    flash(
        t("承認し、契約書を発行しました", "Approved; the contract credentials are issued"), "info"
    )
    return redirect(url_for("contracts.show", public_id=public_id)), 303


@bp.route("/<public_id>/amend", methods=("GET", "POST"))
@login_required
def amend(public_id: str) -> ResponseReturnValue:
    previous = _view(public_id).contract
    if request.method == "GET":
        values = {
            "contractor": _view(public_id).contractor.public_id,
            "title": previous.title,
            "contract_number": previous.contract_number,
            "amount_jpy": str(previous.amount_jpy),
            "period_start": previous.period_start,
            "period_end": previous.period_end,
            "site": previous.site or "",
        }
        return _form(values, previous=previous)
    session, now = get_session(), time.time()
    try:
        pdf = _uploaded_pdf()
        contract = contracts.amend(
            session,
            public_id,
            TermsForm.from_form(request.form),
            pdf,
            city=city(),
            clerk=g.user,
            now=now,
        )
    except ValidationError as e:
        return _form(request.form, field_errors(e.errors), previous=previous, status=400)
    except contracts.ContractError as e:
        flash(t(e.ja, e.en), "error")
        return redirect(url_for("contracts.show", public_id=public_id)), 303
    flash(t("変更契約を作成しました", "Amendment created"), "info")
    return redirect(url_for("contracts.show", public_id=contract.public_id)), 303


@bp.post("/<public_id>/terminate")
@role_required(SUPERVISOR)
def terminate(public_id: str) -> ResponseReturnValue:
    try:
        contracts.terminate(
            get_session(),
            public_id,
            supervisor=g.user,
            reason=request.form.get("reason", ""),
            now=time.time(),
        )
    except contracts.NotFound:
        abort(404)
    except contracts.ContractError as e:
        flash(t(e.ja, e.en), "error")
        return redirect(url_for("contracts.show", public_id=public_id)), 303
    flash(
        t("契約を解除し、契約書を取り消しました", "Contract terminated; credentials revoked"),
        "info",
    )
    return redirect(url_for("contracts.show", public_id=public_id)), 303


@bp.get("/<public_id>/credential-<party>.sd-jwt")
@login_required
def credential(public_id: str, party: str) -> ResponseReturnValue:
    text = _party_copy(contracts.credential_of, public_id, party)
    response = make_response(text)
    response.headers["Content-Type"] = "application/dc+sd-jwt"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="contract-{public_id}-{party}.sd-jwt"'
    )
    return response


@bp.get("/<public_id>/contract-<party>.pdf")
@login_required
def signed_document(public_id: str, party: str) -> ResponseReturnValue:
    """The PDF with ``party``'s credential and both agreements embedded: it verifies alone."""
    data = _party_copy(contracts.signed_document, public_id, party)
    return _pdf_response(data, f"contract-{public_id}-{party}.pdf")


def _party_copy(fetch: Callable[..., T], public_id: str, party: str) -> T:
    """``party``'s copy fetched by ``fetch`` (audited there); 404 for an unknown party or
    contract."""
    if party not in (ORDERER, CONTRACTOR):
        abort(404)
    try:
        return fetch(get_session(), public_id, party, city=city(), viewer=g.user, now=time.time())
    except contracts.NotFound:
        abort(404)


# ------------------------------------------------------------------ the contractor's page
def _signing(token: str) -> contract_signing.SigningPage:
    try:
        return contract_signing.signing_page(get_session(), token, city=city(), now=time.time())
    except contract_signing.LinkError as e:
        _link_error(e)


def _link_error(e: contract_signing.LinkError) -> NoReturn:
    from issuer.web.helpers import abort_with

    abort_with(e.status, e.ja, e.en)


def _sign_page(
    page: contract_signing.SigningPage, token: str, error: Any = None, status: int = 200
) -> Response:
    response = make_response(
        render_template(
            "issuer/contracts/sign.html",
            p=page,
            token=token,
            expected_json=json.dumps(to_sign(page.expected), ensure_ascii=False),
            registered_json=json.dumps(page.registered_jwk) if page.registered_jwk else "",
            error=error,
        ),
        status,
    )
    response.headers["Content-Security-Policy"] = SIGN_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    return response


@sign_bp.get("/<token>")
def sign_page(token: str) -> ResponseReturnValue:
    return _sign_page(_signing(token), token)


@sign_bp.get("/<token>/document.pdf")
def sign_document(token: str) -> ResponseReturnValue:
    try:
        data = contract_signing.link_document(get_session(), token, city=city(), now=time.time())
    except contract_signing.LinkError as e:
        _link_error(e)
    return _pdf_response(data, "contract.pdf")


@sign_bp.post("/<token>/key")
def register_key(token: str) -> ResponseReturnValue:
    try:
        jwk = loads_bounded(request.form.get("jwk", ""))
    except ValueError:
        jwk = None
    try:
        thumbprint = contract_signing.register_key(get_session(), token, jwk, now=time.time())
    except contract_signing.LinkError as e:
        _link_error(e)
    except contracts.ContractError as e:
        return {"error": t(e.ja, e.en)}, 400
    return {"key_thumbprint": thumbprint}


@sign_bp.post("/<token>")
def sign(token: str) -> ResponseReturnValue:
    try:
        contract_signing.sign_as_contractor(
            get_session(), token, request.form.get("agreement", ""), city=city(), now=time.time()
        )
    except contract_signing.LinkError as e:
        _link_error(e)
    except AgreementError as e:
        if request.headers.get("Accept") == "application/json":
            return {"error": t(e.ja, e.en)}, 400
        return _sign_page(_signing(token), token, error=t(e.ja, e.en), status=400)
    if request.headers.get("Accept") == "application/json":
        return {"signed": True}
    response = make_response(render_template("issuer/contracts/signed.html"))
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
