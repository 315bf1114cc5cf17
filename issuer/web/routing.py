"""Bounded URL converters and text: a path parameter that could not name a row is a 404
at routing, a NUL in the query or a form a 400, before any view or query sees them.

Werkzeug's own ``int`` takes any number of digits (SQLite overflows past 2**63 - 1,
PostgreSQL's ``integer`` past 2**31 - 1: a 500 either way) and its default string
converter any character but ``/`` (PostgreSQL refuses a NUL in text: a 500 again).
``init_app`` replaces both for every rule of the app, and refuses a NUL in any query or
form value, so no route or form can forget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import request
from werkzeug.routing import IntegerConverter, Map, UnicodeConverter

from issuer.web.helpers import abort_with

if TYPE_CHECKING:
    from flask import Flask

#: The largest id a route accepts: PostgreSQL's ``integer`` (our primary keys).
MAX_ID = 2**31 - 1
#: The longest path segment a route accepts (ids, tokens and names are far shorter).
MAX_SEGMENT = 200
#: A path segment: no slash, no control character (C0, DEL), 1..MAX_SEGMENT long.
_SEGMENT = r"[^/\x00-\x1f\x7f]"


class BoundedInt(IntegerConverter):
    """``<int:x>``: 0..MAX_ID written with at most 10 ASCII digits (``max=`` may lower
    the bound, never raise it)."""

    regex = r"[0-9]{1,10}"

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = None,
        signed: bool = False,
    ) -> None:
        bound = MAX_ID if max is None else _smaller(max, MAX_ID)
        super().__init__(map, fixed_digits, min, bound, signed)


class Segment(UnicodeConverter):
    """The default ``<x>`` / ``<string:x>``: one path segment of printable characters,
    at most MAX_SEGMENT long (``maxlength=`` may lower it)."""

    def __init__(
        self,
        map: Map,
        minlength: int = 1,
        maxlength: int | None = None,
        length: int | None = None,
    ) -> None:
        super().__init__(map, minlength, maxlength, length)
        if length is not None:
            repeat = f"{{{int(length)}}}"
        else:
            upper = MAX_SEGMENT if maxlength is None else _smaller(int(maxlength), MAX_SEGMENT)
            repeat = f"{{{int(minlength)},{upper}}}"
        self.regex = _SEGMENT + repeat


def _smaller(a: int, b: int) -> int:
    return a if a < b else b


def bounded_int(text: str | None, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """``text`` as an int in ``minimum..maximum`` when it is a plain decimal number
    (ASCII digits, at most 10), else None: for query parameters."""
    if text is None or not 1 <= len(text) <= 10 or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def refuse_nul() -> None:
    """400 when a query or form field (name or value) holds a NUL: no text column can
    store one (PostgreSQL refuses it) and no page of ours asks for one."""
    if request.routing_exception is not None:
        return
    for fields in (request.args, request.form):
        for name, value in fields.items(multi=True):
            if "\x00" in name or "\x00" in value:
                abort_with(
                    400,
                    "送信された内容に使えない文字（NUL）が含まれています",
                    "the request contains a character that cannot be used (NUL)",
                )


def init_app(app: Flask) -> None:
    """Install the bounded converters (call before any blueprint is registered) and
    the NUL check."""
    app.url_map.converters["int"] = BoundedInt
    app.url_map.converters["default"] = Segment
    app.url_map.converters["string"] = Segment
    app.before_request(refuse_nul)
