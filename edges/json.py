"""Request bodies as JSON, on a budget: every app's ``request.get_json()`` goes through
:func:`credentials.encoding.loads_bounded` (duplicate names refused, nesting bounded
before any recursive code sees it). A body that fails is Flask's 400, never a crash."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from credentials.encoding import loads_bounded


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with the bounded, strict reader; writing is Flask's."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads_bounded(s)


def install(app: Flask) -> None:
    """Make ``app`` read JSON bodies with :class:`BoundedJSONProvider`."""
    app.json = BoundedJSONProvider(app)
