"""The issuer's database: one engine per app, one session per request, migrations.

``init_app(app)`` builds the engine from ``app.config["DATABASE_URL"]``, brings the
schema to the newest revision (unless ``AUTO_MIGRATE`` is false) and closes the
request's session on teardown. Views and services reach the session through
``get_session()``. The same Alembic history creates the anchoring queue's tables, so
the issuer and the anchoring worker share one database.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from anchor.store import make_engine
from credentials.errors import ShomeiError

if TYPE_CHECKING:
    from flask import Flask

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_EXTENSION = "shomei_db"


class MigrationError(ShomeiError):
    """A migration that cannot run as things are (e.g. rows to seal and no storage key)."""


def migrate(
    url_or_engine: str | Engine, revision: str = "heads", *, storage_key: bytes | None = None
) -> None:
    """Upgrade the database to ``revision`` (default: every branch head). Idempotent: a
    database already there is left alone. ``storage_key`` (the issuer's, see
    ``issuer.keys.read_storage_key``) lets a migration seal rows that were in the clear;
    without it such a migration stops before changing anything. Raises SQLAlchemyError
    when the database cannot be reached, :class:`MigrationError` when a migration needs
    the storage key it was not given."""
    from alembic import command
    from alembic.config import Config

    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.connect() as connection:
            cfg.attributes["connection"] = connection
            cfg.attributes["storage_key"] = storage_key
            command.upgrade(cfg, revision)
            connection.commit()
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, None for a database never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def init_app(app: Flask) -> None:
    """Attach the engine and session factory to ``app``; migrate when configured."""
    from issuer.keys import service as keys

    engine = make_engine(app.config["DATABASE_URL"])
    if app.config.get("AUTO_MIGRATE", True):
        migrate(engine, storage_key=keys.read_storage_key(Path(app.config["DATA_DIR"])))
    app.extensions[_EXTENSION] = sessionmaker(bind=engine, expire_on_commit=False)
    app.teardown_appcontext(close_session)


def engine_of(app: Flask) -> Engine:
    factory: sessionmaker[Session] = app.extensions[_EXTENSION]
    bind = factory.kw["bind"]
    assert isinstance(bind, Engine)
    return bind


def get_session() -> Session:
    """This request's session (opened on first use, closed at teardown)."""
    from flask import current_app, g

    if "db_session" not in g:
        g.db_session = current_app.extensions[_EXTENSION]()
    session: Session = g.db_session
    return session


def close_session(_exc: BaseException | None = None) -> None:
    from flask import g

    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()
