"""The issuer's security headers: strict CSP, and never cached while a clerk is signed
in (those pages may show personal data)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import g

from edges.headers import HeaderPolicy, install_headers

if TYPE_CHECKING:
    from flask import Flask

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def _signed_in_no_store() -> str | None:
    return "no-store" if g.get("user") is not None else None


POLICY = HeaderPolicy(csp=CSP, referrer="same-origin", cache_control=_signed_in_no_store)


def init_app(app: Flask) -> None:
    install_headers(app, POLICY)
