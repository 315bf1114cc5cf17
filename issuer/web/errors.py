"""Error pages: every HTTP error is a friendly page in Japanese and English, never a
stack trace. Unexpected exceptions are logged and shown as a plain 500."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from flask import render_template, request
from werkzeug.exceptions import HTTPException, ServiceUnavailable

import issuer.accounts.passwords as passwords
from edges.errors import from_http, json_error, keep_allow

if TYPE_CHECKING:
    from flask import Flask
    from flask.typing import ResponseReturnValue

# code: (title ja, title en, message ja, message en)
PAGES: dict[int, tuple[str, str, str, str]] = {
    400: (
        "リクエストが正しくありません",
        "Bad request",
        "送信された内容を処理できませんでした。ページを開き直してからもう一度お試しください。",
        "The request could not be processed. Reload the page and try again.",
    ),
    403: (
        "権限がありません",
        "Forbidden",
        "この操作には監督者（スーパーバイザー）の権限が必要です。",
        "This action needs a supervisor account.",
    ),
    404: (
        "ページが見つかりません",
        "Page not found",
        "お探しのページは存在しないか、移動しました。",
        "The page does not exist or has moved.",
    ),
    405: (
        "この方法では利用できません",
        "Method not allowed",
        "このページはこの方法では利用できません。",
        "This page cannot be used this way.",
    ),
    409: (
        "この操作はできません",
        "Not possible",
        "この証明書の状態では、この操作はできません。",
        "This cannot be done in the certificate's present state.",
    ),
    413: (
        "送信データが大きすぎます",
        "Request too large",
        "送信された内容が大きすぎます。内容を減らしてもう一度お試しください。",
        "The request is too large. Send less data and try again.",
    ),
    429: (
        "しばらくお待ちください",
        "Too many requests",
        "短時間に多くの操作がありました。しばらくしてからもう一度お試しください。",
        "Too many requests in a short time. Please wait and try again.",
    ),
    503: (
        "ただいま利用できません",
        "Service unavailable",
        "この機能は準備ができていません。システム担当者に連絡してください。",
        "This service is not ready. Contact the system administrator.",
    ),
    500: (
        "システムエラー",
        "Internal error",
        "処理中に問題が発生しました。時間をおいてもう一度お試しください。"
        "解決しない場合はシステム担当者に連絡してください。",
        "Something went wrong. Try again later, or contact the system administrator.",
    ),
}


#: Machine-facing paths (wallets, verifiers): their errors are JSON, never a page.
API_PREFIXES = ("/oid4vci/", "/.well-known/", "/status/", "/vct/", "/api/")
#: OAuth endpoints answer in the shape RFC 6749 §5.2 prescribes; the rest of the API
#: in the project's one JSON error document (``edges.errors``).
OAUTH_PATHS = ("/oid4vci/token", "/oid4vci/nonce", "/oid4vci/credential")
_OAUTH_CODES = {400: "invalid_request", 404: "not_found", 405: "invalid_request"}


def render_error(error: HTTPException) -> ResponseReturnValue:
    code = error.code or 500
    title_ja, title_en, message_ja, message_en = PAGES.get(code, PAGES[500 if code >= 500 else 400])
    if request.path.startswith(API_PREFIXES) and request.path not in OAUTH_PATHS:
        return keep_allow(error, json_error(from_http(error)))
    if request.path.startswith(API_PREFIXES):
        response = error.get_response()
        response.set_data(
            json.dumps(
                {
                    "error": _OAUTH_CODES.get(code, "server_error" if code >= 500 else "error"),
                    "error_description": getattr(error, "en", message_en),
                }
            )
        )
        response.content_type = "application/json"
        return response
    context = {
        "code": code,
        "title_ja": title_ja,
        "title_en": title_en,
        "message_ja": getattr(error, "ja", message_ja),
        "message_en": getattr(error, "en", message_en),
    }
    response = error.get_response()
    response.set_data(render_template("issuer/web/error.html", **context))
    response.content_type = "text/html; charset=utf-8"
    return response


def render_busy(error: passwords.Busy) -> ResponseReturnValue:
    """Every password-hashing turn was taken: 503 with ``Retry-After``, whichever view
    was hashing (sign-in, adding a user, resetting a password)."""
    unavailable = ServiceUnavailable(description=error.en, retry_after=error.retry_after)
    unavailable.ja = error.ja  # type: ignore[attr-defined]
    unavailable.en = error.en  # type: ignore[attr-defined]
    return render_error(unavailable)


def init_app(app: Flask) -> None:
    # Flask turns an unhandled exception into an InternalServerError (after logging
    # it with its traceback), which lands here too; under TESTING it propagates.
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(passwords.Busy, render_busy)
