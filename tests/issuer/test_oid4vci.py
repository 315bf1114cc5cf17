"""Delivery to the resident's wallet (OpenID4VCI pre-authorized code flow): metadata,
the clerk's offer page, token, nonce and credential endpoints, every refusal (a JSON
error that writes nothing but its audit entry), revocation of the delivered copy and
its anchor evidence before and after a real (in-process EVM) anchoring."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html as html_lib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from issuer_testing import add_user, csrf_token, sign_in
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from anchor import merkle
from anchor.accounts import ChainAccount
from anchor.backends import EvmChain
from anchor.batcher import Batcher
from anchor.registry import register_issuer
from anchor.store import Leaf
from credentials import _jws, doctypes, qr, sdjwt
from credentials._b64 import b64e
from credentials.keys import SigningKey, jwk_thumbprint
from credentials.status_list import verify_token
from credentials.trust import TrustList
from issuer import db
from issuer.accounts.models import User
from issuer.audit import service as audit
from issuer.audit.models import AuditEntry
from issuer.certificates import service as certificates
from issuer.keys import service as keys
from issuer.oid4vci import service as oid4vci
from issuer.oid4vci.models import DeliveredCredential, Offer
from verifier.policy import Verifier

ISSUER = "https://iizuka.example.jp"
PASSPHRASE = "city-key-passphrase"
SETTINGS = keys.IssuerSettings(issuer_id=ISSUER, name="飯塚市", municipality_code="402052")
GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
WALLET = SigningKey.generate()
OTHER = SigningKey.generate()


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def build(make_app: Any, tmp_path: Path) -> Callable[[str | None], Flask]:
    def make(url: str | None = None) -> Flask:
        keys.init(tmp_path / "data", SETTINGS, passphrase=PASSPHRASE)
        app: Flask = make_app(url, KEY_PASSPHRASE=PASSPHRASE)
        add_user(app, "clerk1", "clerk", display_name="窓口 花子")
        add_user(app, "boss", "supervisor", display_name="監督 太郎")
        return app

    return make


@pytest.fixture
def city_app(build: Callable[[str | None], Flask]) -> Flask:
    return build(None)  # SQLite


@pytest.fixture
def clerk(city_app: Flask) -> FlaskClient:
    client = city_app.test_client()
    assert sign_in(client, "clerk1").status_code == 302
    return client


# ------------------------------------------------------------------ helpers
def city_of(app: Flask) -> keys.City:
    return keys.load(app.config["DATA_DIR"], PASSPHRASE)


def user(session: Session, name: str) -> User:
    found = session.scalar(select(User).where(User.username == name))
    assert found is not None
    return found


def issue_juminhyo(app: Flask) -> str:
    with Session(db.engine_of(app)) as session:
        cert = certificates.issue_juminhyo(
            session,
            doctypes.sample("juminhyo"),
            city=city_of(app),
            clerk=user(session, "clerk1"),
            now=time.time(),
            include_household=False,
            include_domicile=False,
        )
        return cert.public_id


def revoke(app: Flask, public_id: str) -> None:
    with Session(db.engine_of(app)) as session:
        certificates.revoke(
            session,
            public_id,
            city=city_of(app),
            supervisor=user(session, "boss"),
            reason="転出",
            now=time.time(),
        )


def make_offer(clerk: FlaskClient, public_id: str) -> tuple[dict[str, Any], str, str]:
    """The clerk's button: (the credential offer fetched from its credential_offer_uri,
    the deep link, the tx_code)."""
    token = csrf_token(clerk, f"/certificates/{public_id}")
    response = clerk.post(f"/certificates/{public_id}/offer", data={"csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)
    page = clerk.get(response.headers["Location"]).get_data(as_text=True)
    link = re.search(r'href="(openid-credential-offer://[^"]+)"', page)
    tx = re.search(r'id="tx-code">(\d{3}) (\d{3})<', page)
    image = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert link and tx and image
    uri = html_lib.unescape(link.group(1))
    assert qr.decode_image(base64.b64decode(image.group(1))) == [uri]
    query = parse_qs(urlsplit(uri).query)
    assert set(query) == {"credential_offer_uri"}, uri
    response = clerk.application.test_client().get(reference_path(uri))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json(), uri, tx.group(1) + tx.group(2)


def reference_path(uri: str) -> str:
    """The issuer's path of an offer's credential_offer_uri."""
    (location,) = parse_qs(urlsplit(uri).query)["credential_offer_uri"]
    assert location.startswith(f"{ISSUER}/oid4vci/offers/"), location
    return location.removeprefix(ISSUER)


def code_of(offer: dict[str, Any]) -> str:
    return str(offer["grants"][GRANT]["pre-authorized_code"])


def token(wallet: FlaskClient, code: str, tx_code: str) -> Any:
    return wallet.post(
        "/oid4vci/token",
        data={"grant_type": GRANT, "pre-authorized_code": code, "tx_code": tx_code},
    )


def proof(
    nonce: str,
    *,
    key: SigningKey = WALLET,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    head = {"alg": "ES256", "typ": "openid4vci-proof+jwt", "jwk": WALLET.jwk, **(header or {})}
    body = {"aud": ISSUER, "iat": int(time.time()), "nonce": nonce, **claims}
    return _jws.sign(_jws.encode_header(head), body, key.private_key)


def unsigned(header: dict[str, Any], nonce: str, signature: bytes = b"") -> str:
    body = {"aud": ISSUER, "iat": int(time.time()), "nonce": nonce}
    signing_input = f"{_jws.encode_header(header)}.{b64e(_jws.canonical_json(body))}"
    return f"{signing_input}.{b64e(signature)}"


def hs256_with_public_key(nonce: str) -> str:
    header = {"alg": "HS256", "typ": "openid4vci-proof+jwt", "jwk": WALLET.jwk}
    body = {"aud": ISSUER, "iat": int(time.time()), "nonce": nonce}
    signing_input = f"{_jws.encode_header(header)}.{b64e(_jws.canonical_json(body))}"
    secret = json.dumps(WALLET.jwk).encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64e(mac)}"


def request_credential(wallet: FlaskClient, access_token: str, jwt: str | None, **body: Any) -> Any:
    payload: dict[str, Any] = {"credential_configuration_id": "juminhyo", **body}
    if jwt is not None:
        payload.setdefault("proof", {"proof_type": "jwt", "jwt": jwt})
    return wallet.post(
        "/oid4vci/credential", json=payload, headers={"Authorization": f"Bearer {access_token}"}
    )


def ready(app: Flask, clerk: FlaskClient) -> tuple[str, str, str]:
    """An issued 住民票 with an offer exchanged for a token: (certificate id, access
    token, a c_nonce from the nonce endpoint)."""
    public_id = issue_juminhyo(app)
    offer, _, tx_code = make_offer(clerk, public_id)
    response = token(app.test_client(), code_of(offer), tx_code)
    assert response.status_code == 200, response.get_json()
    return public_id, response.get_json()["access_token"], fresh_nonce(app.test_client())


def fresh_nonce(wallet: FlaskClient) -> str:
    response = wallet.post("/oid4vci/nonce")
    assert response.status_code == 200
    return str(response.get_json()["c_nonce"])


def trust_from(app: Flask) -> TrustList:
    meta = app.test_client().get("/.well-known/jwt-vc-issuer").get_json()
    entry = {"name": meta["name"], "municipality_code": meta["municipality_code"]}
    return TrustList.from_json({"issuers": {meta["issuer"]: {**entry, "jwks": meta["jwks"]}}})


def status_of(app: Flask, credential: str) -> int:
    ref = sdjwt.ParsedSdJwt.parse(credential).unverified_payload["status"]["status_list"]
    response = app.test_client().get(ref["uri"].removeprefix(ISSUER))
    entries = verify_token(
        response.get_data(as_text=True),
        resolve_key=trust_from(app).resolve_key,
        uri=ref["uri"],
        issuer=ISSUER,
        now=time.time(),
    )
    return entries.get(ref["idx"])


def counts(app: Flask) -> tuple[int, int]:
    """(delivered credentials, queued leaves)."""
    with Session(db.engine_of(app)) as session:
        delivered = session.scalar(select(func.count()).select_from(DeliveredCredential))
        leaves = session.scalar(select(func.count()).select_from(Leaf))
        return delivered or 0, leaves or 0


def last_audit(app: Flask) -> AuditEntry:
    with Session(db.engine_of(app)) as session:
        entry = session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
        assert entry is not None
        return entry


def assert_error(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    if request_path(response).startswith("/oid4vci/evidence/"):  # the project's document
        assert body["error"]["code"] == error, body
        assert body["error"]["message"]["ja"] and body["error"]["message"]["en"]
    else:  # token and credential endpoints: RFC 6749 §5.2
        assert body["error"] == error, body
    return dict(body)


def request_path(response: Any) -> str:
    return str(response.request.path)


# ------------------------------------------------------------------ metadata
def test_metadata_documents(city_app: Flask):
    client = city_app.test_client()
    response = client.get("/.well-known/openid-credential-issuer")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    meta = response.get_json()
    assert meta["credential_issuer"] == ISSUER
    assert meta["credential_endpoint"] == f"{ISSUER}/oid4vci/credential"
    assert meta["nonce_endpoint"] == f"{ISSUER}/oid4vci/nonce"
    assert meta["token_endpoint"] == f"{ISSUER}/oid4vci/token"
    configs = meta["credential_configurations_supported"]
    assert set(configs) == {"juminhyo", "partnership", "contract"}
    entry = configs["juminhyo"]
    assert entry["format"] == "dc+sd-jwt" and entry["vct"] == f"{ISSUER}/vct/juminhyo/1"
    assert entry["cryptographic_binding_methods_supported"] == ["jwk"]
    assert entry["credential_signing_alg_values_supported"] == ["ES256"]
    assert entry["proof_types_supported"] == {
        "jwt": {"proof_signing_alg_values_supported": ["ES256"]}
    }
    names = {d["locale"]: d["name"] for d in entry["credential_metadata"]["display"]}
    assert names == {"ja-JP": "住民票の写し", "en-US": "Certificate of residence"}
    assert "display" not in entry  # the pre-1.0 place: credential_metadata only
    claims = {tuple(c["path"]): c for c in entry["credential_metadata"]["claims"]}
    assert claims[("birthdate",)]["mandatory"] is True
    assert {d["locale"]: d["name"] for d in claims[("age_equal_or_over", "20")]["display"]} == {
        "ja-JP": "20歳以上",
        "en-US": "20 or over",
    }
    assert ("age_equal_or_over", "18") in claims and ("age_equal_or_over",) in claims
    assert set(claims) == {
        tuple(c["path"]) for c in doctypes.get("juminhyo").metadata_template["claims"]
    }
    assert client.get(entry["vct"].removeprefix(ISSUER)).status_code == 200
    auth = client.get("/.well-known/oauth-authorization-server")
    assert auth.headers["Access-Control-Allow-Origin"] == "*"
    doc = auth.get_json()
    assert doc["issuer"] == ISSUER and doc["token_endpoint"] == meta["token_endpoint"]
    assert doc["pre-authorized_grant_anonymous_access_supported"] is True
    assert doc["grant_types_supported"] == [GRANT]


# ------------------------------------------------------------------ the flow
def test_offer_token_nonce_credential(build: Callable[[str | None], Flask], database_url: str):
    app = build(database_url)
    clerk = app.test_client()
    assert sign_in(clerk, "clerk1").status_code == 302
    public_id = issue_juminhyo(app)
    offer, uri, tx_code = make_offer(clerk, public_id)
    assert uri.startswith("openid-credential-offer://?credential_offer_uri=")
    assert offer["credential_issuer"] == ISSUER
    assert offer["credential_configuration_ids"] == ["juminhyo"]
    assert offer["grants"][GRANT]["tx_code"] == {
        "input_mode": "numeric",
        "length": 6,
        "description": offer["grants"][GRANT]["tx_code"]["description"],
    }
    with Session(db.engine_of(app)) as session:
        (row,) = session.scalars(select(Offer))
        assert row.code_hash == hashlib.sha256(code_of(offer).encode()).digest()
        assert (
            tx_code.encode() not in row.tx_code_hash
            and code_of(offer).encode() not in row.code_hash
        )
    with Session(db.engine_of(app)) as session:
        created = session.scalars(
            select(AuditEntry).where(AuditEntry.action == audit.OFFER_CREATED)
        ).one()
        assert created.actor == "clerk1" and created.details["offer"] == row.public_id

    wallet = app.test_client()  # no session, no CSRF token
    response = token(wallet, code_of(offer), tx_code)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    grant = response.get_json()
    assert set(grant) == {"access_token", "token_type", "expires_in"}  # no c_nonce: 1.0
    assert grant["token_type"] == "Bearer" and grant["expires_in"] > 0
    fresh = wallet.post("/oid4vci/nonce")
    assert fresh.status_code == 200 and fresh.headers["Cache-Control"] == "no-store"
    c_nonce = fresh.get_json()["c_nonce"]
    assert c_nonce != fresh_nonce(wallet)

    _, leaves_before = counts(app)
    response = wallet.post(
        "/oid4vci/credential",
        json={"credential_configuration_id": "juminhyo", "proofs": {"jwt": [proof(c_nonce)]}},
        headers={"Authorization": f"Bearer {grant['access_token']}"},
    )
    assert response.status_code == 200, response.get_json()
    (item,) = response.get_json()["credentials"]
    credential = item["credential"]

    trust = trust_from(app)
    result = Verifier(trust=trust).verify(credential, now=time.time())
    assert result.verdict == "valid", result.to_json()
    payload = sdjwt.ParsedSdJwt.parse(credential).unverified_payload
    assert payload["cnf"] == {"jwk": WALLET.jwk}
    original = opened(app, public_id)
    first = sdjwt.ParsedSdJwt.parse(original).unverified_payload
    assert payload["status"] == first["status"] and payload["exp"] == first["exp"]
    assert result.disclosed == {
        k: v
        for k, v in sdjwt.verify(
            original, resolve_key=trust.resolve_key, now=time.time()
        ).disclosed.items()
    }
    presentation = sdjwt.present(
        credential,
        disclose=["family_name", "address"],
        holder_key=WALLET,
        nonce="verifier-nonce",
        aud="https://shop.example",
        iat=int(time.time()),
    )
    checked = Verifier(trust=trust).verify(
        presentation, now=time.time(), nonce="verifier-nonce", aud="https://shop.example"
    )
    assert checked.verdict == "valid" and checked.check("holder").status == "pass"

    leaf = merkle.leaf_hash(credential.split("~", 1)[0])
    assert counts(app) == (1, leaves_before + 1)
    with Session(db.engine_of(app)) as session:
        assert session.scalar(select(Leaf).where(Leaf.leaf == leaf)) is not None
        stored = session.scalar(select(DeliveredCredential))
        assert stored is not None and stored.holder_kid == WALLET.kid
        assert "山田".encode() not in stored.sealed
        (row,) = session.scalars(select(Offer))
        assert row.state == "redeemed" and row.holder_key_id == WALLET.kid
    entry = last_audit(app)
    assert entry.action == audit.OFFER_REDEEMED
    assert entry.details["holder_key_id"] == jwk_thumbprint(WALLET.jwk)
    assert "山田" not in json.dumps(entry.details, ensure_ascii=False)

    page = clerk.get(f"/certificates/{public_id}/offer/{row.public_id}").get_data(as_text=True)
    assert "ウォレットに送付しました" in page and "tx-code" not in page

    # Once used, neither the code nor the token works again.
    assert_error(token(wallet, code_of(offer), tx_code), 400, "invalid_grant")
    again = request_credential(wallet, grant["access_token"], proof(fresh_nonce(wallet)))
    assert_error(again, 401, "invalid_token")


def opened(app: Flask, public_id: str) -> str:
    city = city_of(app)
    with Session(db.engine_of(app)) as session:
        cert = certificates.find(session, public_id)
        content = json.loads(city.unseal(cert.sealed, context=public_id.encode()))
        return str(content["credential"])


def test_revoking_the_certificate_revokes_the_delivered_copy(city_app: Flask, clerk: FlaskClient):
    public_id, access_token, c_nonce = ready(city_app, clerk)
    response = request_credential(city_app.test_client(), access_token, proof(c_nonce))
    credential = response.get_json()["credentials"][0]["credential"]
    assert status_of(city_app, credential) == 0
    revoke(city_app, public_id)
    assert status_of(city_app, credential) == 1


def test_a_revoked_certificate_is_not_delivered(city_app: Flask, clerk: FlaskClient):
    public_id, access_token, c_nonce = ready(city_app, clerk)
    revoke(city_app, public_id)
    before = counts(city_app)
    response = request_credential(city_app.test_client(), access_token, proof(c_nonce))
    assert_error(response, 400, "credential_request_denied")
    assert counts(city_app) == before
    assert last_audit(city_app).action == audit.OFFER_REJECTED
    page = clerk.get(f"/certificates/{public_id}").get_data(as_text=True)
    assert "oid4vci" not in page and "/offer" not in page  # no button any more
    token_ = csrf_token(clerk, f"/certificates/{public_id}")
    refused = clerk.post(f"/certificates/{public_id}/offer", data={"csrf_token": token_})
    assert refused.status_code == 303


def test_the_offer_form_needs_the_csrf_token(city_app: Flask, clerk: FlaskClient):
    public_id = issue_juminhyo(city_app)
    assert clerk.post(f"/certificates/{public_id}/offer").status_code == 400
    anonymous = city_app.test_client()
    assert anonymous.post(f"/certificates/{public_id}/offer").status_code == 400
    with Session(db.engine_of(city_app)) as session:
        assert session.scalar(select(func.count()).select_from(Offer)) == 0


# ------------------------------------------------------------------ offer by reference
def test_the_offer_is_served_by_reference_while_it_waits(city_app: Flask, clerk: FlaskClient):
    public_id = issue_juminhyo(city_app)
    offer, uri, tx_code = make_offer(clerk, public_id)
    # A small QR code: before the offer went by reference it was version 19.
    assert qr.qr_version(uri) <= 7, (len(uri), qr.qr_version(uri))
    path = reference_path(uri)
    reference = path.rsplit("/", 1)[1]
    assert len(reference) >= 22 and reference not in json.dumps(offer)
    wallet = city_app.test_client()  # another client: no cookie needed
    response = wallet.get(path)
    assert response.status_code == 200 and response.get_json() == offer
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert offer["credential_configuration_ids"] == ["juminhyo"]
    with Session(db.engine_of(city_app)) as session:  # only the code's hash is stored
        (row,) = session.scalars(select(Offer))
        assert row.code_hash == hashlib.sha256(code_of(offer).encode()).digest()
    assert_unavailable(wallet.get(path[:-1] + ("A" if path[-1] != "A" else "B")))
    assert_unavailable(wallet.get("/oid4vci/offers/short"))
    # Once the code is exchanged, the reference no longer serves the offer.
    assert token(wallet, code_of(offer), tx_code).status_code == 200
    assert_unavailable(wallet.get(path))


def test_an_expired_or_blocked_offer_is_not_served(city_app: Flask, clerk: FlaskClient):
    city_app.config["OFFER_TTL_SECONDS"] = 1
    _, uri, _ = make_offer(clerk, issue_juminhyo(city_app))
    time.sleep(1.05)
    assert_unavailable(city_app.test_client().get(reference_path(uri)))
    city_app.config["OFFER_TTL_SECONDS"] = 600
    offer, uri, tx_code = make_offer(clerk, issue_juminhyo(city_app))
    wallet = city_app.test_client()
    wrong = f"{(int(tx_code) + 1) % 1_000_000:06d}"
    for _ in range(oid4vci.MAX_TX_ATTEMPTS):
        assert_error(token(wallet, code_of(offer), wrong), 400, "invalid_grant")
    assert_unavailable(wallet.get(reference_path(uri)))


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 404, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "offer_unavailable" and "期限切れ" in error["message"]["ja"]
    assert response.headers["Cache-Control"] == "no-store"


# ------------------------------------------------------------------ token errors
def test_token_request_errors(city_app: Flask, clerk: FlaskClient):
    public_id = issue_juminhyo(city_app)
    offer, _, tx_code = make_offer(clerk, public_id)
    wallet = city_app.test_client()
    code = code_of(offer)
    bad_grant = wallet.post(
        "/oid4vci/token", data={"grant_type": "authorization_code", "pre-authorized_code": code}
    )
    assert_error(bad_grant, 400, "unsupported_grant_type")
    missing = wallet.post("/oid4vci/token", data={"grant_type": GRANT, "pre-authorized_code": code})
    assert_error(missing, 400, "invalid_request")
    as_json = wallet.post(
        "/oid4vci/token",
        json={"grant_type": GRANT, "pre-authorized_code": code, "tx_code": tx_code},
    )
    assert_error(as_json, 400, "invalid_request")
    assert_error(token(wallet, "no-such-code", tx_code), 400, "invalid_grant")
    huge = wallet.post("/oid4vci/token", data={"grant_type": GRANT, "x": "a" * 100_000})
    assert_error(huge, 413, "invalid_request")
    # The offer survived all of that.
    assert token(wallet, code, tx_code).status_code == 200


def test_wrong_tx_codes_block_the_offer(city_app: Flask, clerk: FlaskClient):
    public_id = issue_juminhyo(city_app)
    offer, _, tx_code = make_offer(clerk, public_id)
    wallet = city_app.test_client()
    wrong = f"{(int(tx_code) + 1) % 1_000_000:06d}"
    for tried in range(1, oid4vci.MAX_TX_ATTEMPTS + 1):
        refused = token(wallet, code_of(offer), wrong)
        assert_error(refused, 400, "invalid_grant")
        assert refused.get_json()["attempts_remaining"] == oid4vci.MAX_TX_ATTEMPTS - tried
        entry = last_audit(city_app)
        assert entry.action == audit.OFFER_REJECTED and entry.details["reason"] == "wrong_tx_code"
    assert_error(token(wallet, code_of(offer), tx_code), 400, "invalid_grant")
    assert last_audit(city_app).details["reason"] == "blocked"
    with Session(db.engine_of(city_app)) as session:
        (row,) = session.scalars(select(Offer))
        assert row.state == "blocked" and row.access_token_hash is None


def test_an_expired_offer_is_refused(city_app: Flask, clerk: FlaskClient):
    city_app.config["OFFER_TTL_SECONDS"] = 1
    public_id = issue_juminhyo(city_app)
    offer, _, tx_code = make_offer(clerk, public_id)
    time.sleep(1.05)
    assert_error(token(city_app.test_client(), code_of(offer), tx_code), 400, "invalid_grant")
    entry = last_audit(city_app)
    assert entry.action == audit.OFFER_REJECTED and entry.details["reason"] == "expired"


# ------------------------------------------------------------------ credential errors
FORGED: dict[str, Callable[[str], str]] = {
    "signed_by_another_key": lambda n: proof(n, key=OTHER),
    "wrong_aud": lambda n: proof(n, aud="https://evil.example"),
    "stale_iat": lambda n: proof(n, iat=int(time.time()) - 3600),
    "future_iat": lambda n: proof(n, iat=int(time.time()) + 3600),
    "wrong_typ": lambda n: proof(n, header={"typ": "JWT"}),
    "private_jwk": lambda n: proof(n, header={"jwk": {**WALLET.jwk, "d": "AAAA"}}),
    "kid_instead_of_jwk": lambda n: proof(n, header={"kid": "k1"}),
    "alg_none": lambda n: unsigned(
        {"alg": "none", "typ": "openid4vci-proof+jwt", "jwk": WALLET.jwk}, n
    ),
    "hs256_public_key": hs256_with_public_key,
    "not_a_jwt": lambda n: "not.a.jwt",
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_forged_proofs_are_refused(city_app: Flask, clerk: FlaskClient, name: str):
    _, access_token, c_nonce = ready(city_app, clerk)
    wallet = city_app.test_client()
    before = counts(city_app)
    response = request_credential(wallet, access_token, FORGED[name](c_nonce))
    assert_error(response, 400, "invalid_proof")
    assert counts(city_app) == before
    entry = last_audit(city_app)
    assert entry.action == audit.OFFER_REJECTED and entry.details["reason"] == "invalid_proof"
    # Nothing was consumed: the genuine proof still works.
    assert request_credential(wallet, access_token, proof(c_nonce)).status_code == 200


def test_nonce_errors_send_the_wallet_to_the_nonce_endpoint(city_app: Flask, clerk: FlaskClient):
    _, access_token, _ = ready(city_app, clerk)
    wallet = city_app.test_client()
    for bad in ("made-up", b64e(b"\0" * 40), ""):
        body = assert_error(
            request_credential(wallet, access_token, proof(bad)), 400, "invalid_nonce"
        )
        assert set(body) == {"error", "error_description"}  # 1.0: no c_nonce here
    fresh = fresh_nonce(wallet)
    assert request_credential(wallet, access_token, proof(fresh)).status_code == 200
    # A nonce works once, even with another offer's token.
    _, other_token, _ = ready(city_app, clerk)
    assert_error(request_credential(wallet, other_token, proof(fresh)), 400, "invalid_nonce")
    again = request_credential(wallet, other_token, proof(fresh_nonce(wallet)))
    assert again.status_code == 200
    assert counts(city_app)[0] == 2


def test_credential_request_errors(city_app: Flask, clerk: FlaskClient):
    _, access_token, c_nonce = ready(city_app, clerk)
    wallet = city_app.test_client()
    before = counts(city_app)
    no_token = wallet.post("/oid4vci/credential", json={"credential_configuration_id": "juminhyo"})
    assert_error(no_token, 401, "invalid_token")
    assert no_token.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(request_credential(wallet, "forged", proof(c_nonce)), 401, "invalid_token")
    unknown = request_credential(
        wallet, access_token, proof(c_nonce), credential_configuration_id="contract"
    )
    assert_error(unknown, 400, "unknown_credential_configuration")
    two = request_credential(
        wallet, access_token, None, proofs={"jwt": [proof(c_nonce), proof(c_nonce)]}
    )
    assert_error(two, 400, "invalid_proof")
    not_json = wallet.post(
        "/oid4vci/credential",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {access_token}"},
    )
    assert_error(not_json, 400, "invalid_credential_request")
    huge = request_credential(wallet, access_token, proof(c_nonce), padding="x" * 200_000)
    assert_error(huge, 413, "invalid_request")
    assert counts(city_app) == before
    assert request_credential(wallet, access_token, proof(c_nonce)).status_code == 200


# ------------------------------------------------------------------ evidence
def test_evidence_before_and_after_anchoring(city_app: Flask, clerk: FlaskClient):
    _, access_token, c_nonce = ready(city_app, clerk)
    wallet = city_app.test_client()
    response = request_credential(wallet, access_token, proof(c_nonce))
    credential = response.get_json()["credentials"][0]["credential"]
    leaf = merkle.leaf_hash(credential.split("~", 1)[0])
    pending = wallet.get(f"/oid4vci/evidence/{leaf.hex()}")
    assert_error(pending, 404, "not_anchored_yet")
    assert int(pending.headers["Retry-After"]) > 0
    assert_error(wallet.get(f"/oid4vci/evidence/{'00' * 32}"), 404, "not_found")
    assert_error(wallet.get("/oid4vci/evidence/zz"), 404, "not_found")

    gov = EvmChain.fresh()
    account = ChainAccount.dev(1)
    register_issuer(
        gov, account.address, issuer_id=ISSUER, name="飯塚市", municipality_code="402052"
    )
    batcher = Batcher(
        engine=db.engine_of(city_app), chain=gov.using(account), issuer_address=account.address
    )
    batcher.flush()
    batcher.run_until_idle(timeout=30, interval=0)

    anchored = wallet.get(f"/oid4vci/evidence/{leaf.hex()}")
    assert anchored.status_code == 200 and anchored.headers["Access-Control-Allow-Origin"] == "*"
    doc = anchored.get_json()
    assert doc["chain_id"] is None and doc["registry_address"] is None  # no chain.json here
    receipt = merkle.Receipt.from_json(doc["receipt"])
    merkle.verify_inclusion(leaf, receipt, bytes.fromhex(doc["root"].removeprefix("0x")))
    record = gov.read_anchor(account.address, bytes.fromhex(doc["root"][2:]))
    assert record is not None and record.block == doc["block"]
