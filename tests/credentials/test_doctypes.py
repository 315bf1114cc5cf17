"""Document types: schemas, metadata, validation messages, check digits, 和暦."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from credentials import doctypes
from credentials.doctypes import (
    DOCUMENT_TYPES,
    SAMPLES,
    corporate_number_check_digit,
    format_date,
    from_vct,
    get,
    is_valid_corporate_number,
    is_valid_municipality_code,
    municipality_check_digit,
    parse_date,
    parse_datetime,
    sample,
    validate_claims,
)
from credentials.doctypes._fastcheck import compile_schema
from credentials.errors import ValidationError

ISSUER = "https://city.example/iizuka"
DELETE = object()
# jsonschema's own wording must never reach a person.
JSONSCHEMA_ENGLISH = re.compile(r"is a required property|does not match|is not of type|too long")
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _set(claims: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with DELETE remove) the value at ``a.b[0].c`` inside ``claims``."""
    segments = [int(s) if s.isdigit() else s for s in re.findall(r"[^.\[\]]+", path)]
    parent: Any = claims
    for segment in segments[:-1]:
        parent = parent[segment]
    if value is DELETE:
        del parent[segments[-1]]
    else:
        parent[segments[-1]] = value


def _errors(name: str, changes: dict[str, Any]) -> list[tuple[str, str, str]]:
    claims = sample(name)
    for path, value in changes.items():
        _set(claims, path, value)
    with pytest.raises(ValidationError) as caught:
        validate_claims(name, claims)
    return caught.value.errors


# --- samples and normalization ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOCUMENT_TYPES))
def test_every_sample_validates_unchanged(name: str) -> None:
    assert validate_claims(name, SAMPLES[name]) == SAMPLES[name]


def test_juminhyo_sample_has_the_twelve_claims_of_the_benchmark() -> None:
    assert list(SAMPLES["juminhyo"]) == [
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "birthdate",
        "sex",
        "address",
        "resident_since",
        "address_since",
        "notified_on",
        "previous_address",
        "head_of_household",
    ]


def test_validation_strips_surrounding_whitespace_only_and_leaves_input_alone() -> None:
    claims = sample("partnership")
    claims["holder_family_name"] = "\u3000佐藤 "
    claims["children"][0]["given_name"] = " 陽向\t"
    claims["address"] = " 福岡県飯塚市立岩5678番地　"
    original = copy.deepcopy(claims)
    result = validate_claims("partnership", claims)
    assert result == SAMPLES["partnership"]
    assert claims == original
    assert result is not claims


def test_sample_returns_an_independent_copy() -> None:
    copy_ = sample("contract")
    copy_["period"]["end"] = "2000-01-01"
    assert SAMPLES["contract"]["period"]["end"] == "2026-03-19"


# --- invalid inputs: path and Japanese message per case ------------------------------
# Rows: (path to change, new value or DELETE, expected Japanese message[, error path if
# not the changed one]), applied to the type's sample.

_JUMINHYO_INVALID: list[tuple[Any, ...]] = [
    ("family_name", DELETE, "氏: 必須項目です"),
    ("birthdate", "2025-02-30", "生年月日: 日付が正しくありません"),
    ("birthdate", "2023-02-29", "日付が正しくありません（例: 1980-04-01）"),
    ("birthdate", "1980/04/01", "日付が正しくありません"),
    ("birthdate", "１９８０-０４-０１", "日付が正しくありません"),
    ("address_since", "20190501", "住所を定めた年月日: 日付"),
    ("notified_on", 20190510, "届出日: 文字で入力してください"),
    ("sex", "M", "性別: 次のいずれかを選んでください: 男、女"),
    ("family_name", "x" * 51, "氏: 50文字以内で入力してください"),
    ("address", "番" * 201, "住所: 200文字以内で入力してください"),
    ("family_name", "", "氏: 入力してください"),
    ("given_name", "\u3000 ", "名: 入力してください"),
    ("given_name", None, "名: 文字で入力してください"),
    ("family_name_kana", "やまだ", "全角カタカナで入力"),
    ("family_name_kana", "ﾔﾏﾀﾞ", "氏（フリガナ）: 全角カタカナ"),
    ("given_name_kana", "Taro", "全角カタカナで入力"),
    ("address", "福岡県\n飯塚市", "住所: 改行や制御文字は使えません"),
    ("relationship_to_head", "妻" * 21, "続柄: 20文字"),
    ("registered_domicile", ["福岡県"], "本籍: 文字で"),
    ("nickname", "タロー", "「nickname」という項目は使えません"),
    ("my_number", "123456789018", "個人番号（マイナンバー）: 法令により"),
    ("individual_number", "1", "法令により記載できません"),
    ("juminhyo_code", "12345678901", "住民票コード: 法令により記載"),
]

_PARTNERSHIP_INVALID: list[tuple[Any, ...]] = [
    ("holder_birthdate", DELETE, "本人の生年月日: 必須項目"),
    ("partner_birthdate", "1992-11-31", "日付が正しくありません"),
    ("certificate_number", "x" * 51, "受領証番号: 50文字"),
    ("recognized_by", [], "連携自治体: 1件以上必要です"),
    ("recognized_by", "402052", "一覧（配列）で入力してください"),
    ("recognized_by[1]", "401306", "連携自治体（2件目）: 正しくありません"),
    ("recognized_by[1]", "40130", "末尾はチェックディジット"),
    ("recognized_by[1]", "402052", "同じ値が重複しています", "recognized_by"),
    ("children", {}, "子（ファミリーシップ）: 一覧（配列）"),
    ("children[0].given_name", DELETE, "子の名（1件目）: 必須"),
    ("children[0].birthdate", "2018-02-29", "子の生年月日（1件目）"),
    ("children[0].school", "x", "「school」という項目は使えません"),
    ("my_number", "1", "法令により記載できません"),
]

_CONTRACT_INVALID: list[tuple[Any, ...]] = [
    ("orderer", DELETE, "発注者: 必須項目です"),
    ("orderer.name", DELETE, "発注者名: 必須項目です"),
    ("orderer.municipality_code", "422012", "発注者の地方公共団体コード: 正しくありません"),
    ("contractor.corporate_number", "8310001234567", "法人番号: 正しくありません（13桁"),
    ("contractor.corporate_number", "310001234567", "先頭はチェックディジット"),
    ("contractor.representative", "y" * 101, "代表者: 100文字以内"),
    ("amount_jpy", -1, "契約金額（税込）: 0以上にしてください"),
    ("amount_jpy", 10**15, "999,999,999,999,999以下"),
    ("amount_jpy", 1.5, "整数で入力してください"),
    ("amount_jpy", 100.0, "小数点のない整数で入力してください"),
    ("amount_jpy", "12650000", "整数で入力してください"),
    ("amount_jpy", True, "整数で入力してください"),
    ("period.end", "2025-10-19", "工期終了日: 工期開始日より前の日付です"),
    ("period.start", "2025-13-01", "工期開始日: 日付が正しくありません"),
    ("period", "2025-10-20/2026-03-19", "工期: 項目の組（オブジェクト）"),
    ("title", "件" * 201, "件名: 200文字以内"),
    ("document_sha256", "AB" * 32, "16進数小文字64桁"),
    ("agreements", [], "当事者の署名: 1件以上必要です"),
    ("agreements[0].party", "city", "署名した当事者（1件目）: 次のいずれか"),
    ("agreements[1].party", "orderer", "同じ当事者の署名が重複しています"),
    ("agreements[0].signed_at", "2025-10-10 10:00:00", "日時が正しくありません"),
    ("agreements[0].signed_at", "2025-10-10T10:00:00", "署名日時（1件目）: 日時"),
    ("agreements[1].signed_at", "2025-10-10T24:00:00Z", "日時が正しくありません"),
    ("agreements[0].key_thumbprint", "A" * 42, "43文字"),
    # 43 characters hold 258 bits for a 256-bit digest: the last two must be zero.
    ("agreements[0].key_thumbprint", "A" * 42 + "B", "サムプリント"),
    ("agreements[0].signature", "c2ln+w==", "base64url形式"),
    ("agreements[0].signature", "", "署名値（1件目）: 入力してください"),
    ("juminhyo_code", "1", "住民票コード: 法令により記載できません"),
]
_INVALID = (
    [("juminhyo", *row) for row in _JUMINHYO_INVALID]
    + [("partnership", *row) for row in _PARTNERSHIP_INVALID]
    + [("contract", *row) for row in _CONTRACT_INVALID]
)


@pytest.mark.parametrize("case", _INVALID, ids=lambda c: f"{c[0]}-{c[1]}")
def test_invalid_claims_name_the_field_in_japanese(case: tuple[Any, ...]) -> None:
    name, changed, value, ja, *error_path = case
    path = error_path[0] if error_path else changed
    errors = _errors(name, {changed: value})
    by_path = {p: (j, e) for p, j, e in errors}
    assert path in by_path, errors
    assert ja in by_path[path][0]
    assert by_path[path][1] and not JAPANESE.match(by_path[path][1])


@pytest.mark.parametrize("case", _INVALID, ids=lambda c: f"{c[0]}-{c[1]}")
def test_messages_never_leak_jsonschema_wording(case: tuple[Any, ...]) -> None:
    name, changed, value, *_ = case
    for _path, ja_message, en_message in _errors(name, {changed: value}):
        assert JAPANESE.search(ja_message)
        assert not JSONSCHEMA_ENGLISH.search(ja_message + en_message)


def test_every_bad_field_is_reported_at_once_in_schema_order() -> None:
    errors = _errors(
        "juminhyo",
        {
            "my_number": "123456789018",
            "address_since": "2019-04-31",
            "sex": "男性",
            "birthdate": DELETE,
            "family_name": "山" * 60,
        },
    )
    assert [p for p, _, _ in errors] == [
        "family_name",
        "birthdate",
        "sex",
        "address_since",
        "my_number",
    ]


def test_english_messages_name_the_field_by_its_english_label() -> None:
    errors = _errors("juminhyo", {"birthdate": "2025-02-30"})
    assert errors == [
        (
            "birthdate",
            "生年月日: 日付が正しくありません（例: 1980-04-01）",
            "Date of birth: not a valid date (e.g. 1980-04-01)",
        )
    ]


def test_my_number_is_refused_by_law_with_both_languages() -> None:
    claims = sample("juminhyo") | {"my_number": "123456789018"}
    with pytest.raises(ValidationError, match="法令により記載できません") as caught:
        validate_claims("juminhyo", claims)
    assert caught.value.errors == [
        (
            "my_number",
            "個人番号（マイナンバー）: 法令により記載できません",
            "Individual Number (My Number): may not appear on a certificate by law",
        )
    ]


@pytest.mark.parametrize("claims", [None, [], "山田", 42])
def test_claims_that_are_not_an_object_are_refused(claims: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_claims("juminhyo", claims)
    assert caught.value.errors[0][0] == ""
    assert "JSONオブジェクト" in caught.value.errors[0][1]


def test_unknown_document_type_is_a_caller_mistake() -> None:
    with pytest.raises(ValueError, match="unknown document type"):
        get("koseki")
    with pytest.raises(ValueError, match="unknown document type"):
        validate_claims("koseki", {})
    with pytest.raises(ValueError, match="unknown document type"):
        sample("koseki")


def test_optional_claims_may_be_omitted_and_requested_ones_added() -> None:
    minimal = {
        k: SAMPLES["juminhyo"][k]
        for k in ("family_name", "given_name", "birthdate", "sex", "address", "address_since")
    }
    assert validate_claims("juminhyo", minimal) == minimal
    full = sample("juminhyo") | {
        "relationship_to_head": "世帯主",
        "registered_domicile": "福岡県飯塚市立岩1234番地",
        "domicile_head": "山田 一郎",
        "family_name_kana": "ヤマダ　ヴァーノン",
    }
    assert validate_claims("juminhyo", full) == full


# --- check digits --------------------------------------------------------------------


@pytest.mark.parametrize("code", ["402052", "422011", "131016", "401307", "400009"])
def test_known_municipality_codes_are_valid(code: str) -> None:
    assert is_valid_municipality_code(code)
    assert municipality_check_digit(code[:5]) == code[5]


@pytest.mark.parametrize("code", ["402052", "422011", "131016"])
def test_every_other_municipality_check_digit_is_refused(code: str) -> None:
    for digit in "0123456789":
        if digit != code[5]:
            assert not is_valid_municipality_code(code[:5] + digit)


@pytest.mark.parametrize(
    "code",
    ["40205", "4020522", "４０２０５２", "40205a", "", " 402052", "000001", "480001", 402052, None],
)
def test_malformed_municipality_codes_are_refused(code: object) -> None:
    # 000001 and 480001 carry correct check digits but no prefecture has number 00 or 48.
    assert not is_valid_municipality_code(code)


def test_corporate_number_check_digit_matches_the_known_number() -> None:
    assert is_valid_corporate_number("7000012050002")
    assert corporate_number_check_digit("000012050002") == "7"
    for digit in "012345689":
        assert not is_valid_corporate_number(digit + "000012050002")


@pytest.mark.parametrize(
    "number", ["700001205000", "70000120500021", "７000012050002", "7000012050O02", 7000012050002]
)
def test_malformed_corporate_numbers_are_refused(number: object) -> None:
    assert not is_valid_corporate_number(number)


@pytest.mark.parametrize(
    ("helper", "text"),
    [
        (municipality_check_digit, "4020"),
        (municipality_check_digit, "40205x"),
        (municipality_check_digit, "４０２０５"),
        (corporate_number_check_digit, "00001205000"),
        (corporate_number_check_digit, "00001205000x"),
    ],
)
def test_check_digit_helpers_refuse_malformed_input(helper: Any, text: str) -> None:
    with pytest.raises(ValueError):
        helper(text)


@given(st.integers(1, 47), st.integers(0, 999))
def test_generated_municipality_codes_validate_and_only_with_their_digit(
    prefecture: int, rest: int
) -> None:
    body = f"{prefecture:02d}{rest:03d}"
    digit = municipality_check_digit(body)
    assert is_valid_municipality_code(body + digit)
    assert sum(is_valid_municipality_code(body + d) for d in "0123456789") == 1


@given(st.integers(0, 10**12 - 1))
def test_generated_corporate_numbers_validate_and_only_with_their_digit(base: int) -> None:
    text = f"{base:012d}"
    assert is_valid_corporate_number(corporate_number_check_digit(text) + text)
    assert sum(is_valid_corporate_number(d + text) for d in "0123456789") == 1


# --- dates and 和暦 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iso", "ja", "en"),
    [
        ("2025-10-06", "2025年10月6日（令和7年10月6日）", "6 October 2025 (Reiwa 7)"),
        ("2019-05-01", "2019年5月1日（令和元年5月1日）", "1 May 2019 (Reiwa 1)"),
        ("2019-04-30", "2019年4月30日（平成31年4月30日）", "30 April 2019 (Heisei 31)"),
        ("1989-01-08", "1989年1月8日（平成元年1月8日）", "8 January 1989 (Heisei 1)"),
        ("1989-01-07", "1989年1月7日（昭和64年1月7日）", "7 January 1989 (Showa 64)"),
        ("1926-12-25", "1926年12月25日（昭和元年12月25日）", "25 December 1926 (Showa 1)"),
        ("1926-12-24", "1926年12月24日（大正15年12月24日）", "24 December 1926 (Taisho 15)"),
        ("1912-07-30", "1912年7月30日（大正元年7月30日）", "30 July 1912 (Taisho 1)"),
        ("1912-07-29", "1912年7月29日（明治45年7月29日）", "29 July 1912 (Meiji 45)"),
        ("1873-01-01", "1873年1月1日（明治6年1月1日）", "1 January 1873 (Meiji 6)"),
        ("1872-12-31", "1872年12月31日", "31 December 1872"),
    ],
)
def test_format_date_shows_gregorian_and_era(iso: str, ja: str, en: str) -> None:
    assert format_date(iso) == ja
    assert format_date(iso, "ja-JP") == ja
    assert format_date(iso, lang="en") == en


@pytest.mark.parametrize("iso", ["2025-02-30", "2025-2-3", "20251006", "2025-10-06T00:00:00"])
def test_format_date_refuses_invalid_dates(iso: str) -> None:
    with pytest.raises(ValueError):
        format_date(iso)


def test_format_date_refuses_unknown_languages() -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        format_date("2025-10-06", "fr")


@given(st.dates(min_value=parse_date("1873-01-01")))
def test_era_year_counts_from_the_era_first_year(day: Any) -> None:
    text = format_date(day.isoformat())
    era = re.search(r"（(令和|平成|昭和|大正|明治)(元|[0-9]+)年", text)
    assert era is not None
    first = {"令和": 2019, "平成": 1989, "昭和": 1926, "大正": 1912, "明治": 1868}[era[1]]
    assert first + (1 if era[2] == "元" else int(era[2])) - 1 == day.year


def test_parse_datetime_requires_an_offset() -> None:
    assert parse_datetime("2025-10-10T10:00:00+09:00").utcoffset() is not None
    assert parse_datetime("2025-10-10T01:00:00.5Z").microsecond == 500000
    for bad in ("2025-10-10T10:00:00", "2025-10-10T10:00:00+24:00", "2025-10-10t10:00:00Z"):
        with pytest.raises(ValueError):
            parse_datetime(bad)


# --- schemas and metadata ------------------------------------------------------------


def _schema_paths(
    node: dict[str, Any], defs: dict[str, Any], prefix: tuple[Any, ...]
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Yield (metadata path, subschema) of every property, resolving local $refs."""
    if "$ref" in node:
        node = defs[node["$ref"].removeprefix("#/$defs/")]
    if node.get("type") == "array" and "items" in node:
        items = node["items"]
        if items.get("type") == "object":
            yield from _schema_paths(items, defs, (*prefix, None))
    for name, sub in node.get("properties", {}).items():
        yield (*prefix, name), sub
        yield from _schema_paths(sub, defs, (*prefix, name))


def _all_nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _all_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _all_nodes(value)


@pytest.mark.parametrize("name", sorted(DOCUMENT_TYPES))
def test_schema_is_valid_json_schema_2020_12(name: str) -> None:
    schema = get(name).schema
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", sorted(DOCUMENT_TYPES))
def test_schema_is_closed_bounded_and_leaves_registered_claims_to_the_issuer(name: str) -> None:
    schema = get(name).schema
    for node in _all_nodes(schema):
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
        if node.get("type") == "string":
            assert "maxLength" in node or "enum" in node
    assert not {"iss", "iat", "exp", "nbf", "vct", "cnf", "status", "sub"} & set(
        schema["properties"]
    )
    assert not {"my_number", "individual_number", "juminhyo_code"} & set(schema["properties"])


@pytest.mark.parametrize("name", sorted(DOCUMENT_TYPES))
def test_metadata_labels_every_schema_property_in_ja_and_en(name: str) -> None:
    doctype = get(name)
    schema = doctype.schema
    expected = dict(_schema_paths(schema, schema.get("$defs", {}), ()))
    claims = {tuple(c["path"]): c for c in doctype.metadata_template["claims"]}
    assert set(claims) == set(expected)
    for path, claim in claims.items():
        langs = {d["lang"]: d for d in claim["display"]}
        assert set(langs) == {"ja-JP", "en-US"}
        for entry in claim["display"]:
            assert entry["locale"] == entry["lang"]
            assert entry["label"].strip()
        assert JAPANESE.search(langs["ja-JP"]["label"])
        assert claim["sd"] in ("always", "never")
        if len(path) > 1 and path[0] not in doctype.member_disclosable:
            assert claim["sd"] == "never", "nested members travel inside their parent"


@pytest.mark.parametrize("name", sorted(DOCUMENT_TYPES))
def test_metadata_mandatory_matches_schema_required(name: str) -> None:
    doctype = get(name)
    top = {c["path"][0]: c for c in doctype.metadata_template["claims"] if len(c["path"]) == 1}
    assert {n for n, c in top.items() if c.get("mandatory")} == set(doctype.schema["required"])


def test_never_disclosable_follows_metadata() -> None:
    assert get("partnership").never_disclosable == frozenset({"recognized_by"})
    assert get("juminhyo").never_disclosable == frozenset()
    assert get("contract").never_disclosable == frozenset()


def test_member_disclosable_follows_metadata() -> None:
    assert get("juminhyo").member_disclosable == frozenset({"age_equal_or_over"})
    assert get("partnership").member_disclosable == frozenset()
    assert get("contract").member_disclosable == frozenset()
    claims = {tuple(c["path"]): c for c in get("juminhyo").metadata_template["claims"]}
    for member in ("18", "20"):
        assert claims[("age_equal_or_over", member)]["sd"] == "always"
    assert get("juminhyo").label("age_equal_or_over.20", "ja") == "20歳以上"
    assert get("juminhyo").label("age_equal_or_over.18", "en") == "18 or over"


# ------------------------------------------------------------------ 年齢到達
@pytest.mark.parametrize(
    ("birthdate", "on", "expected"),
    [
        ("2008-04-01", "2026-03-31", {"18": False, "20": False}),  # the day before
        ("2008-04-01", "2026-04-01", {"18": True, "20": False}),  # the 18th birthday
        ("2006-04-01", "2026-03-31", {"18": True, "20": False}),  # the day before the 20th
        ("2006-04-01", "2026-04-01", {"18": True, "20": True}),  # the 20th birthday
        ("2006-12-31", "2027-01-01", {"18": True, "20": True}),  # across the new year
        ("2008-02-29", "2026-02-28", {"18": False, "20": False}),  # leap day, common year
        ("2008-02-29", "2026-03-01", {"18": True, "20": False}),  # ...reached on 1 March
        ("2004-02-29", "2024-02-28", {"18": True, "20": False}),  # leap year: the day before
        ("2004-02-29", "2024-02-29", {"18": True, "20": True}),  # ...and the day itself
        ("1980-04-01", "2026-04-01", {"18": True, "20": True}),
        ("2026-04-01", "2026-04-01", {"18": False, "20": False}),  # born today
    ],
)
def test_age_equal_or_over_around_birthdays(birthdate: str, on: str, expected: dict[str, bool]):
    assert doctypes.age_equal_or_over(birthdate, on=date.fromisoformat(on)) == expected


def test_age_equal_or_over_refuses_impossible_input():
    with pytest.raises(ValueError, match="before the birth date"):
        doctypes.age_equal_or_over("2026-04-02", on=date(2026, 4, 1))
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        doctypes.age_equal_or_over("2026/04/01", on=date(2026, 4, 1))
    with pytest.raises(ValueError):
        doctypes.age_equal_or_over("2025-02-29", on=date(2026, 4, 1))


def test_the_issuance_date_is_japans():
    # 2026-03-31T15:00:00Z is 1 April 00:00 in Japan: the 18th birthday has begun there.
    now = 1_774_969_200
    assert doctypes.issuance_date(now) == date(2026, 4, 1)
    assert doctypes.issuance_date(now - 1) == date(2026, 3, 31)
    on = doctypes.issuance_date(now)
    assert doctypes.age_equal_or_over("2008-04-01", on=on)["18"] is True


def test_age_claims_validate_as_booleans_only():
    claims = {**sample("juminhyo"), "age_equal_or_over": {"18": True, "20": False}}
    assert validate_claims("juminhyo", claims)["age_equal_or_over"] == {"18": True, "20": False}
    for bad in ({"18": "true", "20": False}, {"18": True}, {"18": True, "20": True, "21": True}):
        with pytest.raises(ValidationError):
            validate_claims("juminhyo", {**claims, "age_equal_or_over": bad})


@pytest.mark.parametrize("name", sorted(DOCUMENT_TYPES))
def test_metadata_fills_in_the_vct_and_keeps_the_template(name: str) -> None:
    doctype = get(name)
    assert doctype.metadata_template["vct"] == f"{{issuer}}/vct/{name}/1"
    metadata = doctype.metadata(ISSUER + "/")
    assert metadata["vct"] == f"{ISSUER}/vct/{name}/1"
    assert doctype.metadata_template["vct"] == f"{{issuer}}/vct/{name}/1"
    names = {d["lang"]: d["name"] for d in metadata["display"]}
    assert set(names) == {"ja-JP", "en-US"}


def test_vct_round_trips_only_for_the_same_issuer_and_version() -> None:
    for name, doctype in DOCUMENT_TYPES.items():
        assert doctype.vct_for(ISSUER) == f"{ISSUER}/vct/{name}/1"
        assert from_vct(doctype.vct_for(ISSUER), ISSUER) is doctype
        assert from_vct(doctype.vct_for(ISSUER), ISSUER + "/") is doctype
        assert from_vct(doctype.vct_for(ISSUER), "https://other.example") is None
        assert from_vct(f"{ISSUER}/vct/{name}/2", ISSUER) is None
    assert from_vct(f"{ISSUER}/vct/koseki/1", ISSUER) is None


def test_validity_defaults() -> None:
    assert get("juminhyo").default_validity_days == 92
    assert get("partnership").default_validity_days == 3650
    assert get("contract").default_validity_days == 3650


def test_claim_names_follow_the_schema() -> None:
    assert get("juminhyo").claim_names[:2] == ("family_name", "given_name")
    assert "recognized_by" in get("partnership").claim_names


@pytest.mark.parametrize(
    ("name", "path", "lang", "label"),
    [
        ("juminhyo", "family_name", "ja", "氏"),
        ("juminhyo", "family_name", "en", "Family name"),
        ("juminhyo", "birthdate", "en-US", "Date of birth"),
        ("contract", "contractor.corporate_number", "ja", "法人番号"),
        ("contract", "period.start", "en", "Period start"),
        ("partnership", "children[1].birthdate", "ja", "子の生年月日（2件目）"),
        ("partnership", "recognized_by[0]", "en", "Recognised by (item 1)"),
    ],
)
def test_label(name: str, path: str, lang: str, label: str) -> None:
    assert get(name).label(path, lang) == label


@pytest.mark.parametrize(
    ("path", "lang"),
    [
        ("nickname", "ja"),
        ("family_name", "fr"),
        ("family_name.", "ja"),
        (".family_name", "ja"),
        ("family_name[0]x", "ja"),
        ("", "ja"),
    ],
)
def test_label_refuses_unknown_paths_and_languages(path: str, lang: str) -> None:
    with pytest.raises(ValueError):
        get("juminhyo").label(path, lang)


def test_core_imports_neither_flask_nor_web3() -> None:
    code = (
        "import sys, credentials.doctypes; "
        "assert not {'flask', 'web3'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api_is_exported() -> None:
    for name in doctypes.__all__:
        assert hasattr(doctypes, name)


# --- the compiled check agrees with jsonschema ---------------------------------------

_INTERESTING = [
    "",
    " ",
    "山田",
    "ヤマダ",
    "男",
    "女",
    "2025-02-30",
    "2024-02-29",
    "0000-01-01",
    "402052",
    "402053",
    "7000012050002",
    "7000012050003",
    "orderer",
    "contractor",
    "2025-10-10T10:00:00+09:00",
    "2025-10-10T10:00:60Z",
    "A" * 43,
    "A" * 42 + "B",
    "a" * 51,
    "x\ny",
    "0" * 64,
]
# Values that pass the schema's shape but not its meaning, drawn often so that the
# semantic checks (real dates, check digits, canonical base64url) get exercised.
_TRAPS = [
    "2025-02-30",
    "2023-02-29",
    "402053",
    "7000012050003",
    "2025-10-10T24:00:00Z",
    "A" * 42 + "B",
    100.0,
    "2000-01-01",
]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**16), 10**16)
    | st.floats(allow_nan=False)
    | st.text(max_size=60)
    | st.sampled_from(_INTERESTING)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from _paths(item, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            path = f"{prefix}[{index}]"
            yield path
            yield from _paths(item, path)


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(sorted(DOCUMENT_TYPES)))
    claims = sample(name)
    targets = sorted(set(_paths(claims)) | set(get(name).claim_names) | {"my_number"})
    for path in draw(st.lists(st.sampled_from(targets), max_size=3)):
        try:
            _set(claims, path, draw(st.just(DELETE) | st.sampled_from(_TRAPS) | _VALUES))
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced the parent
    return name, claims


@st.composite
def _one_trap(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(sorted(DOCUMENT_TYPES)))
    claims = sample(name)
    _set(claims, draw(st.sampled_from(sorted(_paths(claims)))), draw(st.sampled_from(_TRAPS)))
    return name, claims


@settings(max_examples=400, deadline=None)
@given(_mutated() | _one_trap())
def test_compiled_check_agrees_with_jsonschema_plus_semantic_checks(
    case: tuple[str, dict[str, Any]],
) -> None:
    name, claims = case
    schema = get(name).schema
    check = compile_schema(schema)
    semantic: list[Any] = []
    check(claims, (), semantic)
    assert check(claims, (), None) == (
        Draft202012Validator(schema).is_valid(claims) and not semantic
    )


@settings(max_examples=300, deadline=None)
@given(_mutated() | _one_trap())
def test_validation_either_returns_or_explains_every_problem(
    case: tuple[str, dict[str, Any]],
) -> None:
    name, claims = case
    schema_validator = Draft202012Validator(get(name).schema)
    try:
        result = validate_claims(name, claims)
    except ValidationError as error:
        assert error.errors
        for path, ja, en in error.errors:
            assert path, "every message names its field"
            assert JAPANESE.search(ja) and en
            assert not JSONSCHEMA_ENGLISH.search(ja + en)
    else:
        assert schema_validator.is_valid(result)


def test_compiler_refuses_keywords_it_does_not_implement() -> None:
    with pytest.raises(ValueError, match="unsupported keywords"):
        compile_schema({"type": "string", "maxLength": 5, "const": "x"})
    with pytest.raises(ValueError, match="additionalProperties"):
        compile_schema({"type": "object", "properties": {}})
    with pytest.raises(ValueError, match="type"):
        compile_schema({"anyOf": [{"type": "string"}]})
