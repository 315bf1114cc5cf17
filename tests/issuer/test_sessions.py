"""Sessions that end: the cookie carries only a session token, the server decides whether
it is still open. A cookie copied before sign-out, a password change or a deactivation
is worth nothing after it; the token changes at every sign-in; idle and absolute
timeouts end a session (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from issuer_testing import FAST_ARGON2, PASSWORD, add_user, csrf_token, sign_in
from sqlalchemy import select
from sqlalchemy.orm import Session

from anchor.store import make_engine
from issuer import db
from issuer.accounts import passwords, sessions
from issuer.accounts import service as accounts
from issuer.accounts.models import UserSession

COOKIE = "shomei_session"
NOW = 1_780_000_000.0
POLICY = sessions.SessionPolicy(lifetime=8 * 3600, idle=30 * 60, touch_every=60)


def copy_of(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of ``client``'s session cookie."""
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie.value)
    return thief


def cookie_data(app: Flask, client: FlaskClient) -> dict[str, object]:
    """What the signed session cookie holds."""
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    data = app.session_interface.get_signing_serializer(app).loads(cookie.value)  # type: ignore[attr-defined]
    assert isinstance(data, dict)
    return data


def signed_in_client(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def is_signed_in(client: FlaskClient) -> bool:
    response = client.get("/")
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/auth/login")
        return False
    assert response.status_code == 200
    return True


@pytest.fixture
def staff(make_app, database_url: str) -> Flask:
    app = make_app(database_url)
    add_user(app, "boss", "supervisor", display_name="監督 太郎")
    add_user(app, "clerk1", "clerk", display_name="窓口 花子")
    return app


def test_a_cookie_copied_before_sign_out_is_signed_out_with_it(staff: Flask):
    clerk = signed_in_client(staff, "clerk1")
    thief = copy_of(staff, clerk)
    assert is_signed_in(thief)
    clerk.post("/auth/logout", data={"csrf_token": csrf_token(clerk, "/")})
    assert not is_signed_in(clerk)
    assert not is_signed_in(thief)


def test_a_password_reset_ends_every_copy(staff: Flask):
    clerk = signed_in_client(staff, "clerk1")
    thief = copy_of(staff, clerk)
    boss = signed_in_client(staff, "boss")
    form = {
        "csrf_token": csrf_token(boss, "/users/2/password"),
        "password": "fresh-password-9",
        "password_confirm": "fresh-password-9",
    }
    assert boss.post("/users/2/password", data=form).status_code == 302
    assert not is_signed_in(thief) and not is_signed_in(clerk)
    assert is_signed_in(boss)


def test_resetting_ones_own_password_ends_ones_own_sessions(staff: Flask):
    boss = signed_in_client(staff, "boss")
    thief = copy_of(staff, boss)
    form = {
        "csrf_token": csrf_token(boss, "/users/1/password"),
        "password": "fresh-password-9",
        "password_confirm": "fresh-password-9",
    }
    assert boss.post("/users/1/password", data=form).status_code == 302
    assert not is_signed_in(thief) and not is_signed_in(boss)
    assert sign_in(staff.test_client(), "boss", "fresh-password-9").status_code == 302


def test_a_deactivation_ends_every_copy_for_good(staff: Flask):
    clerk = signed_in_client(staff, "clerk1")
    thief = copy_of(staff, clerk)
    boss = signed_in_client(staff, "boss")
    token = csrf_token(boss, "/users/")
    assert boss.post("/users/2/deactivate", data={"csrf_token": token}).status_code == 302
    assert boss.post("/users/2/activate", data={"csrf_token": token}).status_code == 302
    # Reactivated, the clerk signs in afresh; the old cookie stays signed out.
    assert not is_signed_in(thief)
    assert is_signed_in(signed_in_client(staff, "clerk1"))


def test_the_session_token_changes_at_every_sign_in(staff: Flask):
    browser = staff.test_client()
    before = csrf_token(browser)
    assert "sid" not in cookie_data(staff, browser)
    assert sign_in(browser, "clerk1").status_code == 302
    first = cookie_data(staff, browser)
    assert set(first) <= {"sid", "_permanent", "lang", "_flashes"}  # no user id
    earlier = copy_of(staff, browser)
    # Signing in again from the same browser: a new token; the earlier one ends.
    assert sign_in(browser, "clerk1").status_code == 302
    second = cookie_data(staff, browser)
    assert second["sid"] != first["sid"]
    assert is_signed_in(browser) and not is_signed_in(earlier)
    # The form token from before the sign-in does not carry over into the session.
    response = browser.post("/auth/logout", data={"csrf_token": before})
    assert response.status_code == 400
    assert csrf_token(browser, "/") != before


def test_only_the_tokens_hash_is_stored(staff: Flask):
    browser = signed_in_client(staff, "clerk1")
    token = cookie_data(staff, browser)["sid"]
    assert isinstance(token, str) and len(token) >= 43
    with Session(db.engine_of(staff)) as session:
        stored = session.scalars(select(UserSession.token_hash)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]


def test_a_forged_or_unknown_token_signs_nobody_in(staff: Flask):
    browser = staff.test_client()
    with browser.session_transaction() as cookie:
        cookie["sid"] = "x" * 43
        cookie["user_id"] = 1  # what the cookie carried before: worth nothing now
    assert not is_signed_in(browser)


# ------------------------------------------------------------------ the store
@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    db.migrate(database_url)
    engine = make_engine(database_url)
    with Session(engine) as s:
        yield s
    engine.dispose()


@pytest.fixture
def clerk(session: Session):
    return accounts.create_user(
        session,
        passwords.make_hasher(FAST_ARGON2),
        username="clerk1",
        display_name="窓口 花子",
        role="clerk",
        password=PASSWORD,
        now=NOW,
    )


def test_an_idle_session_ends(session: Session, clerk):
    token = sessions.start(session, clerk, now=NOW, policy=POLICY)
    assert sessions.resume(session, token, now=NOW + 29 * 60, policy=POLICY) == clerk
    # Each request moves the idle deadline: 29 minutes after the last one, still open.
    assert sessions.resume(session, token, now=NOW + 58 * 60, policy=POLICY) == clerk
    assert sessions.resume(session, token, now=NOW + 89 * 60, policy=POLICY) is None


def test_a_busy_session_still_ends_after_its_lifetime(session: Session, clerk):
    token = sessions.start(session, clerk, now=NOW, policy=POLICY)
    now = NOW
    while now < NOW + 8 * 3600 - 600:
        now += 600
        assert sessions.resume(session, token, now=now, policy=POLICY) == clerk
    assert sessions.resume(session, token, now=NOW + 8 * 3600, policy=POLICY) is None


def test_ended_and_lapsed_sessions_are_purged_at_the_next_sign_in(session: Session, clerk):
    ended = sessions.start(session, clerk, now=NOW, policy=POLICY)
    sessions.start(session, clerk, now=NOW, policy=POLICY)  # left to lapse
    sessions.end(session, ended, now=NOW + 1)
    assert sessions.open_sessions(session, clerk.id, now=NOW + 2) == 1
    sessions.start(session, clerk, now=NOW + 3600, policy=POLICY)
    assert len(session.scalars(select(UserSession)).all()) == 1
