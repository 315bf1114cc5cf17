"""OpenID4VP 1.0 in the verifier without a foreign wallet: the request's shape and QR
size, the strict reading of answers (state, encryption, vp_token shape, JWE headers),
the claims check (exactly what was asked, nested paths such as 20歳以上), and the
age preset answered end to end through the app."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

import credentials.jws as jws
import verifier.dcql as dcql
import verifier.oid4vp as oid4vp
from credentials import doctypes, qr, sdjwt
from credentials.encoding import b64d, b64e
from credentials.errors import ShomeiError
from credentials.keys import SigningKey, public_jwk, public_key_from_jwk
from credentials.trust import TrustList
from verifier.app import create_app
from verifier.policy import Verifier
from verifier.request_store import SqliteStore
from verifier.x509_identity import X509Identity, self_signed, write_self_signed

ISS = "https://city.example"
BASE = "https://verifier.example"
NOW = int(time.time())


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> X509Identity:
    folder = tmp_path_factory.mktemp("x509")
    cert, key = write_self_signed(folder, "verifier.example", now=dt.datetime.now(dt.UTC))
    assert cert.stat().st_mode & 0o777 == 0o600 and key.stat().st_mode & 0o777 == 0o600
    return X509Identity.load(cert, key)


def params(mode: str = "direct_post.jwt", preset: str = "address", **kw: Any) -> oid4vp.Params:
    return oid4vp.new(
        base_url=BASE,
        mode=mode,
        paths=dcql.PRESETS[preset],
        vct_values=dcql.vct_values([ISS]),
        identity=kw.get("identity"),
    )


# ------------------------------------------------------------------ the request


def test_the_signed_request_by_reference_and_its_qr_size(identity) -> None:
    p = params(identity=identity)
    link = oid4vp.link(p, BASE)
    query = parse_qs(urlsplit(link).query)
    assert link.startswith("openid4vp://?")
    assert query == {
        "client_id": ["x509_san_dns:verifier.example"],
        "request_uri": [f"{BASE}/oid4vp/request/{p.state}"],
    }
    # DESIGN §6: the request QR for the simplest preset is at most version 10
    assert qr.qr_version(link) <= 10

    token = oid4vp.request_object(p, identity, now=NOW, expires_at=NOW + 300)
    parsed = jws.CompactJws(token, what="request", what_en="request")
    header, payload = parsed.unverified_header, parsed.unverified_payload
    assert header["typ"] == "oauth-authz-req+jwt" and header["alg"] == "ES256"
    assert header["x5c"] == identity.x5c
    parsed.verify(identity.key.public_key(), what="request", what_en="request")
    assert payload["client_id"] == "x509_san_dns:verifier.example"
    assert payload["response_type"] == "vp_token"
    assert payload["response_mode"] == "direct_post.jwt"
    assert payload["response_uri"] == f"{BASE}/oid4vp/response/{p.state}"
    assert (payload["nonce"], payload["state"]) == (p.nonce, p.state)
    assert payload["aud"] == "https://self-issued.me/v2"
    assert payload["dcql_query"] == {
        "credentials": [
            {
                "id": "juminhyo",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [f"{ISS}/vct/juminhyo/1"]},
                "claims": [
                    {"path": ["family_name"]},
                    {"path": ["given_name"]},
                    {"path": ["address"]},
                ],
            }
        ]
    }
    meta = payload["client_metadata"]
    assert meta["vp_formats_supported"]["dc+sd-jwt"]["kb-jwt_alg_values"] == ["ES256"]
    assert meta["encrypted_response_enc_values_supported"] == ["A128GCM", "A256GCM"]
    (key,) = meta["jwks"]["keys"]
    assert "d" not in key and key["use"] == "enc" and key["alg"] == "ECDH-ES" and key["kid"]


def test_fresh_values_per_request() -> None:
    one, two = params(), params()
    assert one.nonce != two.nonce and one.state != two.state
    assert one.enc_key is not None and two.enc_key is not None
    assert one.enc_key["x"] != two.enc_key["x"]
    assert len(b64d(one.nonce)) == 16  # 128 bits
    assert params(mode="direct_post").enc_key is None


def test_the_unsigned_request_travels_by_value() -> None:
    p = params(mode="direct_post", preset="age")
    link = oid4vp.link(p, BASE)
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query["client_id"] == f"redirect_uri:{BASE}/oid4vp/response/{p.state}"
    assert query["response_uri"] == f"{BASE}/oid4vp/response/{p.state}"
    assert json.loads(query["dcql_query"])["credentials"][0]["claims"] == [
        {"path": ["age_equal_or_over", "20"]}
    ]
    assert "request_uri" not in query
    assert qr.qr_version(link) <= 25  # by value: larger (measured 21-23 for direct_post)


def test_the_digital_credentials_api_request(identity) -> None:
    p = params()
    unsigned = oid4vp.dc_api_request(p, None, origin=BASE, now=NOW, expires_at=NOW + 300)
    assert unsigned["protocol"] == "openid4vp-v1-unsigned"
    data = unsigned["data"]
    assert data["response_mode"] == "dc_api.jwt" and "client_id" not in data
    assert "response_uri" not in data and data["nonce"] == p.nonce
    signed = oid4vp.dc_api_request(p, identity, origin=BASE, now=NOW, expires_at=NOW + 300)
    assert signed["protocol"] == "openid4vp-v1-signed"
    payload = jws.CompactJws(signed["data"]["request"], what="r", what_en="r").unverified_payload
    assert payload["expected_origins"] == [BASE]
    assert payload["client_id"] == "x509_san_dns:verifier.example"


def test_the_identity_must_match(tmp_path) -> None:
    cert, _ = self_signed("a.example", now=dt.datetime.now(dt.UTC))
    _, other_key = self_signed("b.example", now=dt.datetime.now(dt.UTC))
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(other_key)
    with pytest.raises(ShomeiError, match="does not match its certificate"):
        X509Identity.load(tmp_path / "c.pem", tmp_path / "k.pem")
    with pytest.raises(ShomeiError, match="cannot read"):
        X509Identity.load(tmp_path / "missing.pem", tmp_path / "k.pem")


# ------------------------------------------------------------------ reading answers


def encrypt(payload: dict[str, Any], jwk: dict[str, str], **header: Any) -> str:
    """A JWE the way RFC 7518 §4.6 makes one (ECDH-ES, direct key agreement)."""
    eph = ec.generate_private_key(ec.SECP256R1())
    shared = eph.exchange(
        ec.ECDH(), public_key_from_jwk({k: jwk[k] for k in ("kty", "crv", "x", "y")})
    )
    head = {
        "alg": "ECDH-ES",
        "enc": "A128GCM",
        "kid": jwk["kid"],
        "epk": public_jwk(eph.public_key()),
    }
    head.update(header)
    enc = str(head["enc"])
    bits = 256 if enc == "A256GCM" else 128

    def counted(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    other = counted(enc.encode()) + counted(b"") + counted(b"") + bits.to_bytes(4, "big")
    cek = ConcatKDFHash(hashes.SHA256(), bits // 8, other).derive(shared)
    protected = b64e(json.dumps({k: v for k, v in head.items() if v is not None}).encode())
    iv = os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, json.dumps(payload).encode(), protected.encode())
    return ".".join([protected, "", b64e(iv), b64e(sealed[:-16]), b64e(sealed[-16:])])


def test_an_encrypted_answer_is_read() -> None:
    p = params()
    assert p.enc_key is not None
    vp = {"juminhyo": ["eyJ.eyJ.sig~d~"]}
    for enc in ("A128GCM", "A256GCM"):
        answer = oid4vp.read_answer(
            {"response": encrypt({"vp_token": vp, "state": p.state}, p.enc_key, enc=enc)}, p
        )
        assert answer == oid4vp.Presentation("eyJ.eyJ.sig~d~")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"alg": "ECDH-ES+A128KW"}, "must use alg ECDH-ES"),
        ({"enc": "A128CBC-HS256"}, "must use alg ECDH-ES"),
        ({"zip": "DEF"}, "JWE carries \\['zip'\\]"),
        ({"kid": "another"}, "kid is not this request's"),
        (
            {"epk": {"kty": "EC", "crv": "P-256", "x": b64e(b"\1" * 32), "y": b64e(b"\2" * 32)}},
            "epk",
        ),
        ({"epk": {"kty": "OKP", "crv": "X25519", "x": b64e(b"\1" * 32)}}, "epk must be a P-256"),
    ],
)
def test_jwe_headers_are_strict(header, message) -> None:
    p = params()
    assert p.enc_key is not None
    token = encrypt({"vp_token": {"juminhyo": ["x"]}, "state": p.state}, p.enc_key, **header)
    with pytest.raises(oid4vp.AnswerError, match=message):
        oid4vp.read_answer({"response": token}, p)


def test_a_jwe_to_another_key_or_tampered_does_not_decrypt() -> None:
    p, other = params(), params()
    assert p.enc_key is not None and other.enc_key is not None
    token = encrypt({"vp_token": {}, "state": p.state}, {**other.enc_key, "kid": p.enc_key["kid"]})
    with pytest.raises(oid4vp.AnswerError, match="does not decrypt"):
        oid4vp.read_answer({"response": token}, p)
    good = encrypt({"vp_token": {}, "state": p.state}, p.enc_key).split(".")
    good[3] = b64e(bytes(b ^ 1 for b in b64d(good[3])))
    with pytest.raises(oid4vp.AnswerError, match="does not decrypt"):
        oid4vp.read_answer({"response": ".".join(good)}, p)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"vp_token": '{"juminhyo":["a~"]}', "state": "other"}, "state does not match"),
        ({"vp_token": '{"juminhyo":["a~"]}'}, "state does not match"),
        ({"vp_token": '{"juminhyo":["a~","b~"]}', "state": "S"}, "array of one presentation"),
        ({"vp_token": '{"juminhyo":"a~"}', "state": "S"}, "array of one presentation"),
        ({"vp_token": '{"juminhyo":["a~"],"x":["b~"]}', "state": "S"}, "the one key"),
        ({"vp_token": "not json", "state": "S"}, "not JSON"),
        ({"state": "S"}, "missing vp_token"),
        ({"response": "a.b.c.d.e", "state": "S"}, "no encrypted response was asked for"),
    ],
)
def test_plain_answers_are_strict(form, message) -> None:
    p = params(mode="direct_post")
    form = {k: (p.state if v == "S" else v) for k, v in form.items()}
    with pytest.raises(oid4vp.AnswerError, match=message):
        oid4vp.read_answer(form, p)


def test_encryption_asked_for_is_required_but_a_refusal_may_be_plain() -> None:
    p = params()
    with pytest.raises(oid4vp.AnswerError, match="must be encrypted"):
        oid4vp.read_answer({"vp_token": '{"juminhyo":["a~"]}', "state": p.state}, p)
    refusal = oid4vp.read_answer({"error": "access_denied", "state": p.state}, p)
    assert refusal == oid4vp.Refusal("access_denied", "")
    assert refusal.result()["verdict"] == "refused"


# ------------------------------------------------------------------ exactly the requested claims


@pytest.mark.parametrize(
    ("disclosed", "extra"),
    [
        ([("age_equal_or_over",), ("age_equal_or_over", "20")], []),
        (
            [("age_equal_or_over",), ("age_equal_or_over", "20"), ("age_equal_or_over", "18")],
            ["age_equal_or_over.18"],
        ),
        ([("age_equal_or_over",), ("age_equal_or_over", "20"), ("birthdate",)], ["birthdate"]),
    ],
)
def test_unrequested_paths(disclosed, extra) -> None:
    assert dcql.unrequested(disclosed, dcql.PRESETS["age"]) == extra


def test_missing_paths() -> None:
    claims = {"age_equal_or_over": {"18": True}, "family_name": "山田"}
    assert dcql.missing(claims, dcql.PRESETS["age"]) == ["age_equal_or_over.20"]
    assert dcql.missing(claims, [("family_name",), ("address",)]) == ["address"]


def test_bad_presets_and_names() -> None:
    with pytest.raises(dcql.RequestedClaimsError, match="unknown preset"):
        dcql.parse_paths(preset="everything")
    with pytest.raises(dcql.RequestedClaimsError, match="bad claim name"):
        dcql.parse_paths(["a.b.c"])
    assert dcql.parse_paths(["address", "age_equal_or_over.20", "address"]) == (
        ("address",),
        ("age_equal_or_over", "20"),
    )


# ------------------------------------------------------------------ the age preset through the app


def _disclosure(*items: Any) -> tuple[str, str]:
    encoded = b64e(json.dumps([b64e(os.urandom(16)), *items], ensure_ascii=False).encode())
    return encoded, b64e(hashlib.sha256(encoded.encode("ascii")).digest())


def nested_age_credential(
    issuer_key: SigningKey, holder_key: SigningKey
) -> tuple[str, dict[str, str]]:
    """A 住民票 with ``age_equal_or_over`` as the EU PID rulebook has it: each member
    ("18", "20") selectively disclosable inside a disclosable object. Returns the JWT
    and the disclosures by path."""
    d18, h18 = _disclosure("18", True)
    d20, h20 = _disclosure("20", True)
    age, h_age = _disclosure("age_equal_or_over", {"_sd": sorted([h18, h20])})
    birth, h_birth = _disclosure("birthdate", "1980-04-01")
    name, h_name = _disclosure("family_name", "山田")
    payload = {
        "iss": ISS,
        "iat": NOW - 60,
        "exp": NOW + 86400,
        "vct": doctypes.get("juminhyo").vct_for(ISS),
        "cnf": {"jwk": holder_key.jwk},
        "_sd_alg": "sha-256",
        "_sd": sorted([h_age, h_birth, h_name]),
    }
    header = jws.encode_header({"alg": "ES256", "kid": issuer_key.kid, "typ": sdjwt.TYP})
    jwt = jws.sign(header, payload, issuer_key.private_key)
    return jwt, {"age": age, "18": d18, "20": d20, "birthdate": birth, "family_name": name}


def present(
    jwt: str, disclosures: list[str], holder_key: SigningKey, *, nonce: str, aud: str
) -> str:
    text = "~".join([jwt, *disclosures]) + "~"
    sd_hash = b64e(hashlib.sha256(text.encode("ascii")).digest())
    kb = {"aud": aud, "iat": int(time.time()), "nonce": nonce, "sd_hash": sd_hash}
    return text + jws.sign(
        jws.encode_header({"alg": "ES256", "typ": "kb+jwt"}), kb, holder_key.private_key
    )


@pytest.mark.parametrize(
    ("shown", "verdict", "message"),
    [
        (["age", "20"], "valid", None),
        (
            ["age", "20", "18"],
            "invalid",
            "依頼していない項目が開示されています（age_equal_or_over.18）",
        ),
        (["age"], "invalid", "依頼した項目が開示されていません（age_equal_or_over.20）"),
        (
            ["age", "20", "birthdate"],
            "invalid",
            "依頼していない項目が開示されています（birthdate）",
        ),
    ],
)
def test_the_age_preset_learns_20_or_over_and_nothing_else(
    tmp_path, issuer_key, holder_key, shown, verdict, message
) -> None:
    trust = TrustList.from_json(
        TrustList.document(ISS, name="飯塚市", municipality_code="402052", jwks=[issuer_key.jwk])
    )
    app = create_app(
        {
            "VERIFIER": Verifier(trust=trust),
            "TESTING": True,
            "RATE_LIMIT_PER_MINUTE": 0,
            "REQUESTS_DB": str(tmp_path / "r.db"),
            "OID4VP_ISSUERS": [ISS],
        }
    )
    client = app.test_client()
    r = client.post(
        "/request", data={"preset": "age", "response_mode": "direct_post"}, base_url=BASE
    )
    page = r.headers["Location"]
    html = client.get(page, base_url=BASE).get_data(as_text=True)
    assert '<span id="request-claims">20歳以上</span>' in html
    link = re.search(r'id="oid4vp-link" class="button" href="([^"]+)"', html)
    assert link is not None
    query = {
        k: v[0]
        for k, v in parse_qs(urlsplit(unquote(link.group(1).replace("&amp;", "&"))).query).items()
    }
    jwt, discs = nested_age_credential(issuer_key, holder_key)
    pres = present(
        jwt, [discs[s] for s in shown], holder_key, nonce=query["nonce"], aud=query["client_id"]
    )
    answer = client.post(
        urlsplit(query["response_uri"]).path,
        data={"vp_token": json.dumps({"juminhyo": [pres]}), "state": query["state"]},
        base_url=BASE,
    )
    assert answer.status_code == 200 and answer.get_json() == {"verdict": verdict}
    result = client.get(f"{page}/result", base_url=BASE).get_data(as_text=True)
    if message:
        assert message in result
    assert "1980" not in result


def test_a_pool_from_before_openid4vp_starts_afresh(tmp_path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE requests (id TEXT PRIMARY KEY, address TEXT, nonce TEXT,"
        " client_id TEXT, claims TEXT, expires_at REAL, result TEXT, presentation TEXT)"
    )
    db.commit()
    db.close()
    store = SqliteStore(path=path)
    p = params()
    req = store.create(client_id=BASE, claims=(), address="192.0.2.1", now=NOW, oid4vp=p.to_json())
    assert store.get_by_state(p.state, now=NOW).id == req.id
    assert oid4vp.Params.from_json(store.get(req.id, now=NOW).oid4vp or {}) == p
