"""The verifier's language: the project's one convention (:mod:`edges.i18n`), chosen
per request from ``?lang=`` because the verifier keeps nothing between requests."""

from __future__ import annotations

from edges.i18n import LANGUAGES, choose, pick

LANGS = LANGUAGES

__all__ = ["LANGS", "choose", "pick"]
