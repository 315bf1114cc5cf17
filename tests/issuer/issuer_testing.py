"""Helpers of the issuer tests: accounts, the CSRF token of a page, signing in."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from anchor.store import make_engine
from issuer import db
from issuer.accounts import passwords
from issuer.accounts.models import User
from issuer.accounts.service import create_user
from issuer.keys import service as keys

PASSWORD = "counter-password-42"
# Cheap argon2id parameters: the tests sign in often; production keeps the defaults.
FAST_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 64, "ARGON2_PARALLELISM": 1}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_user(app: Flask, username: str, role: str = "clerk", **kwargs: Any) -> User:
    with Session(db.engine_of(app)) as session:
        return create_user(
            session,
            passwords.make_hasher(app.config),
            username=username,
            display_name=kwargs.get("display_name", f"{username} 様"),
            role=role,
            password=kwargs.get("password", PASSWORD),
            now=kwargs.get("now", 1_780_000_000.0),
        )


def csrf_token(client: FlaskClient, path: str = "/auth/login") -> str:
    """The session's CSRF token, read from a page's form as a browser would."""
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD, **kwargs: Any) -> Any:
    """POST the sign-in form (``kwargs`` go to the test client: ``environ_base``,
    ``base_url``)."""
    token = csrf_token(client)
    return client.post(
        "/auth/login",
        data={"username": username, "password": password, "csrf_token": token},
        **kwargs,
    )


def count_users(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return session.query(User).count()
    finally:
        engine.dispose()


def city_with_staff(
    make_app: Callable[..., Flask],
    data_dir: Path,
    settings: keys.IssuerSettings,
    passphrase: str,
    database_url: str | None = None,
) -> Flask:
    """An initialised issuer (its key made in ``data_dir``) with a clerk ``clerk1`` and a
    supervisor ``boss``."""
    keys.init(data_dir, settings, passphrase=passphrase)
    app = make_app(database_url, KEY_PASSPHRASE=passphrase)
    add_user(app, "clerk1", "clerk", display_name="窓口 花子")
    add_user(app, "boss", "supervisor", display_name="監督 太郎")
    return app


def signed_in(app: Flask, username: str) -> FlaskClient:
    """A test client of ``username``, signed in."""
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client
