"""The HTML form fuzzer of the three apps: find every state-changing route of an app
in its ``url_map``, read the fields of the forms its pages show for that route, and
generate requests to it with hypothesis (random text with control characters, huge
numbers, missing and repeated fields, random files, unknown fields; a valid CSRF token,
a wrong one or none). Zero 5xx is the bar."""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Flask
from hypothesis import strategies as st
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Rule

CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
INT64_MAX = 2**63 - 1


# ------------------------------------------------------------------ discovery
@dataclass
class Fields:
    """The fields the app's pages send to one route: name → input type, and the
    values a page offers (hidden values, options)."""

    types: dict[str, str] = field(default_factory=dict)
    offered: dict[str, list[str]] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, list[tuple[str, str, str]]]] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("method", "get").upper(), a.get("action", ""), []))
        elif not self.forms:
            return
        elif tag in ("input", "textarea", "button") and a.get("name"):
            kind = a.get("type", "text") if tag == "input" else tag
            self.forms[-1][2].append((a["name"], kind, a.get("value", "")))
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
        elif tag == "option" and self._select:
            self.forms[-1][2].append((self._select, "select", a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def state_changing_rules(app: Flask) -> list[Rule]:
    """Every route taking POST, PUT, PATCH or DELETE, in a fixed order."""
    rules = [r for r in app.url_map.iter_rules() if (r.methods or set()) & CHANGING]
    return sorted(rules, key=lambda r: (r.rule, r.endpoint))


def _filled(rule: Rule, seeds: Mapping[str, list[Any]], limit: int = 12) -> list[str]:
    """The rule's path with each combination of seeded arguments (at most ``limit``)."""
    if any(not seeds.get(name) for name in rule.arguments):
        return []
    names = sorted(rule.arguments)
    paths = []
    for values in itertools.islice(itertools.product(*(seeds[n] for n in names)), limit):
        try:
            built = rule.build(dict(zip(names, values, strict=True)), append_unknown=False)
        except (HTTPException, ValueError, TypeError):
            continue
        if built is not None:
            paths.append(built[1])
    return paths


def discover(
    app: Flask,
    clients: Iterable[Any],
    seeds: Mapping[str, list[Any]],
    extra: Iterable[tuple[str, str]] = (),
) -> dict[str, Fields]:
    """The fields of every form the app's pages show (each page read by each of
    ``clients``, its URL arguments from ``seeds``) and of the ``extra`` pages (path,
    HTML: pages that answer a POST), by the endpoint of the form's action."""
    pages = [
        path
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or set()) and rule.endpoint != "static"
        for path in _filled(rule, seeds)
    ]
    found: dict[str, Fields] = {}
    for client in clients:
        for page in pages:
            response = client.get(page)
            if response.mimetype == "text/html":
                _read_forms(app, page, response.get_data(as_text=True), found)
    for page, html in extra:
        _read_forms(app, page, html, found)
    return found


def _read_forms(app: Flask, page: str, html: str, found: dict[str, Fields]) -> None:
    adapter = app.url_map.bind("localhost")
    parser = _Forms()
    parser.feed(html)
    for method, action, inputs in parser.forms:
        if method != "POST":
            continue
        try:
            endpoint, _ = adapter.match(urlsplit(action or page).path, method="POST")
        except HTTPException:
            continue
        fields = found.setdefault(str(endpoint), Fields())
        for name, kind, value in inputs:
            fields.types.setdefault(name, kind)
            if value and value not in fields.offered.setdefault(name, []):
                fields.offered[name].append(value)


# ------------------------------------------------------------------ strategies
# No lone surrogates: no client can send them as UTF-8 (raw bodies cover bad bytes).
_CONTROL = st.characters(min_codepoint=0, max_codepoint=0x1F) | st.sampled_from(
    ["\x7f", "\u2028", "\ufeff", "\u202e", "\ud7ff", "\U0010ffff"]
)
_CHARACTERS = st.characters(exclude_categories=["Cs"])
#: Integers from a million up, beyond 64 bits too (hypothesis favours small values).
HUGE_INTEGERS = st.one_of(
    st.integers(min_value=10**6, max_value=INT64_MAX),
    st.integers(min_value=INT64_MAX, max_value=10**30),
    st.sampled_from([INT64_MAX, INT64_MAX + 1, 2**64, 10**20, 10**400]),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    HUGE_INTEGERS.map(str),
    st.sampled_from(["NaN", "inf", "-inf", "1e309", "0x10", "00", "-0", "１２", "1_000"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(_CONTROL | _CHARACTERS, max_size=40),
    st.just(""),
    st.integers(min_value=1000, max_value=20000).map(lambda n: "あ" * n),
    NUMBERS,
    st.sampled_from(["2026-02-30", "9999-12-31", "0000-00-00", "{}", "[]", "null", "%00"]),
)


def _file(good: list[bytes]) -> st.SearchStrategy[FileStorage]:
    content = st.one_of(
        st.binary(max_size=2048),
        st.sampled_from([b"%PDF-1.7\n", b"\x89PNG\r\n\x1a\n", b"%PDF-1.4\n1 0 obj<<>>endobj"]),
        *([st.sampled_from(good)] if good else []),
    )
    names = st.text(max_size=20) | st.sampled_from(["a.pdf", "a.png", "../../x", ""])
    types = st.sampled_from(["application/pdf", "image/png", "application/octet-stream", ""])
    return st.builds(
        lambda data, name, kind: FileStorage(io.BytesIO(data), filename=name, content_type=kind),
        content,
        names,
        types,
    )


def _fuzzed(known: list[Any]) -> st.SearchStrategy[list[Any]]:
    """A fuzzed field: missing, one random value (a file where text is expected, or
    text where a file is), or the field repeated."""
    text = [v for v in known if isinstance(v, str)]
    good = st.sampled_from(text) if text else st.just("")
    # Good values with random text around them get past the checks that random text
    # alone fails at the first character (a path, a date, a number).
    mutated = st.builds(lambda a, v, b: a + v + b, st.just("") | _TEXT, good, _TEXT)
    value = st.one_of(_TEXT, good, mutated)
    one: st.SearchStrategy[Any] = st.one_of(_file([]), value)
    return st.one_of(st.just([]), one.map(lambda v: [v]), st.lists(one, min_size=2, max_size=3))


def _kept(kind: str, known: list[Any]) -> st.SearchStrategy[list[Any]]:
    """A field the fuzz leaves alone: a value the page offers or a good one."""
    if kind == "file":
        return _file([v for v in known if isinstance(v, bytes)]).map(lambda v: [v])
    text = [v for v in known if isinstance(v, str)]
    return (st.sampled_from(text) if text else _TEXT).map(lambda v: [v])


@st.composite
def form_bodies(
    draw: st.DrawFn, fields: Fields, good: Mapping[str, list[Any]] | None = None
) -> MultiDict[str, Any]:
    """A body for a form with ``fields`` (without the CSRF token): most fields keep a
    value the page offers or a ``good`` one (bytes for files), up to three are
    fuzzed, and up to two unknown fields come along."""
    names = sorted(n for n in fields.types if n != "csrf_token")
    fuzzed = draw(st.sets(st.sampled_from(names), max_size=3)) if names else set()
    body: MultiDict[str, Any] = MultiDict()
    for name in names:
        known = [*fields.offered.get(name, []), *(good or {}).get(name, [])]
        kind = fields.types[name]
        for value in draw(_fuzzed(known) if name in fuzzed else _kept(kind, known)):
            body.add(name, value)
    for name in draw(st.lists(st.text(min_size=1, max_size=12), max_size=2)):
        body.add(name, draw(_TEXT))
    return body


def path_args(rule: Rule, seeds: Mapping[str, list[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Values of the rule's URL arguments: a real one (``seeds``) or a random one. Random
    integers start at a million: small ones could be the fuzzers' own accounts."""
    strategies = {}
    for name in sorted(rule.arguments):
        converter = rule._converters[name]
        if isinstance(converter, IntegerConverter):
            random: st.SearchStrategy[Any] = HUGE_INTEGERS
        else:
            random = st.text(min_size=1, max_size=60).filter(lambda s: s not in (".", ".."))
        real = seeds.get(name, [])
        strategies[name] = st.sampled_from(real) | random if real else random
    return st.fixed_dictionaries(strategies)


def url(rule: Rule, args: Mapping[str, Any]) -> str:
    """The rule's path with ``args`` (each quoted whole, so a ``/`` stays in its part)."""

    def part(match: re.Match[str]) -> str:
        return quote(str(args[match.group(1)]), safe="")

    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", part, rule.rule)


#: A body that is no well-formed form: random bytes under a form's content type.
RAW_BODIES = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.tuples(
        st.binary(max_size=512) | st.sampled_from([b"%ff%fe=%00", b"a=\xff\xfe", b"=&=&&"]),
        st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=latin-1",
                "multipart/form-data",
                "multipart/form-data; boundary=x",
                "application/json",
                "text/plain",
            ]
        ),
    ),
)


def send(
    client: Any,
    method: str,
    path: str,
    body: MultiDict[str, Any],
    *,
    multipart: bool,
    raw: tuple[bytes, str] | None = None,
    headers: Mapping[str, str] | None = None,
    **environ: str,
) -> Any:
    """Send ``body`` as a form (multipart, or URL-encoded when it carries no file), or
    the ``raw`` bytes with their content type instead."""
    if raw is not None:
        data, content_type = raw
        return client.open(
            path,
            method=method,
            data=data,
            content_type=content_type,
            headers=headers,
            environ_base=environ,
        )
    has_file = any(isinstance(v, FileStorage) for _, v in body.items(multi=True))
    if multipart or has_file:
        return client.open(
            path,
            method=method,
            data=body,
            content_type="multipart/form-data",
            environ_base=environ,
        )
    return client.open(path, method=method, data=body, environ_base=environ)


#: Query strings of a page request: the apps' own parameters and unknown ones.
QUERIES = st.lists(
    st.tuples(
        st.sampled_from(["lang", "page", "next", "container"]) | st.text(max_size=5),
        st.one_of(st.text(max_size=30), NUMBERS),
    ),
    max_size=3,
)


def rules_taking(app: Flask, method: str) -> list[Rule]:
    """The routes taking ``method`` (static files left out), in a fixed order."""
    rules = app.url_map.iter_rules()
    found = [r for r in rules if method in (r.methods or set()) and r.endpoint != "static"]
    return sorted(found, key=lambda r: (r.rule, r.endpoint))
