"""Issuer fixtures: an app on a temporary database, signed-in clients, and the storage
backends (SQLite always; PostgreSQL when ``SHOMEI_TEST_POSTGRES_URL`` is set).

Without ``SHOMEI_TEST_POSTGRES_URL`` the PostgreSQL cases skip locally and fail in CI
(``CI=true``), so a CI run can never pass by silently not testing PostgreSQL. Each
PostgreSQL test works in its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from issuer_testing import FAST_ARGON2, add_user, sign_in
from sqlalchemy import create_engine, make_url, text

from issuer import create_app, db

POSTGRES_ENV = "SHOMEI_TEST_POSTGRES_URL"


def postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    reason = f"{POSTGRES_ENV} is not set (.ci/run starts PostgreSQL and sets it)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'issuer.db'}"
        return
    base = postgres_base_url()
    schema = f"test_{secrets.token_hex(6)}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'issuer.db'}"


@pytest.fixture
def make_app(tmp_path: Path, sqlite_url: str) -> Iterator[Callable[..., Flask]]:
    """Builds apps (several share one database: a restart); disposes their engines."""
    apps: list[Flask] = []

    def build(database_url: str | None = None, **config: Any) -> Flask:
        app = create_app(
            {
                "TESTING": True,
                "DATA_DIR": tmp_path / "data",
                "DATABASE_URL": database_url or sqlite_url,
                **FAST_ARGON2,
                **config,
            }
        )
        apps.append(app)
        return app

    yield build
    for app in apps:
        db.engine_of(app).dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def supervisor(app: Flask) -> FlaskClient:
    add_user(app, "boss", "supervisor", display_name="監督 太郎")
    client = app.test_client()
    assert sign_in(client, "boss").status_code == 302
    return client


@pytest.fixture
def clerk(app: Flask) -> FlaskClient:
    add_user(app, "clerk1", "clerk", display_name="窓口 花子")
    client = app.test_client()
    assert sign_in(client, "clerk1").status_code == 302
    return client
