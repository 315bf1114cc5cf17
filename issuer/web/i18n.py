"""Japanese first, English on request: ``?lang=en`` (or ``ja``) is kept in the session
(the project's one convention, :mod:`edges.i18n`).

Templates get ``t(ja, en)`` (the text in the current language), ``lang`` and
``lang_url(code)`` (this page in another language), and the filters ``date`` (西暦 and
和暦) and ``datetime`` (JST).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import has_request_context, request, session

from credentials.doctypes import format_date
from credentials.encoding import JST
from edges.i18n import DEFAULT, LANGUAGES, choose, pick

if TYPE_CHECKING:
    from flask import Flask


def current_lang() -> str:
    if not has_request_context():
        return DEFAULT
    return choose(None, session.get("lang"))


def t(ja: str, en: str) -> str:
    """``ja`` or ``en``, in the language of this session."""
    return pick(current_lang(), ja, en)


def lang_url(code: str) -> str:
    """This page, switched to language ``code``."""
    args = {k: v for k, v in request.args.items() if k != "lang"}
    return f"{request.path}?{urlencode({**args, 'lang': code})}"


def datetime_filter(timestamp: float) -> str:
    """A moment for people: the date in 西暦 and 和暦, then the JST clock time."""
    moment = datetime.fromtimestamp(timestamp, JST)
    return f"{format_date(moment.date().isoformat(), current_lang())} {moment:%H:%M}"


def _pick_language() -> None:
    lang = request.args.get("lang")
    if lang in LANGUAGES:
        session["lang"] = lang


def _template_context() -> dict[str, Any]:
    return {"t": t, "lang": current_lang(), "lang_url": lang_url}


def init_app(app: Flask) -> None:
    app.before_request(_pick_language)
    app.context_processor(_template_context)
    app.jinja_env.filters["date"] = lambda iso: format_date(iso, current_lang())
    app.jinja_env.filters["datetime"] = datetime_filter
