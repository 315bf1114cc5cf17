"""OpenID4VCI endpoints (pre-authorized code flow) and the clerk's offer page.

Public and wallet-facing (JSON, no sign-in, no CSRF — they are not cookie
authenticated): the issuer and authorization server metadata, ``POST /oid4vci/token``,
``POST /oid4vci/nonce``, ``POST /oid4vci/credential`` (Bearer) and the anchor evidence
``GET /oid4vci/evidence/<leaf hex>``. Every refusal is a JSON error, never a page.

The clerk's side: ``POST /certificates/<id>/offer`` creates an offer and redirects to
its page, which shows the QR code and the tx_code. The server keeps only their hashes;
the page's copy travels sealed (storage key, AES-GCM) in the clerk's session cookie
until the offer is used or expires, so reloading the page still shows it.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    request,
    url_for,
)
from flask import session as cookie
from flask.typing import ResponseReturnValue
from flask.wrappers import Response
from werkzeug.exceptions import RequestEntityTooLarge

from anchor.config import ChainConfig, ConfigError
from credentials import qr
from credentials.encoding import b64d, b64e

from . import certificates, csrf, issue_views, oid4vci
from .auth import login_required
from .db import get_session
from .i18n import t
from .issue_views import city
from .models_offers import OFFERED

bp = Blueprint("oid4vci", __name__)

MAX_BODY = 64 * 1024  # a credential request with one proof is a few kilobytes
RETRY_AFTER = 10  # seconds: about one batch interval
_COOKIE_KEY = "oid4vci_offer"


# ------------------------------------------------------------------ CORS
@bp.after_request
def _cors(response: Response) -> Response:
    """Let a wallet served from another origin (a PWA) call the wallet API. The
    endpoints authenticate by Bearer token or code, never by cookie, so any origin
    may read their answers; a preflight may send ``Authorization`` and JSON."""
    if request.path.startswith(("/oid4vci/", "/.well-known/")):
        headers = response.headers
        headers["Access-Control-Allow-Origin"] = "*"
        headers["Access-Control-Expose-Headers"] = "Retry-After, WWW-Authenticate"
        if request.method == "OPTIONS":
            headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            headers["Access-Control-Max-Age"] = "600"
    return response


# ------------------------------------------------------------------ helpers
def _public(document: dict[str, Any]) -> Response:
    response = jsonify(document)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _no_store(document: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(document)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(code: str, description: str, status: int = 400, **extra: Any) -> Response:
    response = _no_store({"error": code, "error_description": description, **extra}, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer error="{code}"'
    return response


def _refused(e: oid4vci.OfferError, **extra: Any) -> Response:
    return _error(e.code, e.en, e.status, **e.extra, **extra)


def _body() -> bytes | None:
    """The request body, or None when it is over :data:`MAX_BODY`."""
    if (request.content_length or 0) > MAX_BODY:
        return None
    request.max_content_length = MAX_BODY
    try:
        return request.get_data(cache=True)
    except RequestEntityTooLarge:
        return None


def _too_large() -> Response:
    return _error("invalid_request", f"the request body exceeds {MAX_BODY} bytes", 413)


# ------------------------------------------------------------------ metadata
@bp.get("/.well-known/openid-credential-issuer")
def credential_issuer() -> ResponseReturnValue:
    return _public(oid4vci.issuer_metadata(city()))


@bp.get("/.well-known/oauth-authorization-server")
def authorization_server() -> ResponseReturnValue:
    return _public(oid4vci.authorization_server_metadata(city()))


# ------------------------------------------------------------------ wallet API
@bp.post("/oid4vci/token")
@csrf.exempt
def token() -> ResponseReturnValue:
    if _body() is None:
        return _too_large()
    if request.mimetype != "application/x-www-form-urlencoded":
        return _error("invalid_request", "the token request must be form-encoded")
    form = request.form
    try:
        grant = oid4vci.exchange_code(
            get_session(),
            grant_type=form.get("grant_type"),
            code=form.get("pre-authorized_code"),
            tx_code=form.get("tx_code"),
            city=city(),
            now=time.time(),
        )
    except oid4vci.OfferError as e:
        return _refused(e)
    return _no_store(grant.to_json())


@bp.post("/oid4vci/nonce")
@csrf.exempt
def nonce() -> ResponseReturnValue:
    return _no_store({"c_nonce": oid4vci.mint_nonce(city(), now=time.time())})


@bp.post("/oid4vci/credential")
@csrf.exempt
def credential() -> ResponseReturnValue:
    raw = _body()
    if raw is None:
        return _too_large()
    header = request.headers.get("Authorization", "")
    scheme, _, access_token = header.partition(" ")
    access_token = access_token.strip() if scheme.lower() == "bearer" else ""
    try:
        body = json.loads(raw) if request.is_json else None
    except ValueError:
        body = None
    issuer = city()
    now = time.time()
    try:
        delivered = oid4vci.deliver(get_session(), access_token, body, city=issuer, now=now)
    except oid4vci.NonceError as e:
        return _refused(
            e, c_nonce=oid4vci.mint_nonce(issuer, now=now), c_nonce_expires_in=oid4vci.NONCE_TTL
        )
    except oid4vci.OfferError as e:
        return _refused(e)
    return _no_store({"credentials": [{"credential": delivered.credential}]})


@bp.get("/oid4vci/evidence/<leaf_hex>")
def evidence(leaf_hex: str) -> ResponseReturnValue:
    try:
        leaf = bytes.fromhex(leaf_hex)
        if len(leaf) != 32:
            raise ValueError
        found = oid4vci.evidence(get_session(), leaf)
    except (ValueError, oid4vci.NotDelivered):
        return _error("not_found", "no credential was delivered with this leaf", 404)
    if found is None:
        response = _error("not_anchored_yet", "the credential's batch is not anchored yet", 404)
        response.headers["Retry-After"] = str(RETRY_AFTER)
    else:
        response = _no_store(oid4vci.evidence_document(found, _chain_config()))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _chain_config() -> ChainConfig | None:
    try:
        return ChainConfig.load(current_app.config["DATA_DIR"])
    except ConfigError:
        current_app.logger.warning("chain.json is malformed: evidence served without chain id")
        return None


# ------------------------------------------------------------------ clerk pages
@dataclass(frozen=True, kw_only=True, repr=False)
class OfferView:
    """What ``_offer.html`` shows: the state, and the QR code and tx_code while the
    offer waits for the wallet."""

    public_id: str
    state: str
    expires_at: float | None = None
    uri: str | None = None
    qr: str | None = None  # a data: URL of the PNG
    tx_code: str | None = None


@bp.post("/certificates/<public_id>/offer")
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
    shown = json.dumps({"uri": new.uri, "tx_code": new.tx_code, "expires_at": new.expires_at})
    sealed = issuer.seal(shown.encode(), context=_context(new.public_id))
    cookie[_COOKIE_KEY] = {"id": new.public_id, "sealed": b64e(sealed)}
    target = url_for("oid4vci.show_offer", public_id=public_id, offer_id=new.public_id)
    return redirect(target), 303


@bp.get("/certificates/<public_id>/offer/<offer_id>")
@login_required
def show_offer(public_id: str, offer_id: str) -> ResponseReturnValue:
    state = oid4vci.offer_state(get_session(), offer_id, cert_id=public_id, now=time.time())
    if state is None:
        abort(404)
    g.credential_offer = _offer_view(offer_id, state)
    return issue_views.show(public_id)


def _context(offer_id: str) -> bytes:
    return b"offer-page:" + offer_id.encode()


def _offer_view(offer_id: str, state: str) -> OfferView:
    stored = cookie.get(_COOKIE_KEY)
    if state != OFFERED or not isinstance(stored, dict) or stored.get("id") != offer_id:
        if isinstance(stored, dict) and stored.get("id") == offer_id:
            cookie.pop(_COOKIE_KEY)  # used or expired: the page no longer needs it
        return OfferView(public_id=offer_id, state=state)
    try:
        plain = city().unseal(b64d(stored["sealed"]), context=_context(offer_id))
        shown = json.loads(plain)
    except (InvalidTag, KeyError, TypeError, ValueError):  # altered: show the state only
        return OfferView(public_id=offer_id, state=state)
    png = qr.render_png(shown["uri"], scale=5)
    return OfferView(
        public_id=offer_id,
        state=state,
        expires_at=shown["expires_at"],
        uri=shown["uri"],
        qr="data:image/png;base64," + base64.b64encode(png).decode("ascii"),
        tx_code=shown["tx_code"],
    )
