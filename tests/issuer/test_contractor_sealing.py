"""Contractor records sealed with the storage key: the database alone shows no name,
法人番号, representative or e-mail; every page still does; the migration seals the rows
an older version left in the clear, and stops without the key."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from issuer_testing import add_user, city_with_staff, signed_in
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from test_contracts import (
    CONTRACTOR,
    PASSPHRASE,
    SETTINGS,
    Contractor,
    approve,
    make_link,
    new_contract,
    pdf_bytes,
    register_contractor,
    trust_from,
)

from anchor.store import make_engine
from issuer import db
from issuer.contracts import contractors as contractors_mod
from issuer.contracts.models import Contractor as ContractorRow
from issuer.keys import service as keys
from verifier.policy import Verifier


@pytest.fixture
def city_app(make_app: Any, database_url: str, tmp_path: Path) -> Flask:
    return city_with_staff(make_app, tmp_path / "data", SETTINGS, PASSPHRASE, database_url)


@pytest.fixture
def clerk(city_app: Flask) -> FlaskClient:
    return signed_in(city_app, "clerk1")


def raw_rows(engine: Any, table: str) -> list[bytes]:
    """Every row of ``table`` as the database holds it, each value as bytes."""
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT * FROM {table}")).all()
    return [
        b"|".join(v if isinstance(v, bytes | memoryview) else str(v).encode() for v in row)
        for row in rows
    ]


def plaintexts() -> list[bytes]:
    return [CONTRACTOR[k].encode() for k in ("name", "corporate_number", "representative")] + [
        CONTRACTOR["email"].encode(),
        "サンプル建設".encode(),
        "田中".encode(),
    ]


def test_the_database_row_holds_no_contractor_data_and_the_pages_show_it(
    city_app: Flask, clerk: FlaskClient
):
    public_id = new_contract(clerk, city_app, pdf_bytes())
    rows = raw_rows(db.engine_of(city_app), "contractors")
    assert len(rows) == 1
    for plain in plaintexts():
        assert plain not in rows[0], plain.decode()
    # Every page that names the contractor still does.
    show = clerk.get(f"/contracts/{public_id}").get_data(as_text=True)
    for value in CONTRACTOR.values():
        assert value in show
    assert CONTRACTOR["name"] in clerk.get("/contracts/").get_data(as_text=True)
    form = clerk.get("/contracts/new").get_data(as_text=True)
    assert f"{CONTRACTOR['name']}（{CONTRACTOR['corporate_number']}）" in form
    party = Contractor(city_app, make_link(clerk, public_id))
    sign_page = party.page().get_data(as_text=True)
    assert CONTRACTOR["name"] in sign_page and CONTRACTOR["corporate_number"] in sign_page
    # ... and the credential carries it.
    assert party.register().status_code == 200
    assert party.sign().get_json() == {"signed": True}
    assert approve(signed_in(city_app, "boss"), public_id).status_code == 303
    sd_jwt = clerk.get(f"/contracts/{public_id}/credential-contractor.sd-jwt")
    result = Verifier(trust=trust_from(city_app)).verify(
        sd_jwt.get_data(as_text=True), now=time.time()
    )
    assert result.disclosed["contractor"] == {
        k: CONTRACTOR[k] for k in ("name", "corporate_number", "representative")
    }


def test_a_corporate_number_registered_twice_is_refused(city_app: Flask, clerk: FlaskClient):
    assert register_contractor(clerk).status_code == 303
    again = register_contractor(clerk, name="別の会社")
    assert again.status_code == 400
    assert "この法人番号は登録済みです" in again.get_data(as_text=True)


def test_a_sealed_row_moved_to_another_contractor_does_not_open(
    city_app: Flask, clerk: FlaskClient
):
    from cryptography.exceptions import InvalidTag

    assert register_contractor(clerk).status_code == 303
    city = keys.load(Path(city_app.config["DATA_DIR"]), PASSPHRASE)
    with Session(db.engine_of(city_app)) as session:
        row = session.scalars(select(ContractorRow)).one()
        assert contractors_mod.open_contractor(city, row).email == CONTRACTOR["email"]
        row.public_id = "another-contractor-id"
        with pytest.raises(InvalidTag):
            contractors_mod.open_contractor(city, row)


# ------------------------------------------------------------------ the migration
def _at_0006_with_a_contractor(url: str) -> None:
    """A database as the version before sealing left it: one contractor in the clear."""
    db.migrate(url, "0006_anchor_lease")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (username, display_name, password_hash, role, active,"
                    " created_at) VALUES ('clerk1', '窓口', 'x', 'clerk', true, 1)"
                )
            )
            user_id = conn.execute(text("SELECT id FROM users")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO contractors (public_id, name, corporate_number, representative,"
                    " email, created_by, created_at)"
                    " VALUES ('k1', :name, :corporate_number, :representative, :email, :u, 1)"
                ),
                {**CONTRACTOR, "u": user_id},
            )
    finally:
        engine.dispose()


def test_the_migration_seals_existing_rows(database_url: str, tmp_path: Path):
    _at_0006_with_a_contractor(database_url)
    city = keys.init(tmp_path / "data", SETTINGS, passphrase=PASSPHRASE)
    db.migrate(database_url, storage_key=city.storage_key)
    engine = make_engine(database_url)
    try:
        (row,) = raw_rows(engine, "contractors")
        for plain in plaintexts():
            assert plain not in row
        with Session(engine) as session:
            contractor = session.scalars(select(ContractorRow)).one()
            opened = contractors_mod.open_contractor(city, contractor)
        assert {k: getattr(opened, k) for k in CONTRACTOR} == CONTRACTOR
        assert contractor.corporate_number_mac == contractors_mod.corporate_number_mac(
            city.storage_key, CONTRACTOR["corporate_number"]
        )
    finally:
        engine.dispose()


def test_without_the_storage_key_the_migration_stops_before_changing_anything(
    database_url: str,
):
    _at_0006_with_a_contractor(database_url)
    with pytest.raises(db.MigrationError, match="storage key"):
        db.migrate(database_url)
    engine = make_engine(database_url)
    try:
        assert db.current_revision(engine) == "0006_anchor_lease"
        with engine.connect() as conn:
            name = conn.execute(text("SELECT name FROM contractors")).scalar_one()
        assert name == CONTRACTOR["name"]
    finally:
        engine.dispose()


def test_the_app_seals_at_start_with_the_key_of_its_data_directory(
    make_app: Any, sqlite_url: str, tmp_path: Path
):
    _at_0006_with_a_contractor(sqlite_url)
    keys.init(tmp_path / "data", SETTINGS, passphrase=PASSPHRASE)
    app = make_app(sqlite_url, KEY_PASSPHRASE=PASSPHRASE)
    add_user(app, "boss", "supervisor")
    client = signed_in(app, "boss")
    form = client.get("/contracts/new").get_data(as_text=True)
    assert CONTRACTOR["name"] in form
    for plain in plaintexts():
        assert plain not in raw_rows(db.engine_of(app), "contractors")[0]


def test_shomei_issuer_migrate_seals_with_the_data_directorys_key(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from click.testing import CliRunner

    from shomei_cli import main

    _at_0006_with_a_contractor(sqlite_url)
    monkeypatch.setenv("SHOMEI_DATABASE_URL", sqlite_url)
    refused = CliRunner().invoke(main, ["issuer", "migrate", "--data-dir", str(tmp_path / "d")])
    assert refused.exit_code == 2
    assert "保管用の鍵が必要です" in refused.output and "storage key" in refused.output
    keys.init(tmp_path / "d", SETTINGS, passphrase=PASSPHRASE)
    done = CliRunner().invoke(main, ["issuer", "migrate", "--data-dir", str(tmp_path / "d")])
    assert done.exit_code == 0, done.output
    engine = make_engine(sqlite_url)
    try:
        assert CONTRACTOR["name"].encode() not in raw_rows(engine, "contractors")[0]
    finally:
        engine.dispose()
