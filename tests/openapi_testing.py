"""The routes of an app against the operations its OpenAPI document describes."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def routes(app: Flask) -> set[tuple[str, str]]:
    """Every (method, OpenAPI path) the app answers, ``<int:id>`` written ``{id}``."""
    found = set()
    for rule in app.url_map.iter_rules():
        path = _PARAM.sub(r"{\1}", rule.rule)
        found |= {(m, path) for m in (rule.methods or set()) & _METHODS}
    return found


def described(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (method, path) the document describes."""
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method.upper() in _METHODS
    }
