"""Inputs no database can hold are a 404 or a 400, never a 500, on SQLite and
PostgreSQL: ids past 64 (SQLite) or 32 bits (PostgreSQL ``integer``), audit pages past
the log's end, path segments with control characters (PostgreSQL refuses a NUL in text)
or of any length, a NUL in any query or form field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from issuer_testing import city_with_staff, count_users, csrf_token, sign_in, signed_in
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from issuer import db
from issuer.accounts.service import failures
from issuer.keys import service as keys
from issuer.web import routing

SETTINGS = keys.IssuerSettings(
    issuer_id="https://iizuka.example.jp", name="飯塚市", municipality_code="402052"
)
HUGE = ["99999999999999999999", "9223372036854775808", "2147483648", "00000000000000000001"]


@pytest.fixture
def city_app(make_app: Any, database_url: str, tmp_path: Path) -> Flask:
    return city_with_staff(make_app, tmp_path / "data", SETTINGS, "city-passphrase", database_url)


@pytest.fixture
def boss(city_app: Flask) -> FlaskClient:
    return signed_in(city_app, "boss")


@pytest.mark.parametrize("number", HUGE)
def test_a_status_list_id_no_database_holds_is_404(city_app: Flask, number: str):
    response = city_app.test_client().get(f"/status/{number}")
    assert response.status_code == 404
    assert response.get_json()["error"]["message"]["ja"]


def test_ids_up_to_the_largest_reach_their_view(city_app: Flask):
    urls = city_app.url_map.bind("localhost")
    for number in (0, 1, routing.MAX_ID):
        assert urls.match(f"/status/{number}") == ("wellknown.status", {"list_id": number})
    with pytest.raises(NotFound):
        urls.match(f"/status/{routing.MAX_ID + 1}")


@pytest.mark.parametrize("number", HUGE)
def test_a_user_id_no_database_holds_is_404(boss: FlaskClient, number: str):
    assert boss.get(f"/users/{number}/password").status_code == 404
    token = csrf_token(boss, "/users/")
    for action in ("deactivate", "activate", "password"):
        response = boss.post(f"/users/{number}/{action}", data={"csrf_token": token})
        assert response.status_code == 404, action


@pytest.mark.parametrize(
    "page", ["99999999999999999999", "9999999999999999", "2", "0", "-1", "1e3", "abc", "١"]
)
def test_an_audit_page_past_the_log_is_404(boss: FlaskClient, page: str):
    response = boss.get(f"/audit/?page={page}")
    assert response.status_code == 404
    assert "ページが見つかりません" in response.get_data(as_text=True)


def test_the_audit_pages_that_exist_are_shown(boss: FlaskClient):
    assert boss.get("/audit/").status_code == 200
    assert boss.get("/audit/?page=1").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/certificates/%00"),
        ("get", "/certificates/%00/anchor.json"),
        ("get", "/contracts/%00"),
        ("get", "/contracts/%1f/document.pdf"),
        ("get", "/sign/%00"),
        ("get", "/oid4vci/evidence/%00"),
        ("get", "/vct/%00/1"),
        ("get", "/certificates/new/%7f"),
        ("post", "/keys/retire/%00"),
        ("post", "/contracts/%00/approve"),
        ("get", "/certificates/" + "A" * (routing.MAX_SEGMENT + 1)),
        ("get", "/sign/" + "t" * 5000),
    ],
)
def test_path_segments_with_control_characters_or_too_long_are_404(
    boss: FlaskClient, method: str, path: str
):
    data = {"csrf_token": csrf_token(boss, "/")} if method == "post" else None
    response = getattr(boss, method)(path, data=data)
    assert response.status_code == 404


def test_a_username_with_a_nul_is_refused_before_it_is_counted(city_app: Flask):
    client = city_app.test_client()
    response = sign_in(client, "boss\x00", "not-the-password-1")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "使えない文字" in page and "cannot be used (NUL)" in page
    with Session(db.engine_of(city_app)) as session:
        assert failures(session, address="127.0.0.1") == 0


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/users/", {"username": "tanaka", "display_name": "a\x00b", "role": "clerk"}),
        ("/users/", {"username": "tanaka", "display_name": "田中", "role": "clerk", "x\x00": ""}),
        ("/users/1/password", {"password": "fresh-password\x00"}),
        ("/certificates/new/juminhyo", {"family_name": "\x00"}),
    ],
)
def test_a_nul_in_any_form_is_400_and_writes_nothing(
    city_app: Flask, boss: FlaskClient, path: str, form: dict[str, str]
):
    form = form | {"csrf_token": csrf_token(boss, "/users/")}
    form.setdefault("password", "fresh-password-1")
    form["password_confirm"] = form["password"]
    response = boss.post(path, data=form)
    assert response.status_code == 400
    assert "cannot be used (NUL)" in response.get_data(as_text=True)
    assert count_users(city_app.config["DATABASE_URL"]) == 2


def test_a_nul_in_the_query_is_400(boss: FlaskClient):
    assert boss.get("/?lang=%00").status_code == 400
    assert boss.get("/audit/?page=1&x=%00").status_code == 400


def test_a_nul_in_a_token_request_is_an_oauth_400(city_app: Flask):
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
        "pre-authorized_code": "code\x00",
        "tx_code": "1234",
    }
    response = city_app.test_client().post("/oid4vci/token", data=form)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_every_route_uses_the_bounded_converters(city_app: Flask):
    for rule in city_app.url_map.iter_rules():
        if rule.endpoint == "static":  # Flask's own (a file name, never a query)
            continue
        for name, converter in rule._converters.items():
            assert isinstance(converter, routing.BoundedInt | routing.Segment), (rule, name)


@pytest.mark.parametrize("path", ["/static/%00", "/static/%2e%2e/app.py", "/static/a%0ab"])
def test_static_file_names_with_control_characters_are_404(city_app: Flask, path: str):
    assert city_app.test_client().get(path).status_code == 404


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), ("2147483647", 2**31 - 1), ("2147483648", None), ("0", None), ("", None)],
)
def test_bounded_int(text: str, value: int | None):
    assert routing.bounded_int(text, minimum=1) == value
