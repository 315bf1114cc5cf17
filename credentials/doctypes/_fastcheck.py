"""A validity check compiled from a document-type schema, for the issuance hot path.

jsonschema walks a 12-claim document in a few hundred microseconds; issuance has about
a hundred for everything. This module turns the small keyword subset our schemas use
into nested closures that agree with jsonschema on every input, and adds the checks a
schema cannot express (real dates, check digits, no floats for integers). Any keyword
outside the subset makes :func:`compile_schema` fail, so the schema cannot silently
outgrow the compiled check; the tests compare both on generated inputs.

A check is called as ``check(value, path, issues)``. With ``issues=None`` it returns at
the first failure (fast path). With a list it walks everything and appends
``(path, kind)`` for the *semantic* failures only; structural ones are left to
jsonschema, whose errors carry the keyword that failed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from .._b64 import b64d
from .codes import is_valid_corporate_number, is_valid_municipality_code
from .dates import parse_datetime

Path = tuple[str | int, ...]
Issue = tuple[Path, str]
Check = Callable[[Any, Path, list[Issue] | None], bool]

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$anchor", "$defs", "$comment", "title", "description", "examples"}
)
# "format" is an annotation too: jsonschema asserts it only when given a format checker.
_KEYWORDS = {
    "string": frozenset({"type", "minLength", "maxLength", "pattern", "enum", "format"}),
    "integer": frozenset({"type", "minimum", "maximum"}),
    "boolean": frozenset({"type"}),
    "object": frozenset({"type", "properties", "required", "additionalProperties"}),
    "array": frozenset({"type", "items", "minItems", "maxItems", "uniqueItems"}),
}
_UNBOUNDED = 1 << 62


def _is_date(text: str) -> bool:
    # The schema pattern has already fixed the shape YYYY-MM-DD, the one spelling on
    # which fromisoformat and the calendar agree.
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_datetime(text: str) -> bool:
    try:
        parse_datetime(text)
    except ValueError:
        return False
    return True


def _is_base64url(text: str) -> bool:
    # Non-canonical trailing bits would give one signature two spellings.
    try:
        b64d(text)
    except ValueError:
        return False
    return True


# Semantic checks by the $anchor of the schema node they apply to; the anchor is also
# the message kind when the check fails.
SEMANTIC: dict[str, Callable[[str], bool]] = {
    "date": _is_date,
    "datetime": _is_datetime,
    "municipality_code": is_valid_municipality_code,
    "corporate_number": is_valid_corporate_number,
    "thumbprint": _is_base64url,
    "base64url": _is_base64url,
}


def compile_schema(schema: Mapping[str, Any]) -> Check:
    """Return the compiled check of ``schema`` (see the module docstring).

    Raises ``ValueError`` for a keyword or reference the compiler does not support.
    """
    defs: Mapping[str, Any] = schema.get("$defs", {})
    cache: dict[str, Check] = {}

    def node(sub: Mapping[str, Any]) -> Check:
        if "$ref" in sub:
            return ref(sub)
        kind = sub.get("type")
        if kind not in _KEYWORDS:
            raise ValueError(f"unsupported or missing type {kind!r}")
        unknown = set(sub) - _KEYWORDS[kind] - _ANNOTATIONS
        if unknown:
            raise ValueError(f"unsupported keywords {sorted(unknown)}")
        builders = {
            "string": _string,
            "integer": _integer,
            "boolean": _boolean,
            "object": _object,
            "array": _array,
        }
        return builders[kind](sub, node)

    def ref(sub: Mapping[str, Any]) -> Check:
        target = sub["$ref"]
        if set(sub) - {"$ref"} - _ANNOTATIONS or not target.startswith("#/$defs/"):
            raise ValueError(f"unsupported reference {sub!r}")
        name = target.removeprefix("#/$defs/")
        if name not in cache:
            cache[name] = node(defs[name])
        return cache[name]

    return node(schema)


def _string(sub: Mapping[str, Any], _node: Callable[[Mapping[str, Any]], Check]) -> Check:
    low = sub.get("minLength", 0)
    high = sub.get("maxLength", _UNBOUNDED)
    # jsonschema applies "pattern" with re.search; so must we.
    search = re.compile(sub["pattern"]).search if "pattern" in sub else None
    choices = frozenset(sub["enum"]) if "enum" in sub else None
    if choices is not None and not all(isinstance(c, str) for c in choices):
        raise ValueError("only string enums are supported")
    kind = sub.get("$anchor", "")
    semantic = SEMANTIC.get(kind)

    def check(value: Any, path: Path, issues: list[Issue] | None) -> bool:
        if (
            not isinstance(value, str)
            or not low <= len(value) <= high
            or (search is not None and search(value) is None)
            or (choices is not None and value not in choices)
        ):
            return False
        if semantic is not None and not semantic(value):
            if issues is not None:
                issues.append((path, kind))
            return False
        return True

    return check


def _integer(sub: Mapping[str, Any], _node: Callable[[Mapping[str, Any]], Check]) -> Check:
    low = sub.get("minimum", -_UNBOUNDED)
    high = sub.get("maximum", _UNBOUNDED)

    def check(value: Any, path: Path, issues: list[Issue] | None) -> bool:
        # jsonschema counts 1.0 as an integer; a credential must not carry it (its
        # disclosure would read "1.0"), so a float is a semantic failure here.
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if isinstance(value, float) and not value.is_integer():
            return False
        if not low <= value <= high:
            return False
        if isinstance(value, float):
            if issues is not None:
                issues.append((path, "integer"))
            return False
        return True

    return check


def _boolean(_sub: Mapping[str, Any], _node: Callable[[Mapping[str, Any]], Check]) -> Check:
    def check(value: Any, _path: Path, _issues: list[Issue] | None) -> bool:
        return isinstance(value, bool)

    return check


def _object(sub: Mapping[str, Any], node: Callable[[Mapping[str, Any]], Check]) -> Check:
    if sub.get("additionalProperties", True) is not False:
        raise ValueError("objects must set additionalProperties: false")
    properties = {name: node(s) for name, s in sub.get("properties", {}).items()}
    required = frozenset(sub.get("required", ()))

    def check(value: Any, path: Path, issues: list[Issue] | None) -> bool:
        if not isinstance(value, dict):
            return False
        ok = value.keys() >= required
        if not ok and issues is None:
            return False
        for name, item in value.items():
            prop = properties.get(name)
            if prop is None:
                if issues is None:
                    return False
                ok = False
            elif not prop(item, path if issues is None else (*path, name), issues):
                if issues is None:
                    return False
                ok = False
        return ok

    return check


def _unique(items: list[Any]) -> bool:
    try:
        return len(set(items)) == len(items)
    except TypeError:  # unhashable items fail the item check anyway
        return all(a != b for i, a in enumerate(items) for b in items[i + 1 :])


def _array(sub: Mapping[str, Any], node: Callable[[Mapping[str, Any]], Check]) -> Check:
    item_check = node(sub["items"]) if "items" in sub else None
    low = sub.get("minItems", 0)
    high = sub.get("maxItems", _UNBOUNDED)
    unique = sub.get("uniqueItems", False)

    def check(value: Any, path: Path, issues: list[Issue] | None) -> bool:
        if not isinstance(value, list):
            return False
        ok = low <= len(value) <= high and (not unique or _unique(value))
        if not ok and issues is None:
            return False
        if item_check is not None:
            for index, item in enumerate(value):
                if not item_check(item, path if issues is None else (*path, index), issues):
                    if issues is None:
                        return False
                    ok = False
        return ok

    return check
