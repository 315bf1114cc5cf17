"""Cross-device requests through Flask's test client: the company's page makes an
OpenID4VP request (QR code and link with a nonce; unsigned here, ``redirect_uri:``,
``direct_post``), the wallet answers with a presentation whose key-binding JWT signs
that nonce for this verifier, the page polls and shows the result once. Replays,
expired requests and a wrong nonce fail; the pool's quotas hold."""

from __future__ import annotations

import html as htmllib
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from credentials import doctypes, sdjwt
from credentials.keys import SigningKey
from credentials.trust import TrustList
from verifier import requests as vrequests
from verifier.app import create_app
from verifier.policy import Verifier

ISS = "https://city.example"
NOW = int(time.time())
BASE = "http://verifier.test"


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_app(issuer_key: SigningKey, clock: Clock, **config: Any) -> Flask:
    trust = TrustList.from_json(
        TrustList.document(ISS, name="飯塚市", municipality_code="402052", jwks=[issuer_key.jwk])
    )
    return create_app(
        {
            "VERIFIER": Verifier(trust=trust),
            "TESTING": True,
            "CLOCK": clock,
            "RATE_LIMIT_PER_MINUTE": 0,
            "OID4VP_RESPONSE_MODE": "direct_post",
            **config,
        }
    )


@pytest.fixture
def app(issuer_key: SigningKey, clock: Clock, tmp_path: Path) -> Flask:
    return make_app(issuer_key, clock, REQUESTS_DB=str(tmp_path / "requests.db"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def credential(issuer_key: SigningKey, holder_key: SigningKey) -> str:
    dt = doctypes.get("juminhyo")
    return sdjwt.issue(
        doctypes.sample("juminhyo"),
        key=issuer_key,
        issuer=ISS,
        vct=dt.vct_for(ISS),
        iat=NOW - 100,
        exp=NOW + 86400,
        always_plain=dt.never_disclosable,
        holder_jwk=holder_key.jwk,
    ).sd_jwt


SHOWN = ["family_name", "given_name", "address"]


def new_request(client: FlaskClient, claims: list[str] | None = None) -> dict[str, Any]:
    """POST /request as the scan page's form does; the OpenID4VP request read from the
    page's link (its parameters, with the page's ``id``)."""
    r = client.post("/request", data={"claims": claims or SHOWN}, base_url=BASE)
    assert r.status_code == 303
    page = client.get(r.headers["Location"], base_url=BASE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'src="data:image/png;base64,' in html and "request.js" in html
    assert "shomei-request" not in html and 'id="request-text"' not in html
    link = re.search(r'id="oid4vp-link" class="button" href="([^"]+)"', html)
    assert link is not None
    query = parse_qs(urlsplit(htmllib.unescape(link.group(1))).query)
    doc: dict[str, Any] = {k: v[0] for k, v in query.items()}
    doc["id"] = r.headers["Location"].rsplit("/", 1)[-1]
    return doc


def answer(cred: str, key: SigningKey, *, nonce: str, aud: str, iat: int = NOW) -> str:
    return sdjwt.present(
        cred,
        disclose=["family_name", "given_name", "address"],
        holder_key=key,
        nonce=nonce,
        aud=aud,
        iat=iat,
    )


def post_answer(client: FlaskClient, req: dict[str, Any], presentation: str) -> Any:
    """The wallet's ``direct_post``: the form-encoded ``vp_token`` and ``state``."""
    return client.post(
        urlsplit(req["response_uri"]).path,
        data={"vp_token": json.dumps({"juminhyo": [presentation]}), "state": req["state"]},
        base_url=BASE,
        headers={"Origin": "http://wallet.test"},
    )


def test_request_flow_holder_pass(client, clock, credential, holder_key) -> None:
    req = new_request(client, ["family_name", "given_name", "address"])
    assert req["response_uri"] == f"{BASE}/oid4vp/response/{req['state']}"
    assert req["client_id"] == f"redirect_uri:{req['response_uri']}"
    assert req["response_mode"] == "direct_post"
    claims = json.loads(req["dcql_query"])["credentials"][0]["claims"]
    assert [c["path"] for c in claims] == [[n] for n in SHOWN]
    status = f"/request/{req['id']}/status"
    assert client.get(status, base_url=BASE).get_json() == {"state": "pending"}

    pres = answer(credential, holder_key, nonce=req["nonce"], aud=req["client_id"])
    r = post_answer(client, req, pres)
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"verdict": "valid"}
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get(status, base_url=BASE).get_json() == {"state": "answered"}

    page = client.get(f"/request/{req['id']}/result", base_url=BASE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "山田" in html and "立岩" in html
    assert re.search(r'data-check="holder"[^>]*class="[^"]*pass', html) or re.search(
        r'class="[^"]*pass[^"]*"[^>]*data-check="holder"', html
    )
    # a reload shows it again, and so does the request page, until the request expires
    again = client.get(f"/request/{req['id']}/result", base_url=BASE).get_data(as_text=True)
    assert "山田" in again and "立岩" in again
    assert "山田" in client.get(f"/request/{req['id']}", base_url=BASE).get_data(as_text=True)
    clock.now += vrequests.TTL + 1
    assert client.get(f"/request/{req['id']}/result", base_url=BASE).status_code == 410
    assert client.get(status, base_url=BASE).get_json() == {"state": "expired"}


def test_preflight_allows_the_wallet(client) -> None:
    req = new_request(client)
    r = client.options(
        urlsplit(req["response_uri"]).path,
        base_url=BASE,
        headers={"Origin": "http://wallet.test", "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Content-Type" in r.headers["Access-Control-Allow-Headers"]


def test_wallet_origins_config(app, credential, holder_key) -> None:
    app.config["WALLET_ORIGINS"] = ["http://wallet.test"]
    client = app.test_client()
    req = new_request(client)
    pres = answer(credential, holder_key, nonce=req["nonce"], aud=req["client_id"])
    r = post_answer(client, req, pres)
    assert r.headers["Access-Control-Allow-Origin"] == "http://wallet.test"


def test_replayed_response_is_refused(client, credential, holder_key) -> None:
    req = new_request(client)
    pres = answer(credential, holder_key, nonce=req["nonce"], aud=req["client_id"])
    assert post_answer(client, req, pres).status_code == 200
    again = post_answer(client, req, pres)
    assert again.status_code == 400
    assert again.get_json()["error"]["code"] == "already_answered"

    # the same answer sent to another request fails the holder check (other nonce)
    other = new_request(client)
    r = post_answer(client, other, pres)
    assert r.status_code == 200 and r.get_json()["verdict"] == "invalid"


def test_expired_request(client, clock, credential, holder_key) -> None:
    req = new_request(client)
    clock.now += vrequests.TTL + 1
    pres = answer(credential, holder_key, nonce=req["nonce"], aud=req["client_id"], iat=NOW)
    r = post_answer(client, req, pres)
    assert r.status_code == 410 and r.get_json()["error"]["code"] == "expired"
    status = client.get(f"/request/{req['id']}/status", base_url=BASE).get_json()
    assert status == {"state": "expired"}
    clock.now += vrequests.GRACE + 1
    assert post_answer(client, req, pres).status_code == 404


@pytest.mark.parametrize("what", ["nonce", "aud", "no_kb", "other_key"])
def test_wrong_binding_fails_the_holder_check(
    client, app, credential, holder_key, attacker_key, what
) -> None:
    req = new_request(client)
    nonce, aud, key = req["nonce"], req["client_id"], holder_key
    if what == "nonce":
        nonce = "another-nonce"
    elif what == "aud":
        aud = "https://other-verifier.example"
    elif what == "other_key":
        key = attacker_key
    if what == "no_kb":
        pres = sdjwt.present(credential, disclose=["address"])
    else:
        pres = answer(credential, key, nonce=nonce, aud=aud)
    r = post_answer(client, req, pres)
    assert r.status_code == 200 and r.get_json()["verdict"] == "invalid"
    page = client.get(f"/request/{req['id']}/result", base_url=BASE).get_data(as_text=True)
    assert "無効" in page


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"vp_token=not+json",
        b"vp_token=%5B%5D",
        b"vp_token=%7B%22juminhyo%22%3A5%7D",
        b"vp_token=%7B%22juminhyo%22%3A%5B%22hello%22%5D%7D",
        b"vp_token=%7B%7D&vp_token=%7B%7D",
    ],
)
def test_garbage_answers_are_json_errors(client, body: bytes) -> None:
    req = new_request(client)
    r = client.post(
        urlsplit(req["response_uri"]).path,
        data=body,
        content_type="application/x-www-form-urlencoded",
        base_url=BASE,
    )
    assert r.status_code == 400 and "error" in r.get_json()


def test_unknown_ids_and_bad_claims(client) -> None:
    for path in ("/request/x/status", "/request/" + "A" * 22 + "/status"):
        assert client.get(path, base_url=BASE).status_code == 404
    assert client.post("/oid4vp/response/nope", data={}, base_url=BASE).status_code == 404
    # the former shomei-request answer endpoint is gone
    assert client.post("/request/nope/response", json={}, base_url=BASE).status_code in (404, 405)
    assert client.get("/request/nope", base_url=BASE).status_code == 404
    r = client.post("/request", data={"claims": ["Bad Name"]}, base_url=BASE)
    assert r.status_code == 400


def test_scan_page_offers_the_request(client) -> None:
    html = client.get("/").get_data(as_text=True)
    assert 'action="/request"' in html and "スマートフォンの提示を依頼する" in html


def test_request_page_names_the_claims(client) -> None:
    r = client.post("/request", data={"claims": ["family_name", "address"]}, base_url=BASE)
    html = client.get(r.headers["Location"], base_url=BASE).get_data(as_text=True)
    assert '<span id="request-claims">氏、住所</span>' in html


# ------------------------------------------------------------------ limits that count


def create_from(client: FlaskClient, address: str, **kw: Any) -> Any:
    return client.post(
        "/request", data={"claims": []}, base_url=BASE, environ_base={"REMOTE_ADDR": address}, **kw
    )


def test_a_flood_from_one_address_leaves_room_for_others(client) -> None:
    codes = [create_from(client, "203.0.113.9").status_code for _ in range(1000)]
    # another company is served (before the pool had per-address quotas: 503)
    assert create_from(client, "198.51.100.7").status_code == 303
    assert codes.count(303) == vrequests.PER_ADDRESS
    assert set(codes[vrequests.PER_ADDRESS :]) == {429}


def test_an_ipv6_flood_counts_as_one_address(client) -> None:
    """Addresses of one /64 count together: a subscriber cannot spread a flood over
    its own prefix; another prefix is served."""
    codes = [create_from(client, f"2001:db8:1:2::{i:x}").status_code for i in range(100)]
    assert codes.count(303) == vrequests.PER_ADDRESS
    assert create_from(client, "2001:db8:1:3::1").status_code == 303


def test_refusal_carries_retry_after(client, clock) -> None:
    for _ in range(vrequests.PER_ADDRESS):
        assert create_from(client, "203.0.113.9").status_code == 303
    clock.now += 100
    page = create_from(client, "203.0.113.9")
    assert page.status_code == 429
    # the oldest of the address's requests expires in TTL - 100 seconds
    assert page.headers["Retry-After"] == str(int(vrequests.TTL - 100))
    assert page.mimetype == "text/html" and "この接続元からの依頼が多すぎます" in page.get_data(
        as_text=True
    )
    r = create_from(client, "203.0.113.9", headers={"Accept": "application/json"})
    assert r.status_code == 429 and r.headers["Retry-After"] == str(int(vrequests.TTL - 100))
    assert r.get_json()["error"]["code"] == "rate_limited"
    assert set(r.get_json()["error"]["message"]) == {"ja", "en"}


def test_expired_requests_stop_counting_at_once(client, clock) -> None:
    for _ in range(vrequests.PER_ADDRESS):
        assert create_from(client, "203.0.113.9").status_code == 303
    assert create_from(client, "203.0.113.9").status_code == 429
    clock.now += vrequests.TTL  # expired, well within the grace that answers 410
    assert create_from(client, "203.0.113.9").status_code == 303


def test_the_creation_rate_per_address(app, client, clock) -> None:
    """Requests taken away at once (answered and shown) leave the pending count low;
    the creation rate still bounds one address."""
    app.config["REQUESTS_PER_ADDRESS"] = 1000
    store = app.extensions["shomei_requests"]
    codes = []
    for _ in range(vrequests.PER_ADDRESS_PER_MINUTE + 1):
        r = create_from(client, "203.0.113.9")
        codes.append(r.status_code)
        if r.status_code == 303:
            rid = r.headers["Location"].rsplit("/", 1)[-1]
            store.answer(rid, {"verdict": "invalid"}, "x", now=clock.now)
            store.take_result(rid, now=clock.now)
    assert codes[:-1] == [303] * vrequests.PER_ADDRESS_PER_MINUTE and codes[-1] == 429
    clock.now += 60
    assert create_from(client, "203.0.113.9").status_code == 303


def test_a_full_pool_is_503_with_retry_after(issuer_key, clock, tmp_path) -> None:
    app = make_app(issuer_key, clock, REQUESTS_DB=str(tmp_path / "r.db"), REQUESTS_MAX_PENDING=3)
    client = app.test_client()
    for i in range(3):
        assert create_from(client, f"192.0.2.{i}").status_code == 303
        clock.now += 10
    r = create_from(client, "192.0.2.200", headers={"Accept": "application/json"})
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "busy"
    assert r.headers["Retry-After"] == str(int(vrequests.TTL - 30))
    # the first request's expiry frees its place at once, not after its grace
    clock.now = NOW + vrequests.TTL
    assert create_from(client, "192.0.2.200").status_code == 303
    assert create_from(client, "192.0.2.201").status_code == 503


def test_two_workers_share_the_pool(issuer_key, clock, tmp_path, credential, holder_key) -> None:
    """Two app instances on one store file, as two gunicorn workers: each sees the
    other's requests, and a response is accepted once only."""
    db = str(tmp_path / "shared.db")
    one = make_app(issuer_key, clock, REQUESTS_DB=db).test_client()
    two = make_app(issuer_key, clock, REQUESTS_DB=db).test_client()
    req = new_request(one)
    status = f"/request/{req['id']}/status"
    assert two.get(status, base_url=BASE).get_json() == {"state": "pending"}
    pres = answer(credential, holder_key, nonce=req["nonce"], aud=req["client_id"])
    assert post_answer(two, req, pres).get_json() == {"verdict": "valid"}
    replay = post_answer(one, req, pres)
    assert replay.status_code == 400 and replay.get_json()["error"]["code"] == "already_answered"
    assert one.get(status, base_url=BASE).get_json() == {"state": "answered"}
    assert one.get(f"/request/{req['id']}/result", base_url=BASE).status_code == 200
    assert two.get(f"/request/{req['id']}/result", base_url=BASE).status_code == 200
    # the quota of an address counts in both
    for _ in range(vrequests.PER_ADDRESS):
        assert create_from(one, "203.0.113.9").status_code == 303
    assert create_from(two, "203.0.113.9").status_code == 429


def test_the_pool_file_is_private(app, client) -> None:
    new_request(client)
    path = Path(app.config["REQUESTS_DB"])
    for file in (path, path.with_name(path.name + "-wal")):
        assert file.stat().st_mode & 0o777 == 0o600, file


def test_the_default_pool_lives_in_the_data_directory(issuer_key, clock, tmp_path) -> None:
    client = make_app(issuer_key, clock, DATA_DIR=str(tmp_path / "data")).test_client()
    assert create_from(client, "192.0.2.1").status_code == 303
    assert (tmp_path / "data" / "requests.db").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("proxies", [0, 1])
def test_the_address_behind_trusted_proxies(issuer_key, clock, tmp_path, proxies) -> None:
    """Behind a trusted proxy the client is the forwarded address; without one, a
    forged X-Forwarded-For changes nothing."""
    app = make_app(issuer_key, clock, REQUESTS_DB=str(tmp_path / "r.db"), TRUSTED_PROXIES=proxies)
    client = app.test_client()

    def create(forwarded: str) -> int:
        r = create_from(client, "10.0.0.1", headers={"X-Forwarded-For": forwarded})
        return int(r.status_code)

    codes = [create(f"203.0.113.{i}") for i in range(vrequests.PER_ADDRESS + 1)]
    expected = (
        [303] * (vrequests.PER_ADDRESS + 1) if proxies else [303] * vrequests.PER_ADDRESS + [429]
    )
    assert codes == expected


def test_a_wallet_in_a_browser_may_read_the_signed_request(issuer_key, clock, tmp_path) -> None:
    """The request object (request_uri) answers with CORS headers, as the response URI
    does: a wallet that is a web page on another origin fetches it (a simple GET, or a
    form POST with wallet_nonce); the page also offers the configured wallet."""
    from datetime import UTC, datetime

    from verifier.x509_identity import write_self_signed

    cert, key = write_self_signed(tmp_path, "verifier.test", now=datetime.now(UTC))
    app = make_app(
        issuer_key,
        clock,
        REQUESTS_DB=str(tmp_path / "r.db"),
        X509_CERT=str(cert),
        X509_KEY=str(key),
        WALLET_URL="http://wallet.test/",
    )
    client = app.test_client()
    made = client.post("/request", data={"preset": "address"}, base_url=BASE)
    page = client.get(made.headers["Location"], base_url=BASE).get_data(as_text=True)
    link = re.search(r'id="oid4vp-link" class="button" href="([^"]+)"', page)
    assert link is not None
    query = {k: v[0] for k, v in parse_qs(urlsplit(htmllib.unescape(link.group(1))).query).items()}
    assert query["client_id"] == "x509_san_dns:verifier.test"
    wallet = re.search(r'id="oid4vp-wallet-link" class="button" href="([^"]+)"', page)
    assert wallet is not None
    opened = urlsplit(htmllib.unescape(wallet.group(1)))
    assert opened.netloc == "wallet.test" and opened.path == "/"
    assert parse_qs(opened.query) == {"request": [htmllib.unescape(link.group(1))]}
    path = urlsplit(query["request_uri"]).path
    origin = {"Origin": "http://wallet.test"}
    got = client.get(path, base_url=BASE, headers=origin)
    assert got.status_code == 200 and got.mimetype == "application/oauth-authz-req+jwt"
    assert got.headers["Access-Control-Allow-Origin"] == "*"
    posted = client.post(path, data={"wallet_nonce": "abc"}, base_url=BASE, headers=origin)
    assert posted.status_code == 200 and posted.headers["Access-Control-Allow-Origin"] == "*"
    missing = client.get("/oid4vp/request/nope", base_url=BASE, headers=origin)
    assert missing.status_code == 404 and missing.headers["Access-Control-Allow-Origin"] == "*"
    app.config["WALLET_ORIGINS"] = ["http://wallet.test"]
    only = client.get(path, base_url=BASE, headers=origin)
    assert only.headers["Access-Control-Allow-Origin"] == "http://wallet.test"
    # without a configured wallet, no such link
    app.config["WALLET_URL"] = None
    again = client.post("/request", data={"preset": "address"}, base_url=BASE)
    html = client.get(again.headers["Location"], base_url=BASE).get_data(as_text=True)
    assert 'id="oid4vp-wallet-link"' not in html
