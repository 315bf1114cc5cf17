"""The verification checklist: one entry per check, the verdict, and the reasons."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from credentials import doctypes, sdjwt
from credentials.errors import ShomeiError
from credentials.keys import SigningKey
from credentials.trust import TrustList
from verifier.policy import CHECK_IDS, VerificationResult, Verifier

ISS = "https://city.example"
NOW = 1_760_000_000


@pytest.fixture(scope="module")
def keys() -> tuple[SigningKey, SigningKey]:
    return SigningKey.generate(), SigningKey.generate()


@pytest.fixture(scope="module")
def trust(keys: tuple[SigningKey, SigningKey]) -> TrustList:
    return TrustList.from_json(
        TrustList.document(ISS, name="飯塚市", municipality_code="402052", jwks=[keys[0].jwk])
    )


def make(
    keys: tuple[SigningKey, SigningKey],
    doc: str = "juminhyo",
    *,
    status: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    vct: str | None = None,
) -> str:
    dt = doctypes.get(doc)
    return sdjwt.issue(
        claims or doctypes.sample(doc),
        key=keys[0],
        issuer=ISS,
        vct=vct or dt.vct_for(ISS),
        iat=NOW - 100,
        exp=NOW + 86400,
        always_plain=dt.never_disclosable,
        holder_jwk=keys[1].jwk,
        status=status,
    ).sd_jwt


def by_id(result: VerificationResult) -> dict[str, str]:
    return {c.id: c.status for c in result.checks}


def test_valid_credential_reports_every_check_in_order(keys, trust) -> None:
    result = Verifier(trust=trust).verify(make(keys), now=NOW)
    doc = result.to_json()
    assert doc["verdict"] == "valid"
    assert [c["id"] for c in doc["checks"]] == list(CHECK_IDS)
    assert doc["document_type"] == "juminhyo"
    assert doc["issuer"] == {"id": ISS, "name": "飯塚市", "municipality_code": "402052"}
    assert by_id(result) == {
        "format": "pass",
        "signature": "pass",
        "issuer": "pass",
        "disclosures": "pass",
        "anchor": "skip",
        "status": "skip",
        "validity": "pass",
        "holder": "warn",
        "document": "skip",
    }
    assert all(c["message"] and " / " in c["message"] for c in doc["checks"])


def test_disclosed_claims_follow_the_schema_order(keys, trust) -> None:
    pres = sdjwt.present(make(keys), disclose=["address", "birthdate", "family_name"])
    result = Verifier(trust=trust).verify(pres, now=NOW)
    assert list(result.disclosed) == ["family_name", "birthdate", "address"]


def test_unknown_issuer_fails_and_skips_what_depends_on_it(keys) -> None:
    result = Verifier(trust=TrustList({})).verify(make(keys), now=NOW)
    assert result.verdict == "invalid"
    assert result.check("issuer").status == "fail"
    assert "信頼された発行者ではありません" in result.check("issuer").ja
    assert result.check("signature").status == "skip"
    assert result.disclosed == {}


def test_unknown_document_type_fails_format(keys, trust) -> None:
    result = Verifier(trust=trust).verify(make(keys, vct=f"{ISS}/vct/passport/1"), now=NOW)
    assert result.check("format").status == "fail"
    assert "対応していない証明書の種類" in result.check("format").ja


def fetcher(value: int | Exception):
    def fetch(ref: dict[str, Any], *, issuer: str | None = None) -> int:
        assert issuer == ISS
        assert ref == {"status_list": {"idx": 7, "uri": f"{ISS}/status/1"}}
        if isinstance(value, Exception):
            raise value
        return value

    return fetch


STATUS = {"status_list": {"idx": 7, "uri": f"{ISS}/status/1"}}


@pytest.mark.parametrize(
    ("value", "status", "text"),
    [
        (0, "pass", "取り消されていません"),
        (1, "fail", "取り消し済み"),
        (2, "fail", "一時停止中"),
        (ShomeiError("接続できません", "cannot connect"), "warn", "確認できませんでした"),
    ],
)
def test_status_list_outcomes(keys, trust, value, status, text) -> None:
    verifier = Verifier(trust=trust, status_fetcher=fetcher(value))
    result = verifier.verify(make(keys, status=STATUS), now=NOW)
    assert result.check("status").status == status
    assert text in result.check("status").ja
    assert result.valid is (status != "fail")


def test_status_without_fetcher_is_unknown_not_invalid(keys, trust) -> None:
    result = Verifier(trust=trust).verify(make(keys, status=STATUS), now=NOW)
    assert result.check("status").status == "warn"
    assert result.verdict == "valid"


def test_malformed_status_reference_fails(keys, trust) -> None:
    result = Verifier(trust=trust).verify(make(keys, status={"bits": 1}), now=NOW)
    assert result.check("status").status == "fail"


def test_document_digest_matches_and_mismatches(keys, trust) -> None:
    pdf = b"%PDF-1.7\n" + b"contract body" * 100
    claims = doctypes.sample("contract")
    claims["document_sha256"] = hashlib.sha256(pdf).hexdigest()
    cred = make(keys, "contract", claims=claims)
    verifier = Verifier(trust=trust)
    ok = verifier.verify(cred, now=NOW, document=pdf)
    assert ok.check("document").status == "pass"
    assert "原本と一致します" in ok.check("document").ja
    bad = verifier.verify(cred, now=NOW, document=pdf[:-1] + b"X")
    assert bad.check("document").status == "fail"
    assert "原本と一致しません" in bad.check("document").ja
    hidden = sdjwt.present(cred, disclose=["title"])
    assert verifier.verify(hidden, now=NOW, document=pdf).check("document").status == "fail"


def test_key_binding_pass_and_nonce_mismatch(keys, trust) -> None:
    pres = sdjwt.present(
        make(keys), disclose=["address"], holder_key=keys[1], nonce="n1", aud="v", iat=NOW
    )
    verifier = Verifier(trust=trust)
    assert verifier.verify(pres, now=NOW, nonce="n1", aud="v").check("holder").status == "pass"
    wrong = verifier.verify(pres, now=NOW, nonce="n2", aud="v")
    assert wrong.check("holder").status == "fail"
    assert wrong.verdict == "invalid"


def test_expected_nonce_without_key_binding_fails(keys, trust) -> None:
    pres = sdjwt.present(make(keys), disclose=["address"])
    result = Verifier(trust=trust).verify(pres, now=NOW, nonce="n1")
    assert result.check("holder").status == "fail"


def test_expected_audience_alone_requires_key_binding(keys, trust) -> None:
    # A key-bound credential shown without a KB-JWT to a verifier that gave only an
    # audience: holder binding was asked for, so it fails (it used to pass as "valid").
    pres = sdjwt.present(make(keys), disclose=["address"])
    result = Verifier(trust=trust).verify(pres, now=NOW, aud="https://company.example")
    assert result.check("holder").status == "fail"
    assert "no key-binding JWT" in result.check("holder").en
    assert result.verdict == "invalid"


@pytest.mark.parametrize(
    ("kb", "expected", "status"),
    [
        ({"nonce": "n1", "aud": "v"}, {"aud": "v"}, "pass"),
        ({"nonce": "n1", "aud": "v"}, {"aud": "w"}, "fail"),
        ({"nonce": "n1", "aud": "v"}, {"nonce": "n1"}, "pass"),
        ({"nonce": "n1", "aud": "v", "iat": NOW - 3600}, {"aud": "v"}, "fail"),
        ({"nonce": "n1", "aud": "v"}, {"nonce": "n1", "aud": "w"}, "fail"),
    ],
    ids=["aud-only", "aud-mismatch", "nonce-only", "aud-only-stale", "both-aud-mismatch"],
)
def test_key_binding_is_checked_against_what_was_given(keys, trust, kb, expected, status) -> None:
    pres = sdjwt.present(make(keys), disclose=["address"], holder_key=keys[1], **{"iat": NOW, **kb})
    result = Verifier(trust=trust).verify(pres, now=NOW, **expected)
    assert result.check("holder").status == status


def test_expired_credential(keys, trust) -> None:
    result = Verifier(trust=trust).verify(make(keys), now=NOW + 2 * 86400)
    assert result.check("validity").status == "fail"
    assert "有効期限が切れています" in result.check("validity").ja


@pytest.mark.parametrize("text", ["", "hello", "a.b.c~", "~~~", "eyJ" * 30000])
def test_garbage_never_raises(trust, text) -> None:
    result = Verifier(trust=trust).verify(text, now=NOW)
    assert result.verdict == "invalid"
    assert result.check("format").status == "fail"
