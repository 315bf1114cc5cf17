"""The clerk's certificate forms: which fields, their labels, and form data -> claims.

No Flask: ``claims_from_form`` takes any mapping of field names to strings (a
``request.form``). Empty fields are left out, so a missing required field is reported
by the document type's validation like any other error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from credentials import doctypes

CHILD_ROWS = 3
CHILD_PARTS = ("family_name", "given_name", "birthdate")
_CODES = re.compile(r"[\s,、，]+")


@dataclass(frozen=True, kw_only=True)
class Field:
    name: str  # the claim name, also the form field's name
    kind: str  # "text", "date", "sex", "codes"
    required: bool
    group: str = ""  # "household" or "domicile": issued only when asked


def fields(doc_type: str) -> list[Field]:
    """The form's top-level fields, in schema order (partnership children apart; a
    住民票's ``age_equal_or_over`` is the issuer's to compute, not a field)."""
    dt = doctypes.get(doc_type)
    required = set(dt.schema.get("required", ()))
    out = []
    for name, spec in dt.schema["properties"].items():
        if name in ("children", doctypes.AGE_CLAIM):
            continue
        ref = spec.get("$ref", "")
        kind = "date" if ref.endswith("/date") else "sex" if ref.endswith("/sex") else "text"
        if name == "recognized_by":
            kind = "codes"
        group = (
            "household"
            if name in ("head_of_household", "relationship_to_head")
            else "domicile"
            if name in ("registered_domicile", "domicile_head")
            else ""
        )
        out.append(Field(name=name, kind=kind, required=name in required, group=group))
    return out


def claims_from_form(doc_type: str, form: Mapping[str, str]) -> dict[str, Any]:
    """The claims the form carries (strings stripped, empty fields left out)."""
    claims: dict[str, Any] = {}
    for f in fields(doc_type):
        value = (form.get(f.name) or "").strip()
        if not value:
            continue
        claims[f.name] = [c for c in _CODES.split(value) if c] if f.kind == "codes" else value
    if doc_type == "partnership":
        children = []
        for i in range(CHILD_ROWS):
            child = {part: (form.get(f"children-{i}-{part}") or "").strip() for part in CHILD_PARTS}
            if any(child.values()):
                children.append({k: v for k, v in child.items() if v})
        if children:
            claims["children"] = children
    return claims


def form_values(doc_type: str, claims: Mapping[str, Any]) -> dict[str, str]:
    """The form's field values for ``claims`` (to fill the form again)."""
    values = {}
    for name, value in claims.items():
        if name == "children" and isinstance(value, list):
            # Claims sent back by the browser may have any shape: only a child that
            # is an object has fields to fill.
            for i, child in enumerate(value):
                for part, v in child.items() if isinstance(child, dict) else ():
                    values[f"children-{i}-{part}"] = str(v)
        elif isinstance(value, list):
            values[name] = " ".join(str(v) for v in value)
        else:
            values[name] = str(value)
    return values


def field_errors(errors: list[tuple[str, str, str]]) -> dict[str, tuple[str, str]]:
    """Validation errors keyed by form field: ``children[1].birthdate`` ->
    ``children-1-birthdate``, ``recognized_by[2]`` -> ``recognized_by``, a whole-form
    error -> ``""``. The first message per field wins."""
    out: dict[str, tuple[str, str]] = {}
    for path, ja, en in errors:
        child = re.fullmatch(r"children\[(\d+)\]\.(\w+)", path)
        if child:
            key = f"children-{child.group(1)}-{child.group(2)}"
        else:
            key = re.split(r"[\[.]", path, maxsplit=1)[0]
        out.setdefault(key, (ja, en))
    return out
