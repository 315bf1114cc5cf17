"""The issuer's declarative base: every feature's tables (``issuer/*/models.py``) join
its metadata, and one Alembic history (``issuer/migrations``) creates them together with
the anchoring queue's (``anchor.store``). Times are seconds since the epoch (floats), as
in the anchoring store, so SQLite and PostgreSQL store them alike.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
