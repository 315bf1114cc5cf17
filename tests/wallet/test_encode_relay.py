"""The wallet server's stateless QR encoder and its relay, through Flask's test client:
embedded and too-large presentations, evidence as the issuer sends it, and a relay that
hands a sealed blob out once, expires it, and refuses oversized or reused ids."""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from anchor import evidence as anchor_evidence
from anchor import merkle
from credentials import doctypes, qr, sdjwt
from credentials.keys import SigningKey
from wallet_demo import encode, relay

ISS = "https://city.example"
NOW = int(time.time())


def make_app(**config: Any) -> Flask:
    """The wallet app when it exists, else a bare app with these two blueprints."""
    try:
        from wallet_demo.app import create_app
    except ImportError:
        app = Flask(__name__)
        app.config.update(config)
        app.register_blueprint(encode.bp)
        app.register_blueprint(relay.bp)
        return app
    return create_app({"TESTING": True, **config})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> FlaskClient:
    return make_app(TESTING=True, RELAY_TTL_SECONDS=600, RELAY_CLOCK=clock).test_client()


def credential(key: SigningKey, doc: str = "juminhyo") -> str:
    dt = doctypes.get(doc)
    return sdjwt.issue(
        doctypes.sample(doc),
        key=key,
        issuer=ISS,
        vct=dt.vct_for(ISS),
        iat=NOW,
        exp=NOW + 86400,
        always_plain=dt.never_disclosable,
    ).sd_jwt


def evidence_document(cred: str) -> dict[str, Any]:
    """What the issuer's ``GET /oid4vci/evidence/<leaf>`` answers."""
    leaves = [merkle.leaf_hash(cred.split("~")[0]), merkle.leaf_hash("eyJ.other.x")]
    receipt = merkle.build(leaves).receipt(7, 0)
    return {
        "receipt": receipt.to_json(),
        "root": "0x" + "00" * 32,
        "chain_id": 31337,
        "registry_address": None,
        "block": 4,
        "timestamp": 1,
        "tx": "0x" + "ab" * 32,
    }


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --------------------------------------------------------------------------- encode


def test_small_presentation_is_embedded_with_the_receipt(client, issuer_key) -> None:
    cred = credential(issuer_key)
    pres = sdjwt.present(cred, disclose=["family_name", "given_name", "address"])
    doc = evidence_document(cred)
    r = client.post("/api/encode", json={"presentation": pres, "evidence": doc})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["mode"] == "embedded" and body["payload"].startswith("SH1:")
    assert body["version"] == qr.qr_version(body["payload"]) <= 25
    decoded = qr.decode_embedded(body["payload"])
    assert decoded.presentation == pres
    want = anchor_evidence.encode_receipt(merkle.Receipt.from_json(doc["receipt"]))
    assert decoded.evidence == want
    assert r.headers["Cache-Control"] == "no-store"


def test_without_evidence(client, issuer_key) -> None:
    pres = sdjwt.present(credential(issuer_key), disclose=["birthdate"])
    body = client.post("/api/encode", json={"presentation": pres, "evidence": None}).get_json()
    assert body["mode"] == "embedded"
    assert qr.decode_embedded(body["payload"]).evidence is None


def test_too_large_gives_the_container_for_link_mode(client, issuer_key, monkeypatch) -> None:
    cred = credential(issuer_key, "partnership")
    pres = sdjwt.present(cred, disclose=sdjwt.claim_names(cred))
    monkeypatch.setattr(encode, "MAX_EMBEDDED_VERSION", 1)
    body = client.post(
        "/api/encode", json={"presentation": pres, "evidence": evidence_document(cred)}
    ).get_json()
    assert body["mode"] == "too_large" and "=" not in body["container"]
    payload = qr.decode_container(b64u_decode(body["container"]))
    assert payload.presentation == pres and payload.evidence is not None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"presentation": 5}',
        b'{"presentation": "hello"}',
        b'{"presentation": ""}',
        b'{"presentation": "eyJ.eyJ.x~", "evidence": {"receipt": "x"}}',
        b'{"presentation": "eyJ.eyJ.x~", "evidence": 7}',
        b'{"presentation": "eyJ.eyJ.x~", "evidence": []}',
        b'{"presentation": "eyJ.eyJ.x~", "evidence": {}}',
        b"\xff\xfe\x00",
    ],
)
def test_garbage_is_a_400_json_error(client, body: bytes) -> None:
    r = client.post("/api/encode", data=body, content_type="application/json")
    assert r.status_code == 400
    assert r.get_json()["error"]["code"] in ("bad_request", "bad_evidence")


def test_encode_limits_the_body(client) -> None:
    r = client.post(
        "/api/encode",
        data=b'{"presentation": "' + b"a" * (65 * 1024) + b'"}',
        content_type="application/json",
    )
    assert r.status_code == 413


# --------------------------------------------------------------------------- relay


def sealed(issuer_key: SigningKey) -> tuple[qr.LinkRef, bytes, str]:
    ref = qr.LinkRef.new("http://127.0.0.1:5000/relay")
    pres = sdjwt.present(credential(issuer_key), disclose=["address"])
    return ref, qr.seal(pres, ref), pres


def blob_path(ref: qr.LinkRef) -> str:
    return "/relay/" + ref.to_url().rpartition("/")[2].partition("#")[0]


def test_relay_hands_the_blob_out_once(client, issuer_key) -> None:
    ref, blob, pres = sealed(issuer_key)
    path = blob_path(ref)
    r = client.put(path, data=blob, content_type="application/octet-stream")
    assert r.status_code == 201
    got = client.get(path)
    assert got.status_code == 200
    assert got.headers["Cache-Control"] == "no-store"
    assert got.headers["Access-Control-Allow-Origin"] == "*"
    assert qr.open_sealed(got.data, ref).presentation == pres
    assert client.get(path).status_code == 404


def test_relay_refuses_a_used_id(client, issuer_key) -> None:
    ref, blob, _ = sealed(issuer_key)
    path = blob_path(ref)
    assert client.put(path, data=blob).status_code == 201
    assert client.put(path, data=blob).status_code == 409
    client.get(path)
    assert client.put(path, data=blob).status_code == 409


def test_relay_blobs_expire(client, clock, issuer_key) -> None:
    ref, blob, _ = sealed(issuer_key)
    path = blob_path(ref)
    assert client.put(path, data=blob).status_code == 201
    clock.now += 601
    assert client.get(path).status_code == 404


def test_relay_refuses_oversized_and_bad_ids(client) -> None:
    good = "A" * 26
    assert client.put("/relay/" + good, data=os.urandom(64 * 1024 + 1)).status_code == 413
    assert client.put("/relay/" + good, data=b"short").status_code == 400
    for bad in ("a" * 26, "A" * 25, "A" * 27, "AAAAAAAAAAAAAAAAAAAAAAAAA1", "..%2F"):
        assert client.put("/relay/" + bad, data=os.urandom(100)).status_code in (400, 404)
        assert client.get("/relay/" + bad).status_code == 404
    assert client.get("/relay/" + good).status_code == 404


def test_relay_is_bounded() -> None:
    store = relay.BlobStore(max_blobs=2, clock=lambda: 0.0)
    store.put("A" * 26, b"x")
    store.put("B" * 26, b"x")
    with pytest.raises(relay.RelayFull):
        store.put("C" * 26, b"x")


def test_container_on_request(client, issuer_key) -> None:
    pres = sdjwt.present(credential(issuer_key), disclose=["birthdate"])
    body = client.post("/api/encode?container=1", json={"presentation": pres}).get_json()
    assert body["mode"] == "too_large"
    assert qr.decode_container(b64u_decode(body["container"])).presentation == pres


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/api/encode", {"data": b"x" * (65 * 1024)}, 413),
        ("POST", "/api/encode", {"json": [1]}, 400),
        ("POST", "/api/encode", {"json": {"presentation": "hello"}}, 400),
        ("PUT", "/relay/not-an-id", {"data": b"x" * 40}, 400),
        ("PUT", "/relay/" + "A" * 26, {"data": b"x" * 10}, 400),
        ("PUT", "/relay/" + "B" * 26, {"data": b"x" * (65 * 1024)}, 413),
        ("GET", "/relay/" + "C" * 26, {}, 404),
    ],
)
def test_encoder_and_relay_errors_are_the_one_error_document(
    client, method, path, kwargs, status
) -> None:
    r = client.open(path, method=method, **kwargs)
    assert r.status_code == status
    error = r.get_json()["error"]
    assert set(error) == {"code", "message"} and set(error["message"]) == {"ja", "en"}
    assert all(error["message"].values()) and r.headers["Cache-Control"] == "no-store"


def test_relay_counts_blobs_per_client_and_in_all(clock, issuer_key) -> None:
    app = make_app(RELAY_CLOCK=clock, RELAY_PER_CLIENT=2, RELAY_MAX_BLOBS=3)
    blob = sealed(issuer_key)[1]

    def put(address: str) -> Any:
        path = blob_path(qr.LinkRef.new("http://127.0.0.1:5000/relay"))
        return app.test_client().put(path, data=blob, environ_base={"REMOTE_ADDR": address})

    assert [put("192.0.2.1").status_code for _ in range(2)] == [201, 201]
    crowded = put("192.0.2.1")  # a third from the same address: its quota
    assert crowded.status_code == 429 and crowded.get_json()["error"]["code"] == "rate_limited"
    assert crowded.headers["Retry-After"] == "600"
    assert crowded.get_json()["error"]["message"]["ja"]
    assert put("192.0.2.2").status_code == 201  # another address still may
    full = put("192.0.2.3")  # but the relay as a whole is full
    assert full.status_code == 503 and full.headers["Retry-After"] == "600"
    clock.now += 601  # expired blobs free both
    assert put("192.0.2.1").status_code == 201 and put("192.0.2.3").status_code == 201


def test_relay_bounds_the_bytes_kept_and_the_ids_remembered() -> None:
    store = relay.BlobStore(max_bytes=100, max_used=3, clock=lambda: 0.0)
    store.put("A" * 26, b"x" * 60, client="a")
    with pytest.raises(relay.RelayFull):
        store.put("B" * 26, b"x" * 41, client="b")
    store.put("B" * 26, b"x" * 40, client="b")
    assert store.take("A" * 26) == b"x" * 60
    store.put("C" * 26, b"x" * 50, client="c")
    store.put("D" * 26, b"x" * 10, client="d")
    assert store._bytes == 100
    assert list(store._used) == ["B" * 26, "C" * 26, "D" * 26]  # the oldest forgotten


def test_behind_a_proxy_the_relay_counts_the_forwarded_address(issuer_key) -> None:
    app = make_app(RELAY_PER_CLIENT=1, TRUSTED_PROXIES=1)
    blob = sealed(issuer_key)[1]

    def put(forwarded: str) -> int:
        path = blob_path(qr.LinkRef.new("http://127.0.0.1:5000/relay"))
        headers = {"X-Forwarded-For": forwarded}
        environ = {"REMOTE_ADDR": "10.0.0.1"}  # the proxy, for every resident
        r = app.test_client().put(path, data=blob, headers=headers, environ_base=environ)
        return r.status_code

    assert [put("192.0.2.1"), put("192.0.2.2"), put("192.0.2.1")] == [201, 201, 429]
