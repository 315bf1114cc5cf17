"""The sign-in limit holds under simultaneous attempts (real threads against the app,
SQLite file and PostgreSQL), and password hashing runs a few at a time: a flood waits
briefly, then gets 503 with ``Retry-After``, never all the memory."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from issuer_testing import PASSWORD, add_user, csrf_token, sign_in
from sqlalchemy import select
from sqlalchemy.orm import Session

from issuer import db
from issuer.accounts import passwords
from issuer.accounts import service as accounts
from issuer.audit.models import AuditEntry

ATTEMPTS = 20
LIMIT = 5
# Dearer than the other tests' hashes, so that a check takes long enough for the
# attempts to overlap, as they do in production (64 MiB, about 0.1 s each).
OVERLAPPING_ARGON2 = {"ARGON2_TIME_COST": 2, "ARGON2_MEMORY_COST": 8192, "ARGON2_PARALLELISM": 1}


def wrong_passwords_at_once(app: Flask, usernames: list[str]) -> Counter[int]:
    """One thread and one test client per username, all posting a wrong password at the
    same moment; the status codes they got."""
    clients = [app.test_client() for _ in usernames]
    tokens = [csrf_token(client) for client in clients]
    start = threading.Barrier(len(usernames))
    codes: list[int] = []

    def attempt(i: int) -> None:
        data = {"username": usernames[i], "password": "wrong-password", "csrf_token": tokens[i]}
        start.wait()
        codes.append(clients[i].post("/auth/login", data=data).status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(usernames))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return Counter(codes)


def checked_passwords(app: Flask) -> int:
    """Sign-ins that reached the password check: the audit log's wrong_password entries."""
    with Session(db.engine_of(app)) as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "sign_in_failed"))
        return sum(1 for row in rows if (row.details or {}).get("reason") == "wrong_password")


@pytest.mark.parametrize("spread", ["one account", "one address, many accounts"])
def test_simultaneous_wrong_passwords_never_pass_the_limit(
    make_app: Callable[..., Flask], database_url: str, spread: str
):
    app = make_app(database_url, **OVERLAPPING_ARGON2, PASSWORD_HASH_WAIT_SECONDS=60)
    add_user(app, "clerk1")
    if spread == "one account":
        usernames = ["clerk1"] * ATTEMPTS
    else:
        usernames = [f"guess{i}" for i in range(ATTEMPTS)]
    codes = wrong_passwords_at_once(app, usernames)
    assert sum(codes.values()) == ATTEMPTS
    assert codes[401] <= LIMIT and codes[401] + codes[429] == ATTEMPTS, codes
    assert checked_passwords(app) == codes[401]
    # The right password is refused as well until the window ends.
    assert sign_in(app.test_client(), "clerk1").status_code == 429


def test_a_busy_hasher_answers_503_with_retry_after_and_counts_nothing(
    make_app: Callable[..., Flask],
):
    app = make_app(PASSWORD_HASH_CONCURRENCY=1, PASSWORD_HASH_WAIT_SECONDS=0.05)
    add_user(app, "clerk1")
    hasher = app.extensions["shomei_hasher"]
    client = app.test_client()
    with hasher.turn():  # another request is hashing
        response = sign_in(client, "clerk1")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(passwords.BUSY_RETRY_AFTER)
    page = response.get_data(as_text=True)
    assert "混み合っています" in page and "the server is busy" in page
    assert "Traceback" not in page
    with Session(db.engine_of(app)) as session:
        assert accounts.failures(session, username="clerk1", address="127.0.0.1") == 0
    assert sign_in(client, "clerk1").status_code == 302  # the turn is free again


def test_adding_a_user_while_the_hasher_is_busy_is_503(make_app: Callable[..., Flask]):
    app = make_app(PASSWORD_HASH_CONCURRENCY=1, PASSWORD_HASH_WAIT_SECONDS=0.05)
    add_user(app, "boss", "supervisor")
    client = app.test_client()
    assert sign_in(client, "boss").status_code == 302
    form = {
        "csrf_token": csrf_token(client, "/users/"),
        "username": "tanaka",
        "display_name": "田中 一郎",
        "role": "clerk",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }
    with app.extensions["shomei_hasher"].turn():
        response = client.post("/users/", data=form)
    assert response.status_code == 503 and "Retry-After" in response.headers


def test_no_more_hashes_at_once_than_the_limit(monkeypatch: pytest.MonkeyPatch):
    running = 0
    most = 0
    lock = threading.Lock()
    original = PasswordHasher.hash

    def slow_hash(self: PasswordHasher, password: Any, *, salt: Any = None) -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return original(self, password, salt=salt)

    monkeypatch.setattr(PasswordHasher, "hash", slow_hash)
    hasher = passwords.make_hasher(
        {"ARGON2_MEMORY_COST": 64, "ARGON2_TIME_COST": 1, "PASSWORD_HASH_WAIT_SECONDS": 30}
    )
    threads = [threading.Thread(target=hasher.hash, args=("pw",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == passwords.GATE_DEFAULTS["PASSWORD_HASH_CONCURRENCY"] == 2


def test_the_gate_refuses_after_its_wait():
    hasher = passwords.make_hasher(
        {"PASSWORD_HASH_CONCURRENCY": 1, "PASSWORD_HASH_WAIT_SECONDS": 0.01}
    )
    with hasher.turn(), pytest.raises(passwords.Busy, match="the server is busy"):
        hasher.verify("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "pw")


def test_the_limits_come_from_the_environment(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SHOMEI_PASSWORD_HASH_CONCURRENCY", "3")
    monkeypatch.setenv("SHOMEI_PASSWORD_HASH_WAIT_SECONDS", "0.5")
    monkeypatch.setenv("SHOMEI_LOGIN_MAX_FAILURES", "7")
    monkeypatch.setenv("SHOMEI_LOGIN_WINDOW_SECONDS", "600")
    monkeypatch.setenv("SHOMEI_SESSION_IDLE_SECONDS", "900")
    monkeypatch.setenv("SHOMEI_SESSION_LIFETIME_SECONDS", "3600")
    app = make_app()
    hasher = app.extensions["shomei_hasher"]
    assert (hasher.concurrency, hasher.wait) == (3, 0.5)
    assert app.config["LOGIN_MAX_FAILURES"] == 7 and app.config["LOGIN_WINDOW_SECONDS"] == 600
    assert app.config["SESSION_IDLE_SECONDS"] == 900
    assert app.permanent_session_lifetime.total_seconds() == 3600


@pytest.mark.parametrize("value", ["0", "-1", "two", "1001"])
def test_a_bad_limit_in_the_environment_is_refused_by_name(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, value: str
):
    monkeypatch.setenv("SHOMEI_PASSWORD_HASH_CONCURRENCY", value)
    with pytest.raises(ValueError, match="SHOMEI_PASSWORD_HASH_CONCURRENCY must be"):
        make_app()
