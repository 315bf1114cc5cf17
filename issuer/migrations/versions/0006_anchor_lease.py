"""Anchoring with several processes: the leader's lease, and each batch's epoch and
ordered leaf list.

Revision ID: 0006_anchor_lease
Revises: 0005_contracts
Create Date: 2026-12-02

``shomei anchor`` (``anchor.store.create_schema``) may have added these to a shared
database first; what exists is adopted as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_anchor_lease"
down_revision = "0005_contracts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    have = {c["name"] for c in inspector.get_columns("anchor_batches")}
    with op.batch_alter_table("anchor_batches") as batch:
        if "epoch" not in have:
            batch.add_column(sa.Column("epoch", sa.BigInteger(), nullable=True))
        if "leaf_list" not in have:
            batch.add_column(sa.Column("leaf_list", sa.LargeBinary(), nullable=True))
    if "anchor_lease" not in inspector.get_table_names():
        op.create_table(
            "anchor_lease",
            sa.Column("name", sa.String(32), primary_key=True),
            sa.Column("holder", sa.String(200), nullable=False),
            sa.Column("epoch", sa.BigInteger(), nullable=False),
            sa.Column("expires_at", sa.Float(), nullable=False),
            sa.Column("acquired_at", sa.Float(), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("anchor_lease")
    with op.batch_alter_table("anchor_batches") as batch:
        batch.drop_column("leaf_list")
        batch.drop_column("epoch")
