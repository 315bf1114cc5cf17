"""Nothing personal reaches the chain: only Merkle roots (DESIGN §2).

Real credentials (住民票, パートナーシップ, 契約) are issued, queued and anchored by the
Batcher on both backends; then every transaction input and every log (data and each
topic) of every block since the registry's deployment is searched for each claim value
— as UTF-8, as hex text, as its SHA-256 (raw and hex) — and for the disclosures, their
digests, the holder keys, the issuer-signed JWTs, their SHA-256 (the unprefixed
credential hash) and their leaves (a per-person hash when the batch holds several).

The scanner is tested on values deliberately put on chain, so a scan that saw nothing
(no blocks, no logs, a wrong field name) cannot pass for a clean chain.

Claims that are never selectively disclosable (``recognized_by``: municipality codes)
are public by design and not searched: the registry itself lists issuers' codes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from web3 import Web3

from anchor import merkle
from anchor.accounts import ChainAccount
from anchor.batcher import Batcher, BatchPolicy, enqueue
from anchor.registry import add_key, register_issuer
from anchor.store import Batch, create_schema, make_engine
from credentials import doctypes, sdjwt
from credentials.keys import SigningKey

ISS = "https://city.iizuka.example"
ISSUER_NAME = "飯塚市"
IAT = 1_800_000_000


# --------------------------------------------------------------------------- the scanner


@dataclass(frozen=True)
class Blob:
    """Bytes the chain holds, and where: a transaction input, a log's data or topic."""

    where: str
    data: bytes


def chain_blobs(w3: Web3, first: int, last: int) -> list[Blob]:
    """Every transaction input and every log's data and topics in blocks first..last."""
    blobs = []
    for n in range(first, last + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            data = tx["input"] if "input" in tx else tx["data"]  # anvil / eth-tester
            blobs.append(Blob(f"block {n} tx {tx['hash'].to_0x_hex()} input", bytes(data)))
    for log in w3.eth.get_logs({"fromBlock": first, "toBlock": last}):
        where = f"block {log['blockNumber']} log {log['logIndex']}"
        blobs.append(Blob(f"{where} data", bytes(log["data"])))
        blobs += [Blob(f"{where} topic {i}", bytes(t)) for i, t in enumerate(log["topics"])]
    return blobs


def find(blobs: list[Blob], needles: Mapping[str, bytes]) -> dict[str, list[str]]:
    """Where each needle occurs: {label: [where, ...]} for the needles found."""
    found: dict[str, list[str]] = {}
    for label, needle in needles.items():
        places = [b.where for b in blobs if needle in b.data]
        if places:
            found[label] = places
    return found


# --------------------------------------------------------------------------- what to look for


def encodings(label: str, data: bytes) -> dict[str, bytes]:
    """``data`` as raw bytes, hex text, and its SHA-256 (raw and hex text)."""
    digest = hashlib.sha256(data).digest()
    return {
        label: data,
        f"{label} (hex)": data.hex().encode(),
        f"{label} (HEX)": data.hex().upper().encode(),
        f"SHA-256 of {label}": digest,
        f"SHA-256 of {label} (hex)": digest.hex().encode(),
    }


def leaf_values(value: Any) -> Iterator[Any]:
    """Every string and number inside a claim value, and each object or list as JSON."""
    if isinstance(value, Mapping):
        yield json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        for v in value.values():
            yield from leaf_values(v)
    elif isinstance(value, list):
        yield json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        for v in value:
            yield from leaf_values(v)
    elif not isinstance(value, bool):
        yield value


def value_needles(name: str, value: Any) -> dict[str, bytes]:
    """The encodings of every value inside claim ``name``; numbers also as a uint256."""
    needles: dict[str, bytes] = {}
    for v in leaf_values(value):
        needles.update(encodings(f"{name}={v!r}", str(v).encode()))
        if isinstance(v, int):
            needles[f"{name}={v} (uint256)"] = v.to_bytes(32, "big")
    return needles


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def credential_needles(cred: sdjwt.IssuedCredential, tag: str) -> dict[str, bytes]:
    """Everything personal about one issued credential, each under a readable label."""
    needles: dict[str, bytes] = {}
    for d in cred.disclosures:
        needles.update(value_needles(f"{tag}.{d.name}", d.value))
        needles[f"{tag} disclosure {d.name}"] = d.encoded.encode()
        needles[f"{tag} digest of {d.name}"] = d.digest.encode()
        needles[f"{tag} digest of {d.name} (raw)"] = _b64d(d.digest)
    jwk = cred.payload["cnf"]["jwk"]
    for coordinate in ("x", "y"):
        needles[f"{tag} holder key {coordinate}"] = jwk[coordinate].encode()
        needles[f"{tag} holder key {coordinate} (raw)"] = _b64d(jwk[coordinate])
    needles.update(encodings(f"{tag} issuer-signed JWT", cred.jwt.encode()))
    needles[f"{tag} SD-JWT"] = cred.sd_jwt.encode()
    leaf = merkle.leaf_hash(cred.jwt)
    needles[f"{tag} leaf"] = leaf
    needles[f"{tag} leaf (hex)"] = leaf.hex().encode()
    return needles


# --------------------------------------------------------------------------- credentials


def person_b() -> dict[str, Any]:
    """A second resident, so the batch holds several people."""
    claims = doctypes.sample("juminhyo")
    claims.update(
        family_name="佐藤",
        given_name="花子",
        family_name_kana="サトウ",
        given_name_kana="ハナコ",
        birthdate="1990-06-15",
        sex="女",
        address="福岡県飯塚市新飯塚20番30号",
        head_of_household="佐藤 花子",
    )
    return claims


def partner_view(claims: dict[str, Any]) -> dict[str, Any]:
    """The same partnership seen from the other partner (one credential each)."""
    swapped = dict(claims)
    for field in ("family_name", "given_name", "birthdate"):
        swapped[f"holder_{field}"] = claims[f"partner_{field}"]
        swapped[f"partner_{field}"] = claims[f"holder_{field}"]
    return swapped


def issue_all(issuer_key: SigningKey) -> dict[str, sdjwt.IssuedCredential]:
    """Five credentials, each bound to its own holder key."""
    partnership = doctypes.sample("partnership")
    documents = {
        "juminhyo-yamada": ("juminhyo", doctypes.sample("juminhyo")),
        "juminhyo-sato": ("juminhyo", person_b()),
        "partnership-sato": ("partnership", partnership),
        "partnership-suzuki": ("partnership", partner_view(partnership)),
        "contract": ("contract", doctypes.sample("contract")),
    }
    issued = {}
    for tag, (name, claims) in documents.items():
        doctype = doctypes.get(name)
        issued[tag] = sdjwt.issue(
            doctypes.validate_claims(name, claims),
            key=issuer_key,
            issuer=ISS,
            vct=doctype.vct_for(ISS),
            iat=IAT,
            exp=IAT + 90 * 86400,
            always_plain=doctype.never_disclosable,
            holder_jwk=SigningKey.generate().jwk,
        )
    return issued


@pytest.fixture(scope="module")
def issued(issuer_key: SigningKey) -> dict[str, sdjwt.IssuedCredential]:
    return issue_all(issuer_key)


@pytest.fixture(scope="module")
def needles(issued: dict[str, sdjwt.IssuedCredential]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for tag, cred in issued.items():
        found.update(credential_needles(cred, tag))
    return found


# --------------------------------------------------------------------------- tests


def test_needles_cover_every_personal_claim(issued, needles) -> None:
    """The search list is what it claims to be, so an empty result means something."""
    yamada = issued["juminhyo-yamada"]
    assert len(yamada.disclosures) == 12
    for value in ("山田", "太郎", "1980-04-01", "福岡県飯塚市立岩1234番地5", "男"):
        assert value.encode() in needles.values()
        assert hashlib.sha256(value.encode()).digest() in needles.values()
    assert "陽向".encode() in needles.values()  # nested: a partnership's child
    assert b"7310001234567" in needles.values()  # nested: 法人番号
    assert (12650000).to_bytes(32, "big") in needles.values()
    assert hashlib.sha256(yamada.jwt.encode()).digest() in needles.values()
    assert b"402052" not in needles.values()  # recognized_by: public, not searched


def test_only_roots_reach_the_chain(net, people, issuer_key, issued, needles, tmp_path) -> None:
    first = net.node.w3.eth.block_number + 1
    gov = net.deploy(people.governance)
    register_issuer(
        gov, people.city_a.address, issuer_id=ISS, name=ISSUER_NAME, municipality_code="402052"
    )
    add_key(gov, issuer_key.jwk, issuer=people.city_a.address)
    engine = make_engine(f"sqlite:///{tmp_path / 'anchor.db'}")
    create_schema(engine)
    with Session(engine) as s:
        for cred in issued.values():
            enqueue(s, merkle.leaf_hash(cred.jwt), now=IAT)
        s.commit()
    chain = gov.using(people.city_a)
    batcher = Batcher(
        engine=engine,
        chain=chain,
        issuer_address=people.city_a.address,
        clock=lambda: IAT + 60.0,
        policy=BatchPolicy(max_age=10),
    )
    batcher.run_until_idle(timeout=30, interval=0)
    with Session(engine) as s:
        (root,) = s.scalars(select(Batch.root)).all()

    blobs = chain_blobs(net.node.w3, first, net.node.w3.eth.block_number)
    assert find(blobs, needles) == {}
    # Not vacuous: the same scan sees the root (anchor input, Anchored topic) and the
    # issuer's public name (registerIssuer input, IssuerRegistered data).
    control = find(blobs, {"root": root, "name": ISSUER_NAME.encode()})
    assert len(control["root"]) == 2 and len(control["name"]) == 2
    assert sum(" input" in b.where for b in blobs) == 4  # deploy, register, key, anchor
    gov.close()


def test_scanner_finds_what_was_put_on_chain(net, people, issued, needles) -> None:
    """Plant personal data the ways a careless issuer could, and expect each found."""
    yamada = issued["juminhyo-yamada"]
    first = net.node.w3.eth.block_number + 1
    gov = net.deploy(people.governance)
    register_issuer(
        gov,
        people.city_a.address,
        issuer_id=ISS,
        name="福岡県飯塚市立岩1234番地5",  # an address as a registry string
        municipality_code=hashlib.sha256(b"1980-04-01").hexdigest(),
    )
    register_issuer(
        gov,
        ChainAccount.generate().address,
        issuer_id=yamada.disclosures[0].encoded,
        name="太郎".encode().hex(),
        municipality_code="0",
    )
    chain = gov.using(people.city_a)
    chain.anchor(hashlib.sha256(yamada.jwt.encode()).digest())  # the unprefixed hash
    chain.anchor(merkle.leaf_hash(issued["contract"].jwt))  # a batch of one: a leaf

    found = find(chain_blobs(net.node.w3, first, net.node.w3.eth.block_number), needles)
    assert set(found) == {
        "juminhyo-yamada.address='福岡県飯塚市立岩1234番地5'",
        "SHA-256 of juminhyo-yamada.birthdate='1980-04-01' (hex)",
        f"juminhyo-yamada disclosure {yamada.disclosures[0].name}",
        "juminhyo-yamada.given_name='太郎' (hex)",
        "SHA-256 of juminhyo-yamada issuer-signed JWT",
        "contract leaf",
    }
    # Strings are seen in the call and in the event; roots in the call and the topic.
    assert all(len(places) == 2 for places in found.values()), found
    gov.close()
