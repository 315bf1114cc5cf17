"""Error pages (bilingual, never a traceback), the English toggle, static assets, and
``shomei issuer create-user``."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from issuer_testing import PASSWORD, add_user, csrf_token, sign_in

from shomei_cli import main


def assert_friendly(page: str) -> None:
    assert "Traceback" not in page and 'File "' not in page
    assert "<html" in page and "issuer.css" in page


def test_404_is_a_friendly_bilingual_page(app):
    response = app.test_client().get("/no/such/page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "ページが見つかりません" in page and "Page not found" in page
    assert_friendly(page)


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("get", "/oid4vci/token", 405),
        ("get", "/oid4vci/no-such-endpoint", 404),
        ("post", "/.well-known/jwt-vc-issuer", 405),
        ("get", "/status/not-a-number", 404),
        ("get", "/.well-known/jwt-vc-issuer", 503),  # the issuer is not initialised
    ],
)
def test_machine_facing_paths_answer_errors_in_json(app, method, path, code):
    response = getattr(app.test_client(), method)(path)
    assert response.status_code == code
    assert response.is_json, response.get_data(as_text=True)[:200]
    body = response.get_json()
    if path == "/oid4vci/token":  # an OAuth endpoint: RFC 6749's shape
        assert body["error"] and body["error_description"]
    else:  # the project's one JSON error document
        assert body["error"]["code"] and body["error"]["message"]["ja"]
        assert body["error"]["message"]["en"]
    assert "Traceback" not in response.get_data(as_text=True)


def test_413_for_an_oversized_request(app):
    client = app.test_client()
    token = csrf_token(client)
    body = {"csrf_token": token, "username": "x" * (1024 * 1024 + 10), "password": "y"}
    response = client.post("/auth/login", data=body)
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "送信データが大きすぎます" in page and "Request too large" in page
    assert_friendly(page)


def test_403_page_says_who_may(app, clerk):
    response = clerk.get("/users/")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "監督者" in page and "supervisor" in page
    assert_friendly(page)


def test_405_page(app):
    response = app.test_client().get("/auth/logout")
    assert response.status_code == 405
    assert_friendly(response.get_data(as_text=True))


def test_500_shows_no_traceback(make_app, caplog: pytest.LogCaptureFixture):
    app = make_app(TESTING=False)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internal detail")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "システムエラー" in page and "Internal error" in page
    assert "secret internal detail" not in page
    assert_friendly(page)
    assert "secret internal detail" in caplog.text  # logged for the operator instead


def test_the_english_toggle_is_kept_in_the_session(app):
    client = app.test_client()
    assert "サインイン" in client.get("/auth/login").get_data(as_text=True)
    page = client.get("/auth/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in page and "Sign in" in page and "サインイン" not in page
    assert "Username" in client.get("/auth/login").get_data(as_text=True)
    page = client.get("/auth/login?lang=ja").get_data(as_text=True)
    assert '<html lang="ja">' in page and "ユーザー名" in page


def test_english_survives_signing_in_and_shows_in_messages(app):
    add_user(app, "clerk1")
    client = app.test_client()
    client.get("/auth/login?lang=en")
    page = sign_in(client, "clerk1", "not-the-password").get_data(as_text=True)
    assert "wrong username or password" in page
    sign_in(client, "clerk1")
    assert "Welcome" in client.get("/").get_data(as_text=True)


def test_the_stylesheet_is_served_locally(app):
    response = app.test_client().get("/static/issuer.css")
    assert response.status_code == 200 and b"min-height" in response.data
    response.close()
    page = app.test_client().get("/auth/login").get_data(as_text=True)
    assert "http://" not in page and "https://" not in page  # no CDN


def test_security_headers(app):
    headers = app.test_client().get("/auth/login").headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_create_user_from_the_command_line(make_app, monkeypatch: pytest.MonkeyPatch):
    app = make_app()
    monkeypatch.setenv("SHOMEI_DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setenv("SHOMEI_USER_PASSWORD", PASSWORD)
    args = ["issuer", "create-user", "yamada", "--role", "supervisor", "--display-name", "山田"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert sign_in(app.test_client(), "yamada").status_code == 302
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "taken" in again.output


def test_create_user_takes_no_password_argument(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SHOMEI_USER_PASSWORD", raising=False)
    result = CliRunner().invoke(
        main,
        [
            "issuer",
            "create-user",
            "x1",
            "--role",
            "clerk",
            "--display-name",
            "x",
            "--password",
            "p",
        ],
    )
    assert result.exit_code != 0 and "No such option" in result.output
    result = CliRunner().invoke(
        main, ["issuer", "create-user", "x1", "--role", "clerk", "--display-name", "x"]
    )
    assert result.exit_code == 2 and "SHOMEI_USER_PASSWORD" in result.output
