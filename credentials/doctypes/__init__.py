"""The three document types: claims schema, SD-JWT VC type metadata, validation.

Each type ships two data files next to this module: ``<name>.schema.json`` (JSON Schema
2020-12 for the claims offered at issuance; ``iss``, ``iat``, ``exp``, ``vct``, ``cnf``
and ``status`` are the issuer's and not in it) and ``<name>.metadata.json`` (SD-JWT VC
Type Metadata with ja and en labels, its ``vct`` a ``{issuer}`` placeholder).

Selective disclosure is per top-level claim: every top-level claim is ``"sd": "always"``
except those in :attr:`DocumentType.never_disclosable`; a nested member (``period.start``,
``children[0].birthdate``) travels inside its parent's disclosure, hence ``"sd": "never"``
— except the members of the objects in :attr:`DocumentType.member_disclosable`
(a 住民票's ``age_equal_or_over``), each ``"sd": "always"`` with a disclosure of its own.
``age_equal_or_over`` is computed by the issuer (:mod:`.ages`), never entered.
Display entries carry both ``lang`` (type metadata up to draft -11) and ``locale``
(draft -12 on), so wallets of either generation find the labels.

Choices recorded here because they are API:

- ``sex`` is ``"男"`` or ``"女"``, as printed on a 住民票.
- Validity defaults: 住民票 92 days (the customary "within 3 months"); a partnership
  receipt has no legal expiry and is revoked when the partnership ends, so 3650 days
  bounds the credential instead; a contract 3650 days (beyond the usual record-keeping
  period for public works contracts).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator

from ..errors import ValidationError
from ._fastcheck import Check, Issue, Path, compile_schema
from ._messages import Labels, Message, describe, from_schema_error, parse_path, path_text, phrase
from ._rules import RULES
from .ages import AGE_THRESHOLDS, age_equal_or_over, age_on, issuance_date
from .codes import (
    corporate_number_check_digit,
    is_valid_corporate_number,
    is_valid_municipality_code,
    municipality_check_digit,
)
from .dates import format_date, parse_date, parse_datetime

__all__ = [
    "AGE_CLAIM",
    "AGE_THRESHOLDS",
    "DOCUMENT_TYPES",
    "SAMPLES",
    "DocumentType",
    "age_equal_or_over",
    "age_on",
    "corporate_number_check_digit",
    "format_date",
    "from_vct",
    "get",
    "is_valid_corporate_number",
    "is_valid_municipality_code",
    "issuance_date",
    "municipality_check_digit",
    "parse_date",
    "parse_datetime",
    "sample",
    "validate_claims",
]

AGE_CLAIM = "age_equal_or_over"

_NOT_AN_OBJECT = (
    "",
    "入力は項目名と値の組（JSONオブジェクト）にしてください",
    "claims must be a JSON object",
)


def _no_rules(_claims: dict[str, Any]) -> list[Issue]:
    return []


@dataclass(frozen=True, kw_only=True)
class DocumentType:
    """One kind of certificate: its claims schema, type metadata and issuance defaults.

    ``never_disclosable`` (top-level claims always issued in the clear) and
    ``member_disclosable`` (top-level objects whose members are disclosed one by one)
    are read from the metadata, so the two cannot disagree.
    """

    name: str
    schema: dict[str, Any] = field(repr=False, compare=False)
    metadata_template: dict[str, Any] = field(repr=False, compare=False)
    default_validity_days: int
    never_disclosable: frozenset[str] = field(init=False)
    member_disclosable: frozenset[str] = field(init=False)
    _check: Check = field(init=False, repr=False, compare=False)
    _validator: Any = field(init=False, repr=False, compare=False)
    _rule: Callable[[dict[str, Any]], list[Issue]] = field(init=False, repr=False, compare=False)
    _labels: Labels = field(init=False, repr=False, compare=False)
    _order: dict[tuple[str | None, ...], int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        claims = self.metadata_template["claims"]
        labels = {tuple(c["path"]): _ja_en(c["display"]) for c in claims}
        never = frozenset(
            c["path"][0] for c in claims if len(c["path"]) == 1 and c["sd"] == "never"
        )
        members = frozenset(
            c["path"][0] for c in claims if len(c["path"]) == 2 and c["sd"] == "always"
        )
        derived = {
            "never_disclosable": never,
            "member_disclosable": members,
            "_check": compile_schema(self.schema),
            "_validator": Draft202012Validator(self.schema),
            "_rule": RULES.get(self.name, _no_rules),
            "_labels": labels,
            "_order": {path: i for i, path in enumerate(labels)},
        }
        for attr, value in derived.items():
            object.__setattr__(self, attr, value)

    @property
    def claim_names(self) -> tuple[str, ...]:
        """Return the top-level claim names in schema order."""
        return tuple(self.schema["properties"])

    def title(self, lang: str = "ja") -> str:
        """Return the document's display name (``住民票の写し``) from the type metadata."""
        return _ja_en(self.metadata_template["display"], key="name")[_language_index(lang)]

    def vct_for(self, issuer: str) -> str:
        """Return this type's ``vct`` under ``issuer``: ``{issuer}/vct/{name}/1``."""
        return f"{issuer.rstrip('/')}/vct/{self.name}/1"

    def metadata(self, issuer: str) -> dict[str, Any]:
        """Return a fresh copy of the type metadata with ``vct`` set for ``issuer``."""
        document = copy.deepcopy(self.metadata_template)
        document["vct"] = self.vct_for(issuer)
        return document

    def label(self, path: str, lang: str = "ja") -> str:
        """Return the display label of a claim path (``"contractor.corporate_number"``).

        An item index (``"children[0].birthdate"``) adds its number to the label.
        ``lang`` is ``"ja"`` or ``"en"`` (a region such as ``"ja-JP"`` is ignored).
        Raises ``ValueError`` for an unknown claim, a malformed path or another language.
        """
        named = describe(parse_path(path), self._labels)
        if named is None:
            raise ValueError(f"{self.name} has no claim {path!r}")
        return named[_language_index(lang)]

    def validate(self, claims: object) -> dict[str, Any]:
        """Return ``claims`` with surrounding whitespace stripped from every string.

        Raises :class:`~credentials.errors.ValidationError` listing every offending
        field as ``(path, ja, en)``: missing, unknown or law-forbidden fields, wrong
        types, too long, not in the allowed values, malformed or impossible dates,
        bad check digits, and rules across fields (a period ending before it starts).
        """
        if not isinstance(claims, dict):
            raise ValidationError([_NOT_AN_OBJECT])
        normalized: dict[str, Any] = _strip(claims)
        if self._check(normalized, (), None) and not self._rule(normalized):
            return normalized
        raise ValidationError(self._diagnose(normalized))

    def _diagnose(self, claims: dict[str, Any]) -> list[tuple[str, str, str]]:
        found: list[Message] = []
        for error in self._validator.iter_errors(claims):
            found.extend(from_schema_error(error, self._labels))
        issues: list[Issue] = []
        self._check(claims, (), issues)
        issues.extend(self._rule(claims))
        found.extend(phrase(path, kind, self._labels) for path, kind in issues)
        first: dict[Path, Message] = {}
        for message in found:  # one message per field: the most basic problem comes first
            first.setdefault(message[0], message)
        if not first:  # the two checks disagree; never let that pass silently
            first[()] = ((), "入力内容が正しくありません", "invalid claims")
        ordered = sorted(first.values(), key=lambda m: self._sort_key(m[0]))
        return [(path_text(path), ja, en) for path, ja, en in ordered]

    def _sort_key(self, path: Path) -> tuple[list[int], str]:
        key: list[int] = []
        prefix: list[str | None] = []
        for segment in path:
            if isinstance(segment, int):
                prefix.append(None)
                key.append(segment)
            else:
                prefix.append(segment)
                key.append(self._order.get(tuple(prefix), len(self._order)))
        return key, path_text(path)


def _ja_en(display: list[dict[str, str]], key: str = "label") -> tuple[str, str]:
    by_lang = {d.get("lang", d.get("locale", "")).split("-")[0]: d[key] for d in display}
    return by_lang["ja"], by_lang["en"]


def _language_index(lang: str) -> int:
    primary = lang.split("-", 1)[0].lower()
    if primary not in ("ja", "en"):
        raise ValueError(f"unsupported language {lang!r}: use 'ja' or 'en'")
    return 0 if primary == "ja" else 1


def _strip(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return {k: v.strip() if isinstance(v, str) else _strip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _load_json(filename: str) -> Any:
    return json.loads(files(__name__).joinpath(filename).read_text(encoding="utf-8"))


def _load(name: str, validity_days: int) -> DocumentType:
    return DocumentType(
        name=name,
        schema=_load_json(f"{name}.schema.json"),
        metadata_template=_load_json(f"{name}.metadata.json"),
        default_validity_days=validity_days,
    )


DOCUMENT_TYPES: dict[str, DocumentType] = {
    name: _load(name, days)
    for name, days in (("juminhyo", 92), ("partnership", 3650), ("contract", 3650))
}

# Fictional people, companies and numbers (valid check digits), one per type. Shared:
# copy before changing, or use sample().
SAMPLES: dict[str, dict[str, Any]] = _load_json("samples.json")


def get(name: str) -> DocumentType:
    """Return the document type called ``name``; raise ``ValueError`` if there is none."""
    try:
        return DOCUMENT_TYPES[name]
    except KeyError:
        known = ", ".join(DOCUMENT_TYPES)
        raise ValueError(f"unknown document type {name!r} (known: {known})") from None


def from_vct(vct: str, issuer: str) -> DocumentType | None:
    """Return the type whose ``vct`` under ``issuer`` is exactly ``vct``, else None."""
    for doctype in DOCUMENT_TYPES.values():
        if doctype.vct_for(issuer) == vct:
            return doctype
    return None


def sample(name: str) -> dict[str, Any]:
    """Return a deep copy of the sample claims of ``name``; ``ValueError`` if unknown."""
    get(name)
    return copy.deepcopy(SAMPLES[name])


def validate_claims(name: str, claims: object) -> dict[str, Any]:
    """Return ``claims`` validated and normalized for document type ``name``.

    See :meth:`DocumentType.validate`. Raises ``ValueError`` for an unknown type and
    :class:`~credentials.errors.ValidationError` for invalid claims.
    """
    return get(name).validate(claims)
