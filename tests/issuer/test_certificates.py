"""Issuing and revoking certificates through the clerk's pages, on SQLite and
PostgreSQL: form -> preview -> issue, field errors that write nothing, the leaf queued
with the row, verification against the issuer's own well-known keys and status list."""

from __future__ import annotations

import html as html_lib
import json
import re
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from issuer_testing import add_user, city_with_staff, csrf_token, signed_in
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from anchor import merkle
from anchor.store import Leaf
from credentials import doctypes, sdjwt
from credentials.errors import ValidationError
from credentials.status_list import MEDIA_TYPE, verify_token
from credentials.trust import TrustList
from issuer import db
from issuer.accounts.models import User
from issuer.certificates import service as certificates
from issuer.certificates.models import Certificate
from issuer.keys import service as keys
from verifier.policy import Verifier

ISSUER = "https://iizuka.example.jp"
PASSPHRASE = "city-key-passphrase"
SETTINGS = keys.IssuerSettings(issuer_id=ISSUER, name="飯塚市", municipality_code="402052")
CERT_LINK = re.compile(r"/certificates/([A-Za-z0-9_-]{22})")


@pytest.fixture
def city_app(make_app: Any, database_url: str, tmp_path: Path) -> Flask:
    return city_with_staff(make_app, tmp_path / "data", SETTINGS, PASSPHRASE, database_url)


@pytest.fixture
def clerk(city_app: Flask) -> FlaskClient:
    return signed_in(city_app, "clerk1")


@pytest.fixture
def supervisor(city_app: Flask) -> FlaskClient:
    return signed_in(city_app, "boss")


def juminhyo_form(**changes: str) -> dict[str, str]:
    form = {k: v for k, v in doctypes.sample("juminhyo").items() if isinstance(v, str)}
    form.update(changes)
    return form


def partnership_form() -> dict[str, str]:
    claims = doctypes.sample("partnership")
    form = {k: v for k, v in claims.items() if isinstance(v, str)}
    form["recognized_by"] = " ".join(claims["recognized_by"])
    for i, child in enumerate(claims["children"]):
        for part, value in child.items():
            form[f"children-{i}-{part}"] = value
    return form


def preview(client: FlaskClient, doc_type: str, form: dict[str, str]) -> Any:
    token = csrf_token(client, f"/certificates/new/{doc_type}")
    return client.post(f"/certificates/new/{doc_type}", data={**form, "csrf_token": token})


def issue(client: FlaskClient, doc_type: str, form: dict[str, str]) -> str:
    """Form -> preview -> issue, as a clerk does it; the new certificate's public id."""
    page = preview(client, doc_type, form)
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))
    data = {k: html_lib.unescape(v) for k, v in fields.items()}
    response = client.post(f"/certificates/issue/{doc_type}", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    match = CERT_LINK.search(response.headers["Location"])
    assert match
    return match.group(1)


def rows(app: Flask) -> list[Certificate]:
    with Session(db.engine_of(app)) as session:
        return list(session.scalars(select(Certificate).order_by(Certificate.id)))


def leaves(app: Flask) -> int:
    with Session(db.engine_of(app)) as session:
        return session.scalar(select(func.count()).select_from(Leaf)) or 0


def opened(app: Flask, public_id: str) -> dict[str, Any]:
    city = keys.load(app.config["DATA_DIR"], PASSPHRASE)
    with Session(db.engine_of(app)) as session:
        cert = certificates.find(session, public_id)
        return dict(json.loads(city.unseal(cert.sealed, context=public_id.encode())))


def trust_from(app: Flask) -> TrustList:
    meta = app.test_client().get("/.well-known/jwt-vc-issuer").get_json()
    entry = {"name": meta["name"], "municipality_code": meta["municipality_code"]}
    return TrustList.from_json({"issuers": {meta["issuer"]: {**entry, "jwks": meta["jwks"]}}})


def status_of(app: Flask, credential: str) -> int:
    """The credential's status entry, as a verifier reads it from the status endpoint."""
    ref = sdjwt.ParsedSdJwt.parse(credential).unverified_payload["status"]["status_list"]
    response = app.test_client().get(ref["uri"].removeprefix(ISSUER))
    assert response.status_code == 200
    assert response.content_type == MEDIA_TYPE
    assert re.search(r"max-age=\d+", response.headers["Cache-Control"])
    trust = trust_from(app)
    entries = verify_token(
        response.get_data(as_text=True),
        resolve_key=trust.resolve_key,
        uri=ref["uri"],
        issuer=ISSUER,
        now=time.time(),
    )
    return entries.get(ref["idx"])


def test_a_clerk_issues_a_juminhyo(city_app: Flask, clerk: FlaskClient):
    page = preview(clerk, "juminhyo", juminhyo_form())
    html = page.get_data(as_text=True)
    assert "1980年4月1日" in html or "1980-04-01" in html
    assert "昭和55年4月1日" in html  # 和暦 next to 西暦
    public_id = issue(clerk, "juminhyo", juminhyo_form())
    certificate = clerk.get(f"/certificates/{public_id}").get_data(as_text=True)
    assert "山田 太郎" in certificate and "記録待ち" in certificate
    assert "取り消し" not in certificate.split("<main", 1)[1].split("</table>", 1)[1]
    (row,) = rows(city_app)
    assert row.doc_type == "juminhyo" and row.state == "valid"
    assert "山田".encode() not in row.sealed  # sealed at rest
    assert public_id in clerk.get("/").get_data(as_text=True)


def test_household_and_domicile_only_when_asked(city_app: Flask, clerk: FlaskClient):
    form = juminhyo_form(relationship_to_head="本人", registered_domicile="福岡県飯塚市新立岩1番")
    plain = issue(clerk, "juminhyo", form)
    claims = opened(city_app, plain)["claims"]
    assert not {"head_of_household", "relationship_to_head", "registered_domicile"} & set(claims)
    asked = issue(clerk, "juminhyo", {**form, "include_household": "1"})
    claims = opened(city_app, asked)["claims"]
    assert claims["relationship_to_head"] == "本人" and "registered_domicile" not in claims


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"family_name": ""}, "family_name", "氏"),
        ({"birthdate": "2025-02-30"}, "birthdate", "生年月日"),
    ],
)
def test_bad_input_shows_field_messages_and_writes_nothing(
    city_app: Flask, clerk: FlaskClient, changes: dict[str, str], field: str, message: str
):
    response = preview(clerk, "juminhyo", juminhyo_form(**changes))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    error = re.search(rf'<p class="field-error" id="{field}-error"[^>]*>([^<]+)</p>', html)
    assert error and message in error.group(1)
    assert rows(city_app) == [] and leaves(city_app) == 0
    english = clerk.get("/?lang=en")
    assert english.status_code == 200
    html = preview(clerk, "juminhyo", juminhyo_form(**changes)).get_data(as_text=True)
    assert re.search(rf'id="{field}-error"[^>]*>[ -~]+</p>', html)  # English, ASCII


def test_forged_issue_request_is_validated_again(city_app: Flask, clerk: FlaskClient):
    claims = {**doctypes.sample("juminhyo"), "birthdate": "2025-02-30"}
    token = csrf_token(clerk, "/certificates/new/juminhyo")
    response = clerk.post(
        "/certificates/issue/juminhyo",
        data={"claims": json.dumps(claims), "csrf_token": token},
    )
    assert response.status_code == 400 and "birthdate-error" in response.get_data(as_text=True)
    assert rows(city_app) == [] and leaves(city_app) == 0


@pytest.mark.parametrize("doc_type", ["juminhyo", "partnership"])
@pytest.mark.parametrize(
    "claims", ["0", "[]", '"text"', "null", '{"children": 5}', '{"children": [1, "x"]}']
)
def test_a_forged_issue_request_of_the_wrong_shape_is_a_400(
    city_app: Flask, clerk: FlaskClient, doc_type: str, claims: str
):
    token = csrf_token(clerk, f"/certificates/new/{doc_type}")
    response = clerk.post(
        f"/certificates/issue/{doc_type}", data={"claims": claims, "csrf_token": token}
    )
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert rows(city_app) == [] and leaves(city_app) == 0


def test_missing_csrf_and_oversized_requests_write_nothing(city_app: Flask, clerk: FlaskClient):
    claims = json.dumps(doctypes.sample("juminhyo"), ensure_ascii=False)
    assert clerk.post("/certificates/issue/juminhyo", data={"claims": claims}).status_code == 400
    token = csrf_token(clerk, "/certificates/new/juminhyo")
    big = {"claims": claims, "csrf_token": token, "pad": "x" * (1024 * 1024 + 10)}
    assert clerk.post("/certificates/issue/juminhyo", data=big).status_code == 413
    assert rows(city_app) == [] and leaves(city_app) == 0


def test_partnership_yields_one_certificate_per_partner(city_app: Flask, clerk: FlaskClient):
    issue(clerk, "partnership", partnership_form())
    first, second = rows(city_app)
    a = opened(city_app, first.public_id)["claims"]
    b = opened(city_app, second.public_id)["claims"]
    assert (a["holder_given_name"], a["partner_given_name"]) == ("花子", "美咲")
    assert (b["holder_given_name"], b["partner_given_name"]) == ("美咲", "花子")
    assert b["holder_birthdate"] == a["partner_birthdate"]
    assert a["certificate_number"] == b["certificate_number"]
    assert first.status_index != second.status_index
    assert leaves(city_app) == 2


def test_leaf_is_queued_with_the_row(city_app: Flask, clerk: FlaskClient):
    public_id = issue(clerk, "juminhyo", juminhyo_form())
    credential = opened(city_app, public_id)["credential"]
    jwt = credential.split("~", 1)[0]
    with Session(db.engine_of(city_app)) as session:
        leaf = session.scalar(select(Leaf).where(Leaf.leaf == merkle.leaf_hash(jwt)))
        assert leaf is not None and leaf.batch_id is None
        assert certificates.anchor_state(session, leaf.leaf).state == "pending"


def test_an_invalid_partnership_issues_to_neither_partner(city_app: Flask):
    city = keys.load(city_app.config["DATA_DIR"], PASSPHRASE)
    with Session(db.engine_of(city_app)) as session:
        clerk_user = session.scalar(select(User).where(User.username == "clerk1"))
        claims = {**doctypes.sample("partnership"), "partner_birthdate": "1992-02-30"}
        with pytest.raises(ValidationError, match=r"partner_birthdate|パートナー"):
            certificates.issue_partnership(
                session, claims, city=city, clerk=clerk_user, now=time.time()
            )
    assert rows(city_app) == [] and leaves(city_app) == 0


def test_issued_credential_verifies_and_revocation_shows(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    public_id = issue(clerk, "juminhyo", juminhyo_form())
    credential = opened(city_app, public_id)["credential"]
    result = Verifier(trust=trust_from(city_app)).verify(credential, now=time.time())
    failed = [c for c in result.checks if c.status == "fail"]
    assert not failed, failed
    assert result.verdict == "valid" and result.issuer and result.issuer.name == "飯塚市"
    assert status_of(city_app, credential) == 0

    assert (
        clerk.post(
            f"/certificates/{public_id}/revoke",
            data={"reason": "転出", "csrf_token": csrf_token(clerk, "/")},
        ).status_code
        == 403
    )
    assert status_of(city_app, credential) == 0

    token = csrf_token(supervisor, f"/certificates/{public_id}")
    no_reason = supervisor.post(f"/certificates/{public_id}/revoke", data={"csrf_token": token})
    assert no_reason.status_code == 303 and rows(city_app)[0].state == "valid"
    response = supervisor.post(
        f"/certificates/{public_id}/revoke", data={"reason": "転出のため", "csrf_token": token}
    )
    assert response.status_code == 303
    assert status_of(city_app, credential) == 1
    (row,) = rows(city_app)
    assert row.state == "revoked" and row.revoke_reason == "転出のため"
    assert "取り消し済み" in supervisor.get(f"/certificates/{public_id}").get_data(as_text=True)


def test_random_status_indices(city_app: Flask, clerk: FlaskClient):
    for _ in range(4):
        issue(clerk, "juminhyo", juminhyo_form())
    indices = [row.status_index for row in rows(city_app)]
    assert len(set(indices)) == 4
    assert indices != sorted(indices) or max(indices) > 1000  # not handed out in order


def test_well_known_and_type_metadata(city_app: Flask):
    client = city_app.test_client()
    meta = client.get("/.well-known/jwt-vc-issuer").get_json()
    assert meta["issuer"] == ISSUER and meta["jwks"]["keys"][0]["kty"] == "EC"
    assert "d" not in meta["jwks"]["keys"][0]
    for name in ("juminhyo", "partnership", "contract"):
        doc = client.get(f"/vct/{name}/1").get_json()
        assert doc["vct"] == f"{ISSUER}/vct/{name}/1"
    assert client.get("/vct/nothing/1").status_code == 404
    assert client.get("/status/999").status_code == 404


def test_not_initialised_is_a_clear_page(make_app: Any, sqlite_url: str):
    app = make_app(sqlite_url)
    add_user(app, "clerk1", "clerk")
    client = signed_in(app, "clerk1")
    response = client.get("/certificates/new/juminhyo")
    assert response.status_code == 503
    assert "shomei issuer init" in response.get_data(as_text=True)


def test_shomei_issuer_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from click.testing import CliRunner

    from shomei_cli import main

    monkeypatch.setenv(keys.PASSPHRASE_ENV, PASSPHRASE)
    args = ["issuer", "init", "--issuer-id", ISSUER, "--name", "飯塚市"]
    args += ["--municipality-code", "402052", "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    city = keys.load(tmp_path, PASSPHRASE)
    assert city.key.kid in result.output and PASSPHRASE not in result.output
    assert (tmp_path / "issuer" / keys.KEY_FILE).stat().st_mode & 0o077 == 0
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "already initialised" in again.output


def test_the_issuer_computes_age_equal_or_over(city_app: Flask, clerk: FlaskClient):
    """The clerk types no age: the form has no such field, the preview shows 年齢到達
    as of today, and the certificate carries it computed at issuance, whatever the
    posted claims said."""
    form = clerk.get("/certificates/new/juminhyo").get_data(as_text=True)
    assert "age_equal_or_over" not in form and "歳以上" not in form
    born = date.today().replace(year=date.today().year - 19).isoformat()  # 19: 18 yes, 20 no
    if born.endswith("02-29"):
        born = born.replace("02-29", "02-28")
    html = preview(clerk, "juminhyo", juminhyo_form(birthdate=born)).get_data(as_text=True)
    assert re.search(r"<th>18歳以上</th><td>はい</td>", html), html
    assert re.search(r"<th>20歳以上</th><td>いいえ</td>", html)
    posted = re.search(r'name="claims" value="([^"]+)"', html)
    assert posted and "age_equal_or_over" not in html_lib.unescape(posted.group(1))
    # A forged value in the posted claims is replaced by the computed one.
    token = csrf_token(clerk, "/certificates/new/juminhyo")
    claims = {**doctypes.sample("juminhyo"), "birthdate": born}
    claims["age_equal_or_over"] = {"18": True, "20": True}
    response = clerk.post(
        "/certificates/issue/juminhyo",
        data={"claims": json.dumps(claims, ensure_ascii=False), "csrf_token": token},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    public_id = response.headers["Location"].rsplit("/", 1)[1]
    content = opened(city_app, public_id)
    assert content["claims"]["age_equal_or_over"] == {"18": True, "20": False}
    credential = sdjwt.ParsedSdJwt.parse(content["credential"])
    assert "age_equal_or_over" not in credential.unverified_payload  # disclosable
