"""One security-headers hook for every app: the app names its policy, the hook sets
the headers on every response that has not set them itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Response

if TYPE_CHECKING:
    from flask import Flask


def _never() -> str | None:
    return None


@dataclass(frozen=True, kw_only=True)
class HeaderPolicy:
    """What one app sends. ``cache_control`` is called per response: the value it
    returns replaces the response's own Cache-Control (None keeps it), so an app can
    keep personal data out of every cache."""

    csp: str
    referrer: str = "no-referrer"
    permissions: str | None = None
    cache_control: Callable[[], str | None] = _never
    cache_default: str | None = None


def apply(response: Response, policy: HeaderPolicy) -> Response:
    """Set ``policy``'s headers on ``response`` (those it already has are kept, except
    Cache-Control when the policy forces one). Returns ``response``."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", policy.csp)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", policy.referrer)
    if policy.permissions:
        headers.setdefault("Permissions-Policy", policy.permissions)
    forced = policy.cache_control()
    if forced is not None:
        headers["Cache-Control"] = forced
    elif policy.cache_default is not None:
        headers.setdefault("Cache-Control", policy.cache_default)
    return response


def install_headers(app: Flask, policy: HeaderPolicy) -> None:
    """Apply ``policy`` to every response of ``app``."""
    app.after_request(lambda response: apply(response, policy))
