"""Public endpoints for wallets and verifiers (GET only, no sign-in): the Token Status
Lists, the issuer metadata with its keys, and the type metadata of each ``vct``."""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, jsonify
from flask.typing import ResponseReturnValue

import issuer.certificates.service as certificates
from credentials import doctypes
from credentials import status_list as sl
from issuer.city import city
from issuer.db import get_session

bp = Blueprint("wellknown", __name__)

DEFAULT_STATUS_TTL = 300  # seconds a verifier may cache a list
STATUS_LIFETIME = 86_400  # a token's exp: a verifier refetches within a day at most


@bp.get("/status/<int:list_id>")
def status(list_id: int) -> ResponseReturnValue:
    try:
        entries = certificates.status_list(get_session(), list_id)
    except certificates.NotFound:
        abort(404)
    issuer = city()
    ttl = int(current_app.config.get("STATUS_TTL", DEFAULT_STATUS_TTL))
    now = int(time.time())
    token = sl.issue_token(
        entries,
        key=issuer.key,
        issuer=issuer.issuer_id,
        uri=issuer.status_uri(list_id),
        iat=now,
        exp=now + STATUS_LIFETIME,
        ttl=ttl,
    )
    headers = {
        "Content-Type": sl.MEDIA_TYPE,
        "Cache-Control": f"public, max-age={ttl}",
        "Access-Control-Allow-Origin": "*",
    }
    return token, 200, headers


@bp.get("/.well-known/jwt-vc-issuer")
def jwt_vc_issuer() -> ResponseReturnValue:
    response = jsonify(city().issuer_metadata())
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/vct/<name>/1")
def vct(name: str) -> ResponseReturnValue:
    if name not in doctypes.DOCUMENT_TYPES:
        abort(404)
    response = jsonify(doctypes.get(name).metadata(city().issuer_id))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
