"""The wallet's ES modules in the browser, against the Python core they mirror: 和暦
dates at the era boundaries, status list entries (every bit width, LSB first), SD-JWT
parsing and presentations byte for byte, JWK thumbprints, offer links."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Demo

from credentials import doctypes, sdjwt
from credentials.keys import SigningKey, jwk_thumbprint
from credentials.status_list import StatusList

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def page(browser: Any, demo: Demo) -> Iterator[Any]:
    context = browser.new_context(locale="ja-JP")
    page = context.new_page()
    page.goto(f"{demo.wallet_url}/")
    page.wait_for_selector("#list-view:not([hidden])")
    yield page
    context.close()


def js(page: Any, module: str, body: str, arg: Any = None) -> Any:
    """Run ``body`` (an async function body with ``m`` the module, ``arg`` the argument)."""
    return page.evaluate(
        f"async (arg) => {{ const m = await import('/static/js/{module}.js'); {body} }}", arg
    )


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("1926-12-24", "大正15年12月24日"),
        ("1926-12-25", "昭和元年12月25日"),
        ("1980-04-01", "昭和55年4月1日"),
        ("1989-01-07", "昭和64年1月7日"),
        ("1989-01-08", "平成元年1月8日"),
        ("2019-04-30", "平成31年4月30日"),
        ("2019-05-01", "令和元年5月1日"),
        ("2025-10-06", "令和7年10月6日"),
    ],
)
def test_wareki(page: Any, date: str, expected: str):
    assert js(page, "wareki", "return m.wareki(arg);", date) == expected
    assert js(page, "wareki", "return m.formatDate(arg);", date).endswith(f"（{expected}）")


def test_a_timestamp_is_a_date_in_japan(page: Any):
    # 2019-04-30T15:00:00Z is 2019-05-01 00:00 in Tokyo
    assert js(page, "wareki", "return m.wareki(arg);", 1556636400000) == "令和元年5月1日"


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_status_entries_match_the_python_list(page: Any, bits: int):
    rng = random.Random(bits)
    status = StatusList(bits=bits, size=4096)
    indexes = rng.sample(range(4096), 40)
    for idx in indexes:
        status.set(idx, rng.randrange(1 << bits))
    got = js(
        page,
        "status",
        "return Promise.all(arg.idx.map((i) => m.readEntry(arg.list, i)));",
        {"list": status.encode(), "idx": indexes},
    )
    assert got == [status.get(i) for i in indexes]
    outside = js(
        page,
        "status",
        "return m.readEntry(arg, 4096).then(() => 'read', (e) => 'refused');",
        status.encode(),
    )
    assert outside == "refused"


def issued(holder: SigningKey) -> str:
    dt = doctypes.get("partnership")
    now = int(time.time())
    return sdjwt.issue(
        doctypes.validate_claims("partnership", doctypes.sample("partnership")),
        key=SigningKey.generate(),
        issuer="https://city.example",
        vct=dt.vct_for("https://city.example"),
        iat=now,
        exp=now + 86400,
        always_plain=dt.never_disclosable,
        holder_jwk=holder.jwk,
        decoys=3,
    ).sd_jwt


def digest(disclosure: str) -> str:
    raw = hashlib.sha256(disclosure.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_parse_and_present_match_the_python_core(page: Any):
    credential = issued(SigningKey.generate())
    parsed = js(page, "sdjwt", "return m.parse(arg);", credential)
    raw = sdjwt.ParsedSdJwt.parse(credential).disclosures
    assert [d["raw"] for d in parsed["disclosures"]] == list(raw)
    assert [d["digest"] for d in parsed["disclosures"]] == [digest(d) for d in raw]
    assert [d["name"] for d in parsed["disclosures"]] == [
        json.loads(base64.urlsafe_b64decode(d + "==="))[1] for d in raw
    ]
    assert parsed["payload"]["recognized_by"] == ["402052", "401307", "401005"]
    names = js(page, "sdjwt", "return m.claimNames(arg);", credential)
    assert names == sdjwt.claim_names(credential)
    chosen = ["children", "holder_family_name", "certificate_number"]
    mine = js(
        page,
        "sdjwt",
        "return m.present({sdJwt: arg.c}, arg.n);",
        {"c": credential, "n": chosen},
    )
    assert mine == sdjwt.present(credential, disclose=chosen)
    refused = js(
        page,
        "sdjwt",
        "return m.present({sdJwt: arg}, ['family_name']).then(() => 'made', (e) => e.message);",
        credential,
    )
    assert "family_name" in refused


@pytest.mark.parametrize("name", sorted(doctypes.DOCUMENT_TYPES))
def test_titles_and_labels_come_from_the_type_metadata(page: Any, name: str):
    """types.js reads every title and claim label (nested ones too) of every document
    type, in both languages, from the type metadata the wallet's server publishes."""
    dt = doctypes.get(name)
    claims = dt.metadata_template["claims"]
    keys = [".".join("*" if p is None else p for p in claim["path"]) for claim in claims]
    got = js(
        page,
        "types",
        """await m.loadTypes();
        const out = {};
        for (const lang of ["ja", "en"]) {
          out[lang] = {title: m.title(arg.name, lang),
                       labels: arg.keys.map((k) => m.label({docType: arg.name}, k, lang))};
        }
        return out;""",
        {"name": name, "keys": keys},
    )
    for lang in ("ja", "en"):
        assert got[lang]["title"] == dt.title(lang)
        expected = [
            next(d["label"] for d in claim["display"] if d["lang"].startswith(lang))
            for claim in claims
        ]
        assert got[lang]["labels"] == expected
        assert len(set(expected)) == len(expected)


def test_jwk_thumbprint(page: Any):
    jwk = SigningKey.generate().jwk
    assert js(page, "keys", "return m.jwkThumbprint(arg);", jwk) == jwk_thumbprint(jwk)


@pytest.mark.parametrize(
    "form",
    ["link", "app-query", "app-hash", "json"],
)
def test_offer_links(page: Any, form: str):
    from urllib.parse import quote

    document = (
        '{"credential_issuer":"http://127.0.0.1:5000","credential_configuration_ids":'
        '["juminhyo"],"grants":{"urn:ietf:params:oauth:grant-type:pre-authorized_code":'
        '{"pre-authorized_code":"abc","tx_code":{"length":6,"input_mode":"numeric"}}}}'
    )
    link = f"openid-credential-offer://?credential_offer={quote(document, safe='')}"
    text = {
        "link": link,
        "app-query": f"http://127.0.0.1:5200/?credential_offer={quote(document, safe='')}",
        "app-hash": f"#offer={quote(link, safe='')}",
        "json": document,
    }[form]
    offer = js(page, "receive", "return m.parseOffer(arg);", text)
    assert offer["credential_issuer"] == "http://127.0.0.1:5000"
    assert offer["code"] == "abc" and offer["txCode"]["length"] == 6
    bad = js(
        page,
        "receive",
        "try { m.parseOffer(arg); return 'parsed'; } catch (e) { return e.kind; }",
        "https://example.com/?q=1",
    )
    assert bad == "offer"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "openid-credential-offer://?credential_offer_uri=https://city.example/oid4vci/offers/x",
            {"uri": "https://city.example/oid4vci/offers/x"},
        ),
        (
            "http://127.0.0.1:5200/?credential_offer_uri="
            "http%3A%2F%2F127.0.0.1%3A5000%2Foid4vci%2Foffers%2Fy",
            {"uri": "http://127.0.0.1:5000/oid4vci/offers/y"},
        ),
        ("openid-credential-offer://?credential_offer_uri=javascript:alert(1)", "offer"),
        ("openid-credential-offer://?credential_offer_uri=https://a/&credential_offer={}", "offer"),
    ],
)
def test_offer_by_reference_links(page: Any, text: str, expected: Any):
    found = js(
        page,
        "receive",
        "try { return m.locateOffer(arg); } catch (e) { return e.kind; }",
        text,
    )
    assert found == expected
    by_value_only = js(
        page,
        "receive",
        "try { m.parseOffer(arg); return 'parsed'; } catch (e) { return e.kind; }",
        text,
    )
    assert by_value_only == "offer"
