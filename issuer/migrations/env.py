"""Alembic environment: the issuer's tables and the anchoring queue's, one history.

Run through ``issuer.db.migrate`` (``shomei issuer migrate``, and at app start), which
passes an open connection in ``config.attributes["connection"]``. Offline (SQL script)
mode is not supported: the database is always reachable when migrating.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from anchor.store import Base as AnchorBase
from issuer.audit import models as models_audit  # noqa: F401 - the audit tables join IssuerBase.metadata
from issuer.models import Base as IssuerBase

# Autogenerate (when writing a new revision by hand-checking) compares against both.
target_metadata = [IssuerBase.metadata, AnchorBase.metadata]

# Any constant: serialises concurrent migrations of one PostgreSQL database (two app
# processes starting at once), so the second sees the first one's result.
_PG_LOCK = 0x5_401_0E1


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through issuer.db.migrate (shomei issuer migrate)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        context.run_migrations()


run_migrations_online()
