"""A wallet served from another origin (the PWA) calls the OpenID4VCI endpoints:
every answer, refusals included, carries ``Access-Control-Allow-Origin``, and the
preflight of the credential request (``Authorization``, JSON) is answered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from issuer.keys import service as keys

SETTINGS = keys.IssuerSettings(
    issuer_id="https://iizuka.example.jp", name="飯塚市", municipality_code="402052"
)
PASSPHRASE = "city-key-passphrase"
ORIGIN = {"Origin": "http://127.0.0.1:5200"}


@pytest.fixture
def city_app(make_app: Any, tmp_path: Path) -> Flask:
    keys.init(tmp_path / "data", SETTINGS, passphrase=PASSPHRASE)
    app: Flask = make_app(None, KEY_PASSPHRASE=PASSPHRASE)
    return app


@pytest.mark.parametrize("path", ["/oid4vci/token", "/oid4vci/nonce", "/oid4vci/credential"])
def test_preflight_allows_authorization_and_json(city_app: Flask, path: str):
    response = city_app.test_client().options(
        path,
        headers={
            **ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"authorization", "content-type"} <= allowed


def test_answers_and_refusals_carry_the_header(city_app: Flask):
    client = city_app.test_client()
    nonce = client.post("/oid4vci/nonce", headers=ORIGIN)
    assert nonce.status_code == 200 and nonce.headers["Access-Control-Allow-Origin"] == "*"
    wrong = client.post(
        "/oid4vci/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            "pre-authorized_code": "nope",
            "tx_code": "123456",
        },
        headers=ORIGIN,
    )
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"
    assert wrong.headers["Access-Control-Allow-Origin"] == "*"
    denied = client.post("/oid4vci/credential", json={}, headers=ORIGIN)
    assert denied.status_code == 401 and denied.headers["Access-Control-Allow-Origin"] == "*"
    assert "WWW-Authenticate" in denied.headers["Access-Control-Expose-Headers"]
    pending = client.get(f"/oid4vci/evidence/{'00' * 32}", headers=ORIGIN)
    assert pending.status_code == 404 and pending.headers["Access-Control-Allow-Origin"] == "*"
    assert "Retry-After" in pending.headers["Access-Control-Expose-Headers"]
    meta = client.get("/.well-known/openid-credential-issuer", headers=ORIGIN)
    assert meta.headers["Access-Control-Allow-Origin"] == "*"
