"""Offline verification from a governance-signed registry snapshot."""

from __future__ import annotations

import copy
import time

import pytest

from anchor.accounts import ChainAccount
from anchor.backends import EvmChain
from anchor.registry import add_key, register_issuer
from anchor.snapshot import export_snapshot
from credentials import doctypes, sdjwt
from credentials.errors import AnchorError, ShomeiError
from credentials.keys import SigningKey
from verifier.policy import Verifier
from verifier.snapshot_trust import SnapshotTrust

ISS = "https://city.nagasaki.example"


@pytest.fixture(scope="module")
def world():
    gov = EvmChain.fresh()
    city = ChainAccount.dev(1)
    register_issuer(gov, city.address, issuer_id=ISS, name="長崎市", municipality_code="422011")
    key = SigningKey.generate()
    add_key(gov.using(city), key.jwk)
    register_issuer(
        gov,
        ChainAccount.dev(2).address,
        issuer_id="https://b.example",
        name="B町",
        municipality_code="402052",
    )
    return gov, key


def cred(key: SigningKey) -> str:
    now = int(time.time())
    return sdjwt.issue(
        doctypes.sample("juminhyo"),
        key=key,
        issuer=ISS,
        vct=doctypes.get("juminhyo").vct_for(ISS),
        iat=now,
        exp=now + 3600,
    ).sd_jwt


def test_snapshot_verifies_offline(world) -> None:
    gov, key = world
    doc = export_snapshot(gov, ChainAccount.dev(0), now=int(time.time()))
    assert [i["issuer_id"] for i in doc["snapshot"]["issuers"]] == [ISS, "https://b.example"]
    trust = SnapshotTrust.load(doc, governance=ChainAccount.dev(0).address)
    result = Verifier(trust=trust).verify(cred(key), now=time.time() + 5)
    assert result.verdict == "valid", result.to_json()
    assert result.issuer is not None and result.issuer.name == "長崎市"
    assert result.check("anchor").status == "skip"


def test_tampered_snapshot_is_refused(world) -> None:
    gov, _key = world
    doc = export_snapshot(gov, ChainAccount.dev(0), now=0)
    forged = copy.deepcopy(doc)
    forged["snapshot"]["issuers"][0]["keys"][0]["x"] = SigningKey.generate().jwk["x"]
    with pytest.raises(ShomeiError, match="管理者のものではありません"):
        SnapshotTrust.load(forged)


def test_snapshot_from_another_governance_is_refused(world) -> None:
    gov, _key = world
    doc = export_snapshot(gov, ChainAccount.dev(0), now=0)
    with pytest.raises(ShomeiError, match="一致しません"):
        SnapshotTrust.load(doc, governance=ChainAccount.dev(5).address)


def test_only_governance_can_export(world) -> None:
    gov, _key = world
    with pytest.raises(AnchorError, match="管理者"):
        export_snapshot(gov, ChainAccount.dev(3), now=0)


@pytest.mark.parametrize("doc", [{}, {"snapshot": {}, "signature": "0x00"}, "text", None])
def test_malformed_snapshots(doc) -> None:
    with pytest.raises(ShomeiError, match="形式が不正"):
        SnapshotTrust.load(doc)
