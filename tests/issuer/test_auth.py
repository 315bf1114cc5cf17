"""Signing in and out through the Flask test client: success, failure, throttling
(persisted across a restart), CSRF, roles, deactivation, session cookies."""

from __future__ import annotations

import os
import stat

import pytest
from issuer_testing import PASSWORD, add_user, count_users, csrf_token, sign_in

from issuer import db
from issuer.web.auth import local_path


def test_sign_in_and_out(app):
    add_user(app, "clerk1", display_name="窓口 花子")
    client = app.test_client()
    assert client.get("/").headers["Location"].startswith("/auth/login")
    response = sign_in(client, "clerk1")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200 and "窓口 花子" in home.get_data(as_text=True)
    assert home.headers["Cache-Control"] == "no-store"
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/")})
    assert client.get("/").status_code == 302


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(app):
    add_user(app, "boss", "supervisor")
    client = app.test_client()
    token = csrf_token(client)
    data = {"username": "boss", "password": PASSWORD, "csrf_token": token}
    assert client.post("/auth/login", data=data | {"next": "/users/"}).location == "/users/"
    client = app.test_client()
    data["csrf_token"] = csrf_token(client)
    assert client.post("/auth/login", data=data | {"next": "//evil.example/"}).location == "/"


def test_a_wrong_password_is_refused_with_a_message(app):
    add_user(app, "clerk1")
    response = sign_in(app.test_client(), "clerk1", "not-the-password")
    assert response.status_code == 401
    assert "ユーザー名またはパスワードが違います" in response.get_data(as_text=True)


def test_throttled_with_429_and_still_after_a_restart(make_app, database_url):
    app = make_app(database_url)
    add_user(app, "clerk1")
    client = app.test_client()
    for _ in range(5):
        assert sign_in(client, "clerk1", "not-the-password").status_code == 401
    response = sign_in(client, "clerk1")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "一時的に受け付けを停止" in response.get_data(as_text=True)
    restarted = make_app(database_url)  # a new process on the same database
    assert sign_in(restarted.test_client(), "clerk1").status_code == 429


def test_throttled_per_client_address(app):
    add_user(app, "clerk1")
    client = app.test_client()
    for i in range(5):
        sign_in(client, f"guess{i}", "x" * 12, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert (
        sign_in(client, "clerk1", environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 429
    )
    assert (
        sign_in(client, "clerk1", environ_base={"REMOTE_ADDR": "198.51.100.8"}).status_code == 302
    )


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_a_missing_or_wrong_csrf_token_is_400_and_nothing_is_written(app, supervisor, token):
    data = {
        "username": "newclerk",
        "display_name": "新人",
        "role": "clerk",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }
    if token is not None:
        data["csrf_token"] = token
    before = count_users(app.config["DATABASE_URL"])
    response = supervisor.post("/users/", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "確認用トークン" in page and "CSRF token" in page
    assert count_users(app.config["DATABASE_URL"]) == before


def test_sign_in_without_csrf_is_refused_and_not_counted(app):
    add_user(app, "clerk1")
    client = app.test_client()
    response = client.post("/auth/login", data={"username": "clerk1", "password": "wrong"})
    assert response.status_code == 400
    from sqlalchemy.orm import Session

    from issuer.accounts.service import failures

    with Session(db.engine_of(app)) as session:
        assert failures(session, username="clerk1") == 0


def test_a_token_from_another_session_is_refused(app, supervisor):
    other = app.test_client()
    response = supervisor.post("/users/1/deactivate", data={"csrf_token": csrf_token(other)})
    assert response.status_code == 400


def test_a_clerk_gets_403_on_supervisor_pages(app, clerk):
    assert clerk.get("/users/").status_code == 403
    token = csrf_token(clerk, "/")
    response = clerk.post(
        "/users/",
        data={
            "csrf_token": token,
            "username": "sneaky",
            "display_name": "x",
            "role": "supervisor",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert response.status_code == 403
    assert "監督者" in response.get_data(as_text=True)
    assert count_users(app.config["DATABASE_URL"]) == 1


def test_signed_out_visitors_are_sent_to_sign_in(app):
    response = app.test_client().get("/users/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=/users/"


def test_a_supervisor_adds_a_clerk_who_can_then_sign_in(app, supervisor):
    page = supervisor.get("/users/")
    assert page.status_code == 200
    response = supervisor.post(
        "/users/",
        data={
            "csrf_token": csrf_token(supervisor, "/users/"),
            "username": "tanaka",
            "display_name": "田中 一郎",
            "role": "clerk",
            "password": "tanaka-password-1",
            "password_confirm": "tanaka-password-1",
        },
    )
    assert response.status_code == 302
    listing = supervisor.get("/users/").get_data(as_text=True)
    assert "田中 一郎" in listing and "tanaka" in listing
    assert sign_in(app.test_client(), "tanaka", "tanaka-password-1").status_code == 302


def test_adding_a_clerk_with_mismatched_passwords_is_refused(app, supervisor):
    response = supervisor.post(
        "/users/",
        data={
            "csrf_token": csrf_token(supervisor, "/users/"),
            "username": "tanaka",
            "display_name": "田中 一郎",
            "role": "clerk",
            "password": "tanaka-password-1",
            "password_confirm": "tanaka-password-2",
        },
    )
    assert response.status_code == 400
    assert "確認用のパスワードが一致しません" in response.get_data(as_text=True)
    assert count_users(app.config["DATABASE_URL"]) == 1


def test_a_deactivated_clerk_is_signed_out_and_cannot_sign_in(app, supervisor, clerk):
    token = csrf_token(supervisor, "/users/")
    assert supervisor.post("/users/2/deactivate", data={"csrf_token": token}).status_code == 302
    assert clerk.get("/").status_code == 302  # the open session ends at once
    assert sign_in(app.test_client(), "clerk1").status_code == 401
    supervisor.post("/users/2/activate", data={"csrf_token": token})
    assert sign_in(app.test_client(), "clerk1").status_code == 302


def test_a_password_reset_ends_the_clerks_sessions(app, supervisor, clerk):
    token = csrf_token(supervisor, "/users/2/password")
    response = supervisor.post(
        "/users/2/password",
        data={
            "csrf_token": token,
            "password": "fresh-password-9",
            "password_confirm": "fresh-password-9",
        },
    )
    assert response.status_code == 302
    assert clerk.get("/").status_code == 302
    assert sign_in(app.test_client(), "clerk1", "fresh-password-9").status_code == 302


def test_session_cookie_flags(app):
    add_user(app, "clerk1")
    response = sign_in(app.test_client(), "clerk1")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP on 127.0.0.1


@pytest.mark.parametrize("config", [{"TLS": True}, {"PREFERRED_URL_SCHEME": "https"}])
def test_cookies_are_secure_over_tls(make_app, config):
    app = make_app(**config)
    add_user(app, "clerk1")
    client = app.test_client()
    response = sign_in(client, "clerk1", base_url="https://localhost")
    assert "; Secure" in response.headers["Set-Cookie"]


def test_secret_key_is_generated_once_with_mode_0600(make_app, tmp_path):
    first = make_app(SECRET_KEY=None)
    second = make_app(SECRET_KEY=None)
    assert first.secret_key == second.secret_key and len(first.secret_key) == 64
    mode = os.stat(tmp_path / "data" / "secret_key").st_mode
    assert stat.S_IMODE(mode) == 0o600


# ------------------------------------------------------------------ where sign-in returns to
OFF_SITE = [
    "/\t/evil.example/phish",  # browsers drop the tab: //evil.example/phish
    "/\n/evil.example/",
    "/\r/evil.example/",
    "/\r\n/evil.example/",
    "/a\r\nSet-Cookie: x=1",
    "/\x00//evil.example/",
    "/\x7f/evil.example/",
    "/\x85/evil.example/",  # NEL
    "/\\evil.example/",  # browsers read \ as /
    "/\\/evil.example/",
    "\\\\evil.example/",
    "/x\\..\\\\evil.example/",
    "//evil.example/",
    "///evil.example/",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
    " /\t/evil.example",
    "/users/ ",
    "/" + "a" * 2001,
    "",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_only_a_path_on_this_site_is_a_place_to_return_to(target):
    assert local_path(target) is None


@pytest.mark.parametrize(
    "target", ["/", "/users/", "/audit/?page=2", "/certificates/AB12?x=1#top", "/%2F/x"]
)
def test_paths_on_this_site_are_kept(target):
    assert local_path(target) == target


@pytest.mark.parametrize(
    "query",
    [
        "next=/%09/evil.example/phish",  # the reported attack
        "next=/%0d%0a/evil.example/",
        "next=%2F%2Fevil.example%2F",
        "next=/%5Cevil.example/",
        "next=https%3A%2F%2Fevil.example%2F",
        "next=/%0aLocation:%20https://evil.example/",
    ],
)
def test_signing_in_with_an_off_site_next_goes_home(app, query):
    add_user(app, "boss", "supervisor")
    client = app.test_client()
    page = client.get(f"/auth/login?{query}")
    assert page.status_code == 200
    assert 'name="next"' not in page.get_data(as_text=True)
    data = {"username": "boss", "password": PASSWORD, "csrf_token": csrf_token(client)}
    response = client.post(f"/auth/login?{query}", data=data)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/\t/evil.example/phish", "/a\r\nSet-Cookie: x=1"])
def test_an_off_site_next_in_the_form_goes_home_too(app, target):
    add_user(app, "boss", "supervisor")
    client = app.test_client()
    data = {"username": "boss", "password": PASSWORD, "csrf_token": csrf_token(client)}
    response = client.post("/auth/login", data=data | {"next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    # A wrong password re-renders the form: the bad target is not carried along.
    client = app.test_client()
    data = {"username": "boss", "password": "wrong-password", "csrf_token": csrf_token(client)}
    page = client.post("/auth/login", data=data | {"next": target})
    assert page.status_code == 401 and 'name="next"' not in page.get_data(as_text=True)
