"""Messages for people: every validation failure as (field path, ja, en).

jsonschema's own messages are English and show Python reprs; a clerk needs the field's
Japanese label and what to type instead. Each failure is first reduced to a *kind*
(``"required"``, ``"date"``, ``"too_long"``...) and a few parameters, then phrased here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ._fastcheck import Path

Labels = Mapping[tuple[str | None, ...], tuple[str, str]]
Message = tuple[Path, str, str]

# A credential is shown to third parties, who may not collect these numbers (番号法
# §19-20, 住民基本台帳法 §30の37-38); refused with that reason, not as unknown fields.
FORBIDDEN: dict[str, tuple[str, str]] = {
    "my_number": ("個人番号（マイナンバー）", "Individual Number (My Number)"),
    "individual_number": ("個人番号（マイナンバー）", "Individual Number (My Number)"),
    "juminhyo_code": ("住民票コード", "Resident record code"),
}
_BY_LAW = ("法令により記載できません", "may not appear on a certificate by law")

_TEXT: dict[str, tuple[str, str]] = {
    "required": ("必須項目です", "required"),
    "empty": ("入力してください", "must not be empty"),
    "type:string": ("文字で入力してください", "must be text"),
    "type:integer": ("整数で入力してください", "must be a whole number"),
    "type:object": ("項目の組（オブジェクト）で入力してください", "must be an object"),
    "type:array": ("一覧（配列）で入力してください", "must be a list"),
    "integer": ("小数点のない整数で入力してください", "must be a whole number, not a decimal"),
    "duplicate": ("同じ値が重複しています", "contains duplicates"),
    "line": ("改行や制御文字は使えません", "must be one line without control characters"),
    "kana": ("全角カタカナで入力してください", "must be full-width katakana"),
    "date": ("日付が正しくありません（例: 1980-04-01）", "not a valid date (e.g. 1980-04-01)"),
    "datetime": (
        "日時が正しくありません（例: 2025-10-06T10:30:00+09:00）",
        "not a valid date and time (e.g. 2025-10-06T10:30:00+09:00)",
    ),
    "municipality_code": (
        "正しくありません（6桁の数字で末尾はチェックディジット。例: 402052）",
        "not a valid local government code (6 digits, the last a check digit, e.g. 402052)",
    ),
    "corporate_number": (
        "正しくありません（13桁の数字で先頭はチェックディジット）",
        "not a valid corporate number (13 digits, the first a check digit)",
    ),
    "sha256": (
        "SHA-256ハッシュ値（16進数小文字64桁）で入力してください",
        "must be a SHA-256 digest (64 lowercase hex digits)",
    ),
    "thumbprint": (
        "JWKサムプリント（base64url形式43文字）で入力してください",
        "must be a JWK thumbprint (43 base64url characters)",
    ),
    "base64url": (
        "base64url形式（パディングなし）で入力してください",
        "must be unpadded base64url",
    ),
    "period_order": ("工期開始日より前の日付です", "is before the period start"),
    "duplicate_party": ("同じ当事者の署名が重複しています", "the same party signed twice"),
    "invalid": ("入力内容が正しくありません", "invalid value"),
}
# Free-text anchors share one pattern: a single line without control characters.
_PATTERN_KIND = dict.fromkeys(
    ("name", "address", "relationship", "identifier", "entity_name", "text"), "line"
)

_SEGMENT = re.compile(r"([^.\[\]]+)|\[([0-9]+)\]")


def path_text(path: Path) -> str:
    """Return ``path`` as callers write it: ``children[0].birthdate``."""
    out = ""
    for seg in path:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else seg)
    return out


def parse_path(text: str) -> Path:
    """Return the segments of ``children[0].birthdate``; raise ``ValueError`` if malformed."""
    path: list[str | int] = []
    end = 0
    for match in _SEGMENT.finditer(text):
        name, index = match.groups()
        # A name follows a dot (or starts the path); an index follows directly.
        expected = ("." if path else "") if name is not None else ""
        if text[end : match.start()] != expected or (index is not None and not path):
            raise ValueError(f"malformed claim path {text!r}")
        path.append(name if name is not None else int(index))
        end = match.end()
    if not path or end != len(text):
        raise ValueError(f"malformed claim path {text!r}")
    return tuple(path)


def describe(path: Path, labels: Labels) -> tuple[str, str] | None:
    """Return the (ja, en) label of ``path`` with item numbers, or None if unlabelled.

    ``children[0].birthdate`` reads ``子の生年月日（1件目）``; an item of a list whose
    items have no label of their own (``recognized_by[2]``) takes the list's label.
    """
    key = tuple(None if isinstance(s, int) else s for s in path)
    while key and key not in labels and key[-1] is None:
        key = key[:-1]
    found = labels.get(key)
    if found is None:
        return None
    numbers = [s + 1 for s in path if isinstance(s, int)]
    ja = found[0] + "".join(f"（{n}件目）" for n in numbers)
    en = found[1] + "".join(f" (item {n})" for n in numbers)
    return ja, en


def phrase(path: Path, kind: str, labels: Labels, **params: Any) -> Message:
    """Return the message for a failure of ``kind`` at ``path``."""
    ja, en = _text(kind, params)
    named = describe(path, labels)
    if named is None:
        return path, f"{path_text(path)}: {ja}", f"{path_text(path)}: {en}"
    return path, f"{named[0]}: {ja}", f"{named[1]}: {en}"


def _text(kind: str, params: Mapping[str, Any]) -> tuple[str, str]:
    n = params.get("n")
    if kind == "too_long":
        return f"{n}文字以内で入力してください", f"must be at most {n} characters"
    if kind == "too_short":
        return f"{n}文字以上で入力してください", f"must be at least {n} characters"
    if kind == "too_few":
        return f"{n}件以上必要です", f"needs at least {n} item(s)"
    if kind == "too_many":
        return f"{n}件以内にしてください", f"allows at most {n} items"
    if kind == "minimum":
        return f"{n:,}以上にしてください", f"must be at least {n:,}"
    if kind == "maximum":
        return f"{n:,}以下にしてください", f"must be at most {n:,}"
    if kind == "enum":
        choices = params["choices"]
        return (
            f"次のいずれかを選んでください: {'、'.join(choices)}",
            f"must be one of: {', '.join(choices)}",
        )
    return _TEXT.get(kind, _TEXT["invalid"])


def extra_field(path: Path) -> Message:
    """Return the message for a field the schema does not allow."""
    name = path[-1]
    if isinstance(name, str) and name in FORBIDDEN:
        ja, en = FORBIDDEN[name]
        return path, f"{ja}: {_BY_LAW[0]}", f"{en}: {_BY_LAW[1]}"
    return path, f"「{name}」という項目は使えません", f'unknown field "{name}"'


def from_schema_error(error: Any, labels: Labels) -> Iterator[Message]:
    """Yield the messages for one jsonschema ``ValidationError``."""
    keyword, value, instance = error.validator, error.validator_value, error.instance
    path: Path = tuple(error.absolute_path)
    if keyword == "required":
        for name in value:
            if name not in instance:
                yield phrase((*path, name), "required", labels)
    elif keyword == "additionalProperties":
        allowed = error.schema.get("properties", {})
        for name in instance:
            if name not in allowed:
                yield extra_field((*path, name))
    else:
        kind, params = _keyword_kind(keyword, value, error.schema)
        yield phrase(path, kind, labels, **params)


def _keyword_kind(
    keyword: str, value: Any, schema: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    simple = {
        "maxLength": "too_long",
        "minItems": "too_few",
        "maxItems": "too_many",
        "minimum": "minimum",
        "maximum": "maximum",
    }
    if keyword in simple:
        return simple[keyword], {"n": value}
    if keyword == "type":
        return f"type:{value}", {}
    if keyword == "minLength":
        return "empty" if value == 1 else "too_short", {"n": value}
    if keyword == "pattern":
        anchor = schema.get("$anchor", "")
        return _PATTERN_KIND.get(anchor, anchor), {}
    if keyword == "enum":
        return "enum", {"choices": [str(c) for c in value]}
    if keyword == "uniqueItems":
        return "duplicate", {}
    return "invalid", {}
