"""OpenID4VP 1.0 endpoints (the protocol itself is :mod:`verifier.oid4vp`):

- ``GET``/``POST /oid4vp/request/<state>`` — the signed request object a wallet fetches
  by reference (``application/oauth-authz-req+jwt``; a POST may carry ``wallet_nonce``;
  CORS open to wallets in a browser, as the response URI);
- ``POST /oid4vp/response/<state>`` — the wallet's answer (``direct_post`` or
  ``direct_post.jwt``): verified with the request's nonce and full client identifier,
  kept once, shown on the company's page;
- ``POST /oid4vp/dc-api/<id>`` — an answer the company's page received from the
  browser's Digital Credentials API (audience ``origin:<the page's origin>``).

Errors are the one JSON error document (the specification defines none for these).
"""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, jsonify, request
from flask.wrappers import Response

import verifier.dcql as dcql
import verifier.oid4vp as oid4vp
from credentials import qr
from credentials.encoding import loads_bounded
from credentials.errors import CodedError
from credentials.trust import CombinedTrust, TrustList
from verifier import requests, service
from verifier.inputs import InputError
from verifier.x509_identity import X509Identity

bp = Blueprint("oid4vp", __name__)
_log = logging.getLogger("shomei.verifier")
_SD_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+~[A-Za-z0-9_.~-]*")
_WALLET_NONCE = re.compile(r"[A-Za-z0-9._~-]{1,128}")


def _identity() -> X509Identity | None:
    identity: X509Identity | None = current_app.extensions.get("shomei_x509")
    return identity


def _issuers() -> list[str]:
    """The issuers whose 住民票 a request names: configured ones, then the trust file's."""
    found = list(current_app.config["OID4VP_ISSUERS"])
    trust = current_app.config["VERIFIER"].trust
    for source in trust.sources if isinstance(trust, CombinedTrust) else [trust]:
        if isinstance(source, TrustList):
            found.extend(source.issuer_ids)
    return list(dict.fromkeys(found))


def new_params(
    *, base_url: str, paths: tuple[dcql.Path, ...], mode: str, signed: bool
) -> oid4vp.Params:
    """A new request's parameters: signed when the verifier has a certificate whose DNS
    name is the host it is reached at (a wallet checks the response URI's host against
    it), else unsigned. Raises :class:`CodedError` for a bad mode or no known issuer."""
    identity = _identity() if signed else None
    if identity is not None and urlsplit(base_url).hostname != identity.dns_name:
        _log.warning(
            "request unsigned: certificate for %s, served as %s", identity.dns_name, base_url
        )
        identity = None
    issuers = _issuers()
    if not issuers:
        raise requests.RequestError(
            "not_configured",
            "受け付ける発行者が設定されていません（SHOMEI_VERIFIER_ISSUERS）",
            "no issuer configured for requests (SHOMEI_VERIFIER_ISSUERS)",
            status=503,
        )
    if mode not in oid4vp.MODES:
        raise dcql.RequestedClaimsError("bad_request", "応答方法が不正です", "bad response_mode")
    return oid4vp.new(
        base_url=base_url,
        mode=mode,
        paths=paths,
        vct_values=dcql.vct_values(issuers),
        identity=identity,
    )


@dataclass(frozen=True)
class PageView:
    """What the company's request page shows of the OpenID4VP request."""

    link: str
    qr_png: str
    qr_version: int
    labels: list[str]
    client_id: str
    signed: bool
    dc_api: str
    #: ``<wallet>/?request=<the link>``: the demo wallet opened with this request, when
    #: the verifier is configured with the wallet's URL (WALLET_URL), else "".
    wallet_link: str


def page(req: requests.PendingRequest, *, base_url: str, origin: str, lang: str) -> PageView:
    """The link, its QR code (PNG data URL) and version, the claims' labels and the
    request for the Digital Credentials API (JSON)."""
    assert req.oid4vp is not None
    params = oid4vp.Params.from_json(req.oid4vp)
    link = oid4vp.link(params, base_url)
    png = base64.b64encode(qr.render_png(link, scale=5)).decode()
    now = float(current_app.config["CLOCK"]())
    dc_api = oid4vp.dc_api_request(
        params,
        _identity() if params.signed else None,
        origin=origin,
        now=now,
        expires_at=req.expires_at,
    )
    return PageView(
        link=link,
        qr_png="data:image/png;base64," + png,
        qr_version=qr.qr_version(link),
        labels=[dcql.label(p, lang) for p in params.paths],
        client_id=params.client_id,
        signed=params.signed,
        dc_api=json.dumps(dc_api, ensure_ascii=False, separators=(",", ":")),
        wallet_link=wallet_link(link),
    )


def wallet_link(link: str) -> str:
    """The configured wallet's address that opens ``link`` (same device), or ""."""
    wallet = str(current_app.config.get("WALLET_URL") or "").rstrip("/")
    return f"{wallet}/?{urlencode({'request': link})}" if wallet else ""


# ------------------------------------------------------------------ the endpoints


def _now() -> float:
    return float(current_app.config["CLOCK"]())


def _error(e: CodedError) -> Response:
    response = jsonify(e.to_json())
    response.status_code = e.status
    return response


def _pending(state: str) -> tuple[requests.PendingRequest, oid4vp.Params]:
    req = current_app.extensions["shomei_requests"].get_by_state(state, now=_now())
    if req.oid4vp is None:
        raise requests.UNKNOWN
    return req, oid4vp.Params.from_json(req.oid4vp)


@bp.route("/oid4vp/request/<state>", methods=["GET", "POST", "OPTIONS"])
def request_object(state: str) -> Response:
    """The signed request object; a wallet in a browser fetches it from its own origin
    (a simple GET, or a form POST), so the answer carries CORS headers."""
    if request.method == "OPTIONS":
        return _cors(Response(status=204))
    try:
        req, params = _pending(state)
        identity = _identity()
        if not params.signed or identity is None:
            raise InputError(
                "not_found",
                "この依頼はリンクに直接書かれています（署名なし）",
                "this request is passed by value (unsigned): there is no request object",
                status=404,
            )
        if req.result is not None:
            raise requests.ANSWERED
        wallet_nonce = _wallet_nonce() if request.method == "POST" else None
        jwt = oid4vp.request_object(
            params, identity, now=_now(), expires_at=req.expires_at, wallet_nonce=wallet_nonce
        )
    except CodedError as e:
        return _cors(_error(e))
    return _cors(Response(jwt, mimetype=oid4vp.REQUEST_MEDIA_TYPE))


def _wallet_nonce() -> str | None:
    """``request_uri_method=post``: the wallet's nonce to echo; its metadata must be a
    JSON object (what it says changes nothing here: one format, one algorithm)."""
    metadata = request.form.get("wallet_metadata")
    if metadata is not None:
        try:
            if not isinstance(loads_bounded(metadata[:65536]), dict):
                raise ValueError
        except ValueError:
            raise InputError(
                "bad_request", "wallet_metadata が不正です", "malformed wallet_metadata"
            ) from None
    nonce = request.form.get("wallet_nonce")
    if nonce is not None and not _WALLET_NONCE.fullmatch(nonce):
        raise InputError("bad_request", "wallet_nonce が不正です", "malformed wallet_nonce")
    return nonce


@bp.route("/oid4vp/response/<state>", methods=["POST", "OPTIONS"])
def response(state: str) -> Response:
    if request.method == "OPTIONS":
        return _cors(Response(status=204))
    try:
        req, params = _pending(state)
        if req.result is not None:
            raise requests.ANSWERED
        if request.mimetype != "application/x-www-form-urlencoded":
            raise InputError(
                "bad_request",
                "回答は application/x-www-form-urlencoded で送ってください",
                "the response must be application/x-www-form-urlencoded",
            )
        form = request.form
        if any(len(form.getlist(k)) > 1 for k in form):
            raise InputError("bad_request", "同じ項目が重複しています", "a parameter is repeated")
        answer = oid4vp.read_answer(form.to_dict(), params)
        verdict = _keep(req, params, answer, aud=params.client_id)
    except CodedError as e:
        return _cors(_error(e))
    return _cors(jsonify({"verdict": verdict}))


@bp.post("/oid4vp/dc-api/<rid>")
def dc_api_response(rid: str) -> Response:
    """The page's own post of what ``navigator.credentials.get`` returned."""
    store = current_app.extensions["shomei_requests"]
    try:
        req = requests.claim_for_answer(store, rid, now=_now())
        if req.oid4vp is None:
            raise requests.UNKNOWN
        params = oid4vp.Params.from_json(req.oid4vp)
        body = request.get_json(silent=True) if request.mimetype == "application/json" else None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise InputError("bad_request", "data がありません", "missing data")
        answer = oid4vp.read_answer(data, params, dc_api=True)
        origin = current_app.config.get("VERIFIER_URL") or request.host_url
        verdict = _keep(req, params, answer, aud="origin:" + str(origin).rstrip("/"))
    except CodedError as e:
        return _error(e)
    return jsonify({"verdict": verdict})


def _keep(
    req: requests.PendingRequest,
    params: oid4vp.Params,
    answer: oid4vp.Presentation | oid4vp.Refusal,
    *,
    aud: str,
) -> str:
    """Verify the answer (nonce, audience ``aud``, the checklist, exactly the requested
    claims), keep its result once; return the verdict."""
    now = _now()
    if isinstance(answer, oid4vp.Refusal):
        result, text = answer.result(), ""
    else:
        text = answer.text
        if not _SD_JWT.fullmatch(text):
            raise InputError(
                "not_a_credential",
                "提示が SD-JWT（鍵署名付き）ではありません",
                "the presentation is not an SD-JWT with a key-binding JWT",
            )
        checked = service.verify_text(
            current_app.config["VERIFIER"], text, now=now, nonce=params.nonce, aud=aud
        )
        result = dcql.check(checked, text, params.paths).to_json()
    current_app.extensions["shomei_requests"].answer(req.id, result, text, now=now)
    return str(result["verdict"])


def _cors(response: Response) -> Response:
    """A wallet in a browser posts from its own origin."""
    allowed = current_app.config.get("WALLET_ORIGINS") or ["*"]
    origin = request.headers.get("Origin", "")
    if "*" in allowed:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    return response
