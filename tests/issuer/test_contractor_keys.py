"""Replacing a contractor's lost signing key, through the pages: a supervisor revokes
it (reason, confirmation, CSRF) and gets a one-time key link; the old key neither signs
nor registers again, the new key registers once through the link and signs; agreements
the old key signed before stay on record as such; each step audited under its own
action. Clerks are refused."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from issuer_testing import city_with_staff, csrf_token, signed_in
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_contracts import (
    PASSPHRASE,
    SETTINGS,
    Contractor,
    agreement,
    approve,
    audit_entries,
    contract_row,
    expected_of,
    make_link,
    new_contract,
    pdf_bytes,
    signed_contract,
    trust_from,
)

from credentials import agreement as agreement_fmt
from credentials.keys import SigningKey
from issuer import db
from issuer.contracts.models import Contractor as ContractorRow
from issuer.contracts.models import ContractorRevokedKey, ContractSignature
from verifier.policy import Verifier

KEY_LINK = re.compile(r"/contractor-key/([A-Za-z0-9_-]{43})")
REASON = "端末の紛失（受注者から電話連絡）"


@pytest.fixture
def city_app(make_app: Any, database_url: str, tmp_path: Path) -> Flask:
    return city_with_staff(make_app, tmp_path / "data", SETTINGS, PASSPHRASE, database_url)


@pytest.fixture
def clerk(city_app: Flask) -> FlaskClient:
    return signed_in(city_app, "clerk1")


@pytest.fixture
def supervisor(city_app: Flask) -> FlaskClient:
    return signed_in(city_app, "boss")


def contractor_public_id(app: Flask) -> str:
    with Session(db.engine_of(app)) as session:
        return session.scalars(select(ContractorRow.public_id)).one()


def key_page(client: FlaskClient, app: Flask) -> str:
    return f"/contracts/contractors/{contractor_public_id(app)}/key"


def replace(client: FlaskClient, app: Flask, **form: str) -> Any:
    path = key_page(client, app)
    fields = {"reason": REASON, "confirm": "yes", "csrf_token": csrf_token(client, path), **form}
    return client.post(path, data={k: v for k, v in fields.items() if v is not None})


def key_link_of(response: Any) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    match = KEY_LINK.search(response.get_data(as_text=True))
    assert match
    return match.group(1)


class KeyHolder:
    """The contractor's browser on the key link page."""

    def __init__(self, app: Flask, token: str) -> None:
        self.client = app.test_client()
        self.token = token
        self.csrf = csrf_token(self.client, "/auth/login")  # the session's, on any page

    def register(self, key: SigningKey) -> Any:
        return self.client.post(
            f"/contractor-key/{self.token}",
            data={"jwk": json.dumps(key.jwk), "csrf_token": self.csrf},
            headers={"Accept": "application/json"},
        )


def actions(app: Flask) -> list[str]:
    return [e.action for e in audit_entries(app)]


def test_replacing_a_lost_key_end_to_end(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    # Contract A signed with the old key (awaiting approval), contract B not yet signed.
    first, old_party = signed_contract(city_app, clerk, pdf_bytes(1, "A"))
    old_key = old_party.key
    clerk.post("/contracts/contractors/new")  # no-op: the contractor exists
    second = _second_contract(city_app, clerk)
    link_b = make_link(clerk, second)

    page = supervisor.get(f"/contracts/{first}").get_data(as_text=True)
    assert 'id="replace-key"' in page
    form = supervisor.get(key_page(supervisor, city_app)).get_data(as_text=True)
    assert "受注者の署名鍵の再発行" in form and old_key.kid in form

    token = key_link_of(replace(supervisor, city_app))
    with Session(db.engine_of(city_app)) as session:
        row = session.scalars(select(ContractorRow)).one()
        assert row.jwk is None and row.key_thumbprint is None
        (revoked,) = session.scalars(select(ContractorRevokedKey)).all()
        assert revoked.key_thumbprint == old_key.kid and revoked.reason == REASON
        assert json.loads(revoked.jwk) == {k: old_key.jwk[k] for k in ("kty", "crv", "x", "y")}

    # The old key no longer signs or registers, through any link.
    party_b = Contractor(city_app, link_b, key=old_key)
    refused = party_b.sign()
    assert refused.status_code == 400 and "鍵が登録されていません" in refused.get_json()["error"]
    again = party_b.register()
    assert again.status_code == 400 and "失効" in again.get_json()["error"]
    # ... and a fresh key does not slip in through a signing link either.
    other = party_b.register(SigningKey.generate())
    assert other.status_code == 400 and "鍵の登録用リンク" in other.get_json()["error"]
    holder = KeyHolder(city_app, token)
    assert "失効した鍵は登録できません" in holder.register(old_key).get_json()["error"]

    # The new key registers once through the key link, then signs contract B.
    page = holder.client.get(f"/contractor-key/{token}")
    assert page.status_code == 200 and "署名鍵の登録" in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    new_key = SigningKey.generate()
    assert holder.register(new_key).get_json() == {"key_thumbprint": new_key.kid}
    signing_b = Contractor(city_app, link_b, key=new_key)
    stale = signing_b.sign(jws=agreement(old_key, expected_of(signing_b.page().get_data(True))))
    assert stale.status_code == 400 and "登録された鍵" in stale.get_json()["error"]
    assert signing_b.sign().get_json() == {"signed": True}

    # A, signed before the revocation, stays verifiable as such and is approved.
    with Session(db.engine_of(city_app)) as session:
        stored = session.scalars(
            select(ContractSignature).where(
                ContractSignature.contract_id == contract_row(city_app, first).id,
                ContractSignature.party == "contractor",
            )
        ).one()
    unverified = agreement_fmt.UnverifiedAgreement.parse(stored.jws)
    assert unverified.thumbprint == old_key.kid
    unverified.verify()
    shown = supervisor.get(f"/contracts/{first}").get_data(as_text=True)
    assert "この鍵は署名の後に失効しました" in shown and REASON in shown
    assert approve(supervisor, first).status_code == 303
    credential = supervisor.get(f"/contracts/{first}/credential-contractor.sd-jwt")
    result = Verifier(trust=trust_from(city_app)).verify(
        credential.get_data(as_text=True), now=time.time()
    )
    assert result.valid, result.to_json()
    assert result.disclosed["agreements"][1]["key_thumbprint"] == old_key.kid

    # Audited under actions of their own, not contractor_registered.
    log = audit_entries(city_app)
    replaced = [e for e in log if e.action == "contractor_key_replaced"]
    assert len(replaced) == 1 and replaced[0].actor == "boss"
    assert replaced[0].details["old_key_id"] == old_key.kid
    registered = [e for e in log if e.action == "contractor_key_registered"]
    assert len(registered) == 1 and registered[0].details["key_id"] == new_key.kid
    assert [e.action for e in log].count("contractor_registered") == 2  # contractor, first key
    audit_page = supervisor.get("/audit/").get_data(as_text=True)
    assert "受注者の署名鍵の失効・再登録リンク" in audit_page


def _second_contract(app: Flask, clerk: FlaskClient) -> str:
    from test_contracts import upload

    response = upload(clerk, app, pdf_bytes(1, "B"), contract_number="長崎市契第2026-0400号")
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/", 1)[1]


def test_the_key_link_works_once(city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient):
    signed_contract(city_app, clerk, pdf_bytes())
    token = key_link_of(replace(supervisor, city_app))
    holder = KeyHolder(city_app, token)
    assert holder.register(SigningKey.generate()).status_code == 200
    replay = holder.register(SigningKey.generate())
    assert replay.status_code == 410
    assert holder.client.get(f"/contractor-key/{token}").status_code == 410
    assert KeyHolder(city_app, "x" * 43).register(SigningKey.generate()).status_code == 404
    reasons = [e.details.get("reason") for e in audit_entries(city_app)]
    assert "used_key_link" in reasons and "unknown_key_link" in reasons


def test_a_new_key_link_replaces_the_lost_one(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    signed_contract(city_app, clerk, pdf_bytes())
    lost = key_link_of(replace(supervisor, city_app))
    page = supervisor.get(key_page(supervisor, city_app)).get_data(as_text=True)
    assert "新しい鍵の登録待ち" in page
    fresh = key_link_of(replace(supervisor, city_app, reason="リンクのメールが届かない"))
    assert KeyHolder(city_app, lost).register(SigningKey.generate()).status_code == 410
    assert KeyHolder(city_app, fresh).register(SigningKey.generate()).status_code == 200
    assert actions(city_app).count("contractor_key_replaced") == 2


def test_reason_and_confirmation_are_required(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    signed_contract(city_app, clerk, pdf_bytes())
    no_reason = replace(supervisor, city_app, reason="  ")
    assert no_reason.status_code == 400 and "理由" in no_reason.get_data(as_text=True)
    unconfirmed = replace(supervisor, city_app, confirm=None)
    assert unconfirmed.status_code == 400
    assert "確認欄にチェックしてください" in unconfirmed.get_data(as_text=True)
    too_long = replace(supervisor, city_app, reason="x" * 501)
    assert too_long.status_code == 400
    assert "contractor_key_replaced" not in actions(city_app)
    with Session(db.engine_of(city_app)) as session:
        assert session.scalars(select(ContractorRow)).one().key_thumbprint is not None


def test_a_contractor_without_a_key_has_nothing_to_replace(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    new_contract(clerk, city_app, pdf_bytes())
    response = replace(supervisor, city_app)
    assert response.status_code == 400
    assert "まだ鍵を登録していません" in response.get_data(as_text=True)


def test_a_clerk_is_refused(city_app: Flask, clerk: FlaskClient):
    signed_contract(city_app, clerk, pdf_bytes())
    path = key_page(clerk, city_app)
    assert clerk.get(path).status_code == 403
    token = csrf_token(clerk, "/contracts/")
    response = clerk.post(path, data={"reason": REASON, "confirm": "yes", "csrf_token": token})
    assert response.status_code == 403
    assert 'id="replace-key"' not in clerk.get("/contracts/").get_data(as_text=True)
    assert "contractor_key_replaced" not in actions(city_app)


def test_without_the_csrf_token_nothing_is_replaced(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    signed_contract(city_app, clerk, pdf_bytes())
    path = key_page(supervisor, city_app)
    for token in (None, "forged"):
        data = {"reason": REASON, "confirm": "yes"}
        if token:
            data["csrf_token"] = token
        assert supervisor.post(path, data=data).status_code == 400
    assert "contractor_key_replaced" not in actions(city_app)
    # The contractor's key link page carries its own token too.
    token = key_link_of(replace(supervisor, city_app))
    browser = city_app.test_client()
    browser.get(f"/contractor-key/{token}")
    jwk = json.dumps(SigningKey.generate().jwk)
    assert browser.post(f"/contractor-key/{token}", data={"jwk": jwk}).status_code == 400
    assert "contractor_key_registered" not in actions(city_app)


def test_an_unknown_contractor_is_404(supervisor: FlaskClient):
    assert supervisor.get("/contracts/contractors/nope/key").status_code == 404
