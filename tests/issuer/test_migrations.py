"""One ``alembic upgrade head`` creates every table (issuer and anchoring queue), on
SQLite and PostgreSQL; running it again changes nothing; the models match it."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect

import issuer.app  # noqa: F401 - every feature's models join the metadata, whatever ran first
from anchor.store import Base as AnchorBase
from anchor.store import create_schema, make_engine
from issuer import db
from issuer.models import Base as IssuerBase
from shomei_cli import main

TABLES = {"users", "login_failures", "anchor_leaves", "anchor_batches", "alembic_version"}
TABLES |= {"audit_entries", "audit_head", "audit_anchors"}
TABLES |= {"certificates", "status_lists"}
TABLES |= {"credential_offers", "oid4vci_used_nonces", "delivered_credentials"}
TABLES |= {"contractors", "contracts", "contract_documents", "contract_links"}
TABLES |= {"contract_signatures", "contract_credentials"}
TABLES |= {"anchor_lease"}
TABLES |= {"contractor_revoked_keys", "contractor_key_links"}


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def drift(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                compare_metadata(
                    MigrationContext.configure(conn), [IssuerBase.metadata, AnchorBase.metadata]
                )
            )
    finally:
        engine.dispose()


def test_upgrade_creates_every_table_and_is_idempotent(database_url: str):
    assert tables(database_url) == set()
    db.migrate(database_url)
    assert tables(database_url) == TABLES
    db.migrate(database_url)  # a second run (every app start does it) is harmless
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            heads = set(MigrationContext.configure(conn).get_current_heads())
        assert "0002_audit" in heads  # sibling branches from 0001 may add their own heads
    finally:
        engine.dispose()


def test_the_migrations_match_the_models(database_url: str):
    db.migrate(database_url)
    assert drift(database_url) == []


def test_an_existing_anchoring_queue_is_adopted(database_url: str):
    engine = make_engine(database_url)
    try:
        create_schema(engine)  # the anchoring worker ran first
    finally:
        engine.dispose()
    db.migrate(database_url)
    assert tables(database_url) == TABLES
    assert drift(database_url) == []


def test_the_app_migrates_at_start(make_app, database_url: str):
    make_app(database_url)
    make_app(database_url)  # a restart
    assert tables(database_url) == TABLES


def test_shomei_issuer_migrate(database_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOMEI_DATABASE_URL", database_url)
    for _ in range(2):
        result = CliRunner().invoke(main, ["issuer", "migrate"])
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output
    assert tables(database_url) == TABLES
