"""Replacing a contractor's lost signing key: the supervisor's page (revoke, reason,
confirmation, a new one-time key link shown once) and the contractor's page reached
through that link, where its browser makes and registers the new key."""

from __future__ import annotations

import time
from typing import Any, NoReturn

from flask import Blueprint, abort, current_app, g, make_response, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

import issuer.contracts.key_replacement as key_replacement
import issuer.contracts.signing as contract_signing
from credentials.encoding import loads_bounded
from issuer.accounts.models import SUPERVISOR
from issuer.city import city
from issuer.contracts.records import ContractError, NotFound
from issuer.contracts.views import SIGN_CSP
from issuer.db import get_session
from issuer.web.auth import role_required
from issuer.web.helpers import abort_with
from issuer.web.i18n import t

bp = Blueprint("contractor_keys", __name__, url_prefix="/contracts/contractors")
link_bp = Blueprint("contractor_key_link", __name__, url_prefix="/contractor-key")


# ------------------------------------------------------------------ the supervisor's page
def _record(public_id: str) -> key_replacement.KeyRecord:
    try:
        return key_replacement.key_record(get_session(), public_id, city=city())
    except NotFound:
        abort(404)


def _replace_page(
    public_id: str,
    *,
    new_link: contract_signing.NewLink | None = None,
    error: str | None = None,
    values: Any = None,
    status: int = 200,
) -> tuple[str, int]:
    page = render_template(
        "issuer/contracts/key_replace.html",
        r=_record(public_id),
        new_link=new_link,
        error=error,
        values=values or {},
    )
    return page, status


@bp.get("/<public_id>/key")
@role_required(SUPERVISOR)
def replace_form(public_id: str) -> ResponseReturnValue:
    return _replace_page(public_id)


@bp.post("/<public_id>/key")
@role_required(SUPERVISOR)
def replace(public_id: str) -> ResponseReturnValue:
    ttl = float(
        current_app.config.get("CONTRACT_LINK_TTL_SECONDS", contract_signing.DEFAULT_LINK_TTL)
    )
    try:
        link = key_replacement.replace_key(
            get_session(),
            public_id,
            supervisor=g.user,
            reason=request.form.get("reason", ""),
            confirmed=request.form.get("confirm") == "yes",
            now=time.time(),
            ttl=ttl,
        )
    except NotFound:
        abort(404)
    except ContractError as e:
        return _replace_page(public_id, error=t(e.ja, e.en), values=request.form, status=400)
    return _replace_page(public_id, new_link=link)


# ------------------------------------------------------------------ the contractor's page
def _link_error(e: contract_signing.LinkError) -> NoReturn:
    abort_with(e.status, e.ja, e.en)


def _key_page(
    page: key_replacement.KeyLinkPage, token: str, *, error: str | None = None, status: int = 200
) -> Response:
    response = make_response(
        render_template("issuer/contracts/key_register.html", p=page, token=token, error=error),
        status,
    )
    response.headers["Content-Security-Policy"] = SIGN_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    return response


@link_bp.get("/<token>")
def register_page(token: str) -> ResponseReturnValue:
    try:
        page = key_replacement.key_link_page(get_session(), token, city=city(), now=time.time())
    except contract_signing.LinkError as e:
        _link_error(e)
    return _key_page(page, token)


@link_bp.post("/<token>")
def register(token: str) -> ResponseReturnValue:
    wants_json = request.headers.get("Accept") == "application/json"
    try:
        jwk = loads_bounded(request.form.get("jwk", ""))
    except ValueError:
        jwk = None
    try:
        thumbprint = key_replacement.register_new_key(get_session(), token, jwk, now=time.time())
    except contract_signing.LinkError as e:
        _link_error(e)
    except ContractError as e:
        if wants_json:
            return {"error": t(e.ja, e.en)}, 400
        try:
            page = key_replacement.key_link_page(get_session(), token, city=city(), now=time.time())
        except contract_signing.LinkError as link_error:
            _link_error(link_error)
        return _key_page(page, token, error=t(e.ja, e.en), status=400)
    if wants_json:
        return {"key_thumbprint": thumbprint}
    response = make_response(
        render_template("issuer/contracts/key_registered.html", thumbprint=thumbprint)
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
