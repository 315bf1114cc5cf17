"""OpenID4VCI endpoints (pre-authorized code flow) and the clerk's offer page.

Public and wallet-facing (JSON, no sign-in, no CSRF — they are not cookie
authenticated): the issuer and authorization server metadata, ``POST /oid4vci/token``,
``GET /oid4vci/offers/<reference>`` (the offer by reference), ``POST /oid4vci/nonce``,
``POST /oid4vci/credential`` (Bearer) and the anchor evidence
``GET /oid4vci/evidence/<leaf hex>``. Every refusal is a JSON error, never a page.

The clerk's offer page is the certificate's (``issuer.certificates.views``).
"""

from __future__ import annotations

import time
from typing import Any

from flask import (
    Blueprint,
    current_app,
    jsonify,
    request,
)
from flask.typing import ResponseReturnValue
from flask.wrappers import Response
from werkzeug.exceptions import RequestEntityTooLarge

import issuer.oid4vci as oid4vci
from anchor.config import ChainConfig, ConfigError
from credentials.encoding import loads_bounded
from credentials.errors import CodedError
from edges.errors import json_error
from issuer.city import city
from issuer.db import get_session
from issuer.web import csrf

bp = Blueprint("oid4vci", __name__)

MAX_BODY = 64 * 1024  # a credential request with one proof is a few kilobytes
RETRY_AFTER = 10  # seconds: about one batch interval


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
@bp.get("/oid4vci/offers/<reference>")
def offer(reference: str) -> ResponseReturnValue:
    """The Credential Offer behind a ``credential_offer_uri`` (OpenID4VCI 1.0 §4.1.3)."""
    try:
        document = oid4vci.offer_by_reference(
            get_session(), reference, city=city(), now=time.time()
        )
    except oid4vci.OfferUnavailable as e:
        response = json_error(e)
        response.headers["Cache-Control"] = "no-store"
        return response
    return _no_store(document)


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
        body = loads_bounded(raw) if request.is_json else None
    except ValueError:
        body = None
    try:
        delivered = oid4vci.deliver(get_session(), access_token, body, city=city(), now=time.time())
    except oid4vci.OfferError as e:  # invalid_nonce too: the wallet asks the nonce endpoint
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
        response = json_error(_NOT_DELIVERED)
    else:
        if found is None:
            response = json_error(_NOT_ANCHORED)
            response.headers["Retry-After"] = str(RETRY_AFTER)
        else:
            response = _no_store(oid4vci.evidence_document(found, _chain_config()))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


_NOT_DELIVERED = CodedError(
    "not_found",
    "この葉のハッシュで交付された証明書はありません",
    "no credential was delivered with this leaf",
    status=404,
)
_NOT_ANCHORED = CodedError(
    "not_anchored_yet",
    "この証明書のバッチはまだアンカーされていません",
    "the credential's batch is not anchored yet",
    status=404,
)


def _chain_config() -> ChainConfig | None:
    try:
        return ChainConfig.load(current_app.config["DATA_DIR"])
    except ConfigError:
        current_app.logger.warning("chain.json is malformed: evidence served without chain id")
        return None
