"""Interoperability: a wallet nobody here wrote receives a 住民票 from our issuer.

``tests/interop/vci_wallet.mjs`` is a wallet built on the OpenWallet Foundation's
``@openid4vc/openid4vci`` 0.4.6 and ``@openid4vc/oauth2`` (the libraries under the Credo
wallet), with ``@sd-jwt/sd-jwt-vc`` 0.19 to verify what it received. Here it talks over
HTTP to a real issuer app on 127.0.0.1: the offer by reference (``credential_offer_uri``)
from the clerk's page, the token with the tx_code, the nonce endpoint, a JWT key proof,
the credential, then the issuer's published key (jwt-vc-issuer metadata) and the type
metadata its ``vct`` resolves to. Refusals: a wrong tx_code and a used offer get the
standard errors.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from issuer_testing import add_user, csrf_token, sign_in
from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials import doctypes, sdjwt
from credentials.keys import jwk_thumbprint
from credentials.trust import TrustList
from issuer import db
from issuer.accounts.models import User
from issuer.certificates import service as certificates
from issuer.keys import service as keys
from verifier.policy import Verifier

pytestmark = pytest.mark.interop
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "interop" / "vci_wallet.mjs"
PASSPHRASE = "city-key-passphrase"
SCHEME = "openid-credential-offer://"


@pytest.fixture
def served(make_app: Callable[..., Flask], tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """The issuer app serving on 127.0.0.1 under its own issuer id: (app, its URL)."""
    if shutil.which("node") is None or not (ROOT / "node_modules" / "@openid4vc").exists():
        pytest.fail("node and node_modules (npm ci) are needed for the interop tests")
    from werkzeug.serving import make_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    settings = keys.IssuerSettings(issuer_id=url, name="飯塚市", municipality_code="402052")
    keys.init(tmp_path / "data", settings, passphrase=PASSPHRASE)
    app = make_app(None, KEY_PASSPHRASE=PASSPHRASE)
    add_user(app, "clerk1", "clerk", display_name="窓口 花子")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, url
    finally:
        server.shutdown()
        thread.join(timeout=10)


def offer_for_a_new_juminhyo(app: Flask) -> tuple[str, str]:
    """Issue the sample 住民票 and press the clerk's button: (deep link, tx_code)."""
    with Session(db.engine_of(app)) as session:
        clerk_user = session.scalar(select(User).where(User.username == "clerk1"))
        assert clerk_user is not None
        cert = certificates.issue_juminhyo(
            session,
            doctypes.sample("juminhyo"),
            city=keys.load(app.config["DATA_DIR"], PASSPHRASE),
            clerk=clerk_user,
            now=time.time(),
            include_household=False,
            include_domicile=False,
        )
        public_id = cert.public_id
    clerk: FlaskClient = app.test_client()
    assert sign_in(clerk, "clerk1").status_code == 302
    token = csrf_token(clerk, f"/certificates/{public_id}")
    response = clerk.post(f"/certificates/{public_id}/offer", data={"csrf_token": token})
    page = clerk.get(response.headers["Location"]).get_data(as_text=True)
    link = re.search(r'href="(openid-credential-offer://[^"]+)"', page)
    tx = re.search(r'id="tx-code">(\d{3}) (\d{3})<', page)
    assert link and tx, page
    return html_lib.unescape(link.group(1)), tx.group(1) + tx.group(2)


def wallet(offer: str, tx_code: str) -> dict[str, Any]:
    """Run the library wallet once; its one-line JSON report."""
    done = subprocess.run(
        ["node", str(SCRIPT), json.dumps({"offer": offer, "txCode": tx_code})],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def trust_of(url: str) -> TrustList:
    meta = requests.get(f"{url}/.well-known/jwt-vc-issuer", timeout=10).json()
    return TrustList.from_json(
        TrustList.document(
            meta["issuer"],
            name=meta["name"],
            municipality_code=meta["municipality_code"],
            jwks=meta["jwks"]["keys"],
        )
    )


def test_a_library_wallet_receives_a_juminhyo_offered_by_reference(served):
    app, url = served
    link, tx_code = offer_for_a_new_juminhyo(app)
    assert link.startswith(f"{SCHEME}?credential_offer_uri={url}/oid4vci/offers/")

    got = wallet(link, tx_code)
    assert got["ok"], got
    assert got["offer"]["credential_issuer"] == url
    assert got["configuration"] == "juminhyo" and got["credentialIssuer"] == url
    assert got["tokenResponse"] == ["access_token", "expires_in", "token_type"]
    # @sd-jwt/sd-jwt-vc checked the signature with the key the issuer publishes...
    assert got["signedBy"] == [url]
    assert got["header"]["typ"] == "dc+sd-jwt"
    payload = got["payload"]
    assert payload["iss"] == url and payload["vct"] == f"{url}/vct/juminhyo/1"
    assert payload["cnf"]["jwk"] == {k: got["holderJwk"][k] for k in ("kty", "crv", "x", "y")}
    issued = certificates.validated("juminhyo", doctypes.sample("juminhyo"))
    assert {k: payload.get(k) for k in issued} == issued  # every claim disclosed, as issued
    assert payload["age_equal_or_over"] == {"18": True, "20": True}  # nested disclosures
    # ...and resolved the type metadata its vct names.
    metadata = got["typeMetadata"]
    assert metadata["vct"] == payload["vct"] and metadata["name"] == "住民票の写し"
    paths = [c["path"] for c in metadata["claims"]]
    assert ["age_equal_or_over", "20"] in paths and ["birthdate"] in paths

    # Our own verifier agrees, and the credential is bound to the library wallet's key.
    result = Verifier(trust=trust_of(url)).verify(got["credential"], now=time.time())
    assert result.verdict == "valid", result.to_json()
    parsed = sdjwt.ParsedSdJwt.parse(got["credential"]).unverified_payload
    assert jwk_thumbprint(parsed["cnf"]["jwk"]) == jwk_thumbprint(got["holderJwk"])


def test_a_wrong_tx_code_is_refused_with_invalid_grant(served):
    app, _ = served
    link, tx_code = offer_for_a_new_juminhyo(app)
    wrong = f"{(int(tx_code) + 1) % 1_000_000:06d}"
    refused = wallet(link, wrong)
    assert not refused["ok"] and refused["stage"] == "token", refused
    response = refused["error"]["response"]
    assert response["error"] == "invalid_grant"  # RFC 6749 §5.2
    assert "tx_code" in response["error_description"] and response["attempts_remaining"] == 4
    # The right code still works afterwards.
    assert wallet(link, tx_code)["ok"]


def test_a_used_offer_is_refused(served):
    app, url = served
    link, tx_code = offer_for_a_new_juminhyo(app)
    (location,) = parse_qs(urlsplit(link).query)["credential_offer_uri"]
    document = requests.get(location, timeout=10).json()  # kept, as a wallet might
    assert wallet(link, tx_code)["ok"]

    # By reference: the issuer no longer serves the offer.
    again = wallet(link, tx_code)
    assert not again["ok"] and again["stage"] == "offer", again
    assert "404" in again["error"]["message"]
    # By value, with the code it carried: the token endpoint refuses the used code.
    by_value = f"{SCHEME}?credential_offer={quote(json.dumps(document), safe='')}"
    replayed = wallet(by_value, tx_code)
    assert not replayed["ok"] and replayed["stage"] == "token", replayed
    assert replayed["error"]["response"]["error"] == "invalid_grant"
    assert "already used" in replayed["error"]["response"]["error_description"]
    assert document["credential_issuer"] == url
