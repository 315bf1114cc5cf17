"""The anchor and key-validity checks against a real (in-process) EVM registry."""

from __future__ import annotations

import time

import pytest

from anchor import evidence, merkle
from anchor.accounts import ChainAccount
from anchor.backends import EvmChain
from anchor.registry import add_key, deactivate_issuer, key_fields, register_issuer, revoke_key
from credentials import doctypes, sdjwt
from credentials.keys import SigningKey
from verifier.policy import Verifier
from verifier.registry_trust import RegistryTrust

ISS = "https://city.iizuka.example"


class City:
    """A registry with one city, its signing key, and a helper that issues and anchors."""

    def __init__(self) -> None:
        self.gov = EvmChain.fresh()
        self.account = ChainAccount.dev(1)
        register_issuer(
            self.gov, self.account.address, issuer_id=ISS, name="飯塚市", municipality_code="402052"
        )
        self.chain = self.gov.using(self.account)
        self.key = SigningKey.generate()
        add_key(self.chain, self.key.jwk)

    def issue(self, key: SigningKey | None = None) -> str:
        dt = doctypes.get("juminhyo")
        now = int(time.time())
        return sdjwt.issue(
            doctypes.sample("juminhyo"),
            key=key or self.key,
            issuer=ISS,
            vct=dt.vct_for(ISS),
            iat=now,
            exp=now + 86400,
        ).sd_jwt

    def anchor(self, creds: list[str], others: int = 5) -> list[bytes]:
        """Anchor the credentials in one batch (with a few other leaves); their evidence."""
        leaves = [merkle.leaf_hash(c.split("~")[0]) for c in creds]
        leaves += [merkle.leaf_hash(f"eyJ.other{i}.x") for i in range(others)]
        batch = merkle.build(leaves)
        self.chain.anchor(batch.root)
        return [evidence.encode_receipt(batch.receipt(7, i)) for i in range(len(creds))]

    def verifier(self) -> Verifier:
        trust = RegistryTrust(self.gov.using(None), ttl=0)
        return Verifier(trust=trust, anchors=trust)


@pytest.fixture
def city() -> City:
    return City()


def test_anchored_credential_shows_block_time_and_transaction(city: City) -> None:
    cred = city.issue()
    (ev,) = city.anchor([cred])
    result = city.verifier().verify(cred, now=time.time(), evidence=ev)
    assert result.verdict == "valid", result.to_json()
    assert result.check("anchor").status == "pass"
    assert "ブロック" in result.check("anchor").ja
    doc = result.to_json()
    assert doc["anchor"]["chain_id"] == city.gov.chain_id
    assert doc["anchor"]["tx"].startswith("0x") and doc["anchor"]["block"] > 0
    assert doc["anchor"]["timestamp"].endswith("+09:00")
    assert doc["issuer"]["name"] == "飯塚市"


def test_presentation_with_evidence_through_the_qr_codec(city: City) -> None:
    from credentials import qr
    from verifier import inputs

    cred = city.issue()
    (ev,) = city.anchor([cred], others=1000)
    pres = sdjwt.present(cred, disclose=["family_name", "given_name", "birthdate", "address"])
    payload = qr.encode_embedded(pres, ev)
    got = inputs.from_text(payload)
    result = city.verifier().verify(got.text, now=time.time(), evidence=got.evidence)
    assert result.verdict == "valid" and result.check("anchor").status == "pass"
    assert qr.qr_version(payload) <= 25


def test_no_evidence_is_a_warning_not_a_failure(city: City) -> None:
    result = city.verifier().verify(city.issue(), now=time.time())
    assert result.check("anchor").status == "warn"
    assert result.verdict == "valid"


def test_evidence_of_another_credential_fails(city: City) -> None:
    a, b = city.issue(), city.issue()
    ev_a, _ev_b = city.anchor([a, b])
    result = city.verifier().verify(b, now=time.time(), evidence=ev_a)
    assert result.check("anchor").status == "fail"
    assert "見つかりません" in result.check("anchor").ja


def test_evidence_for_a_root_never_anchored_fails(city: City) -> None:
    cred = city.issue()
    batch = merkle.build([merkle.leaf_hash(cred.split("~")[0]), merkle.leaf_hash("eyJ.x.y")])
    ev = evidence.encode_receipt(batch.receipt(1, 0))
    result = city.verifier().verify(cred, now=time.time(), evidence=ev)
    assert result.check("anchor").status == "fail"


def test_garbage_evidence_fails_cleanly(city: City) -> None:
    result = city.verifier().verify(city.issue(), now=time.time(), evidence=b"\x01\xff\xff")
    assert result.check("anchor").status == "fail"
    unknown = city.verifier().verify(city.issue(), now=time.time(), evidence=b"\x09abc")
    assert "未対応" in unknown.check("anchor").ja


def test_key_revoked_after_the_anchor_keeps_old_credentials_valid(city: City) -> None:
    cred = city.issue()
    (ev,) = city.anchor([cred])
    thumbprint = key_fields(city.key.jwk)[0]
    time.sleep(1.1)  # the revocation takes effect from its own (later) block
    revoke_key(city.chain, thumbprint)
    result = city.verifier().verify(cred, now=time.time(), evidence=ev)
    assert result.verdict == "valid", result.to_json()
    # ... but a credential anchored afterwards with the same key is refused.
    late = city.issue()
    (ev_late,) = city.anchor([late])
    refused = city.verifier().verify(late, now=time.time(), evidence=ev_late)
    assert refused.check("issuer").status == "fail"
    assert "取り消し後に記録" in refused.check("issuer").ja


def test_key_revoked_before_the_anchor_makes_credentials_invalid(city: City) -> None:
    cred = city.issue()
    thumbprint = key_fields(city.key.jwk)[0]
    # Compromise found late: governance back-dates the revocation.
    revoke_key(
        city.gov, thumbprint, issuer=city.account.address, revoked_at=int(time.time()) - 3600
    )
    (ev,) = city.anchor([cred])
    result = city.verifier().verify(cred, now=time.time(), evidence=ev)
    assert result.verdict == "invalid"
    assert "取り消し後に記録" in result.check("issuer").ja
    unanchored = city.verifier().verify(city.issue(), now=time.time())
    assert "取り消されています" in unanchored.check("issuer").ja


def test_key_not_in_the_registry_fails_signature(city: City) -> None:
    cred = city.issue(key=SigningKey.generate())
    result = city.verifier().verify(cred, now=time.time())
    assert result.check("signature").status == "fail"
    assert "登録されていません" in result.check("signature").ja


def test_unknown_and_deactivated_issuers_are_not_trusted(city: City) -> None:
    cred = city.issue()
    deactivate_issuer(city.gov, city.account.address)
    result = city.verifier().verify(cred, now=time.time())
    assert result.check("issuer").status == "fail"
    other = sdjwt.issue(
        {"family_name": "x"},
        key=city.key,
        issuer="https://elsewhere.example",
        vct=doctypes.get("juminhyo").vct_for("https://elsewhere.example"),
        iat=int(time.time()),
        exp=None,
    ).sd_jwt
    assert city.verifier().verify(other, now=time.time()).check("issuer").status == "fail"


def test_registry_reads_are_cached(city: City) -> None:
    calls = {"issuer": 0, "anchor": 0}
    reader = city.gov.using(None)

    class Counting:
        chain_id = reader.chain_id

        def issuer_by_id(self, iss):
            calls["issuer"] += 1
            return reader.issuer_by_id(iss)

        def read_anchor(self, address, root):
            calls["anchor"] += 1
            return reader.read_anchor(address, root)

    trust = RegistryTrust(Counting(), ttl=60)
    verifier = Verifier(trust=trust, anchors=trust)
    cred = city.issue()
    (ev,) = city.anchor([cred])
    for _ in range(5):
        assert verifier.verify(cred, now=time.time(), evidence=ev).verdict == "valid"
    assert calls == {"issuer": 1, "anchor": 1}
