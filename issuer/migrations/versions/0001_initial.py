"""Initial schema: clerk accounts, failed sign-ins, and the anchoring queue.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

The anchoring tables may already exist in a database the anchoring worker created
before the issuer ran (``anchor.store.create_schema``); they are adopted as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "anchor_batches" not in existing:
        op.create_table(
            "anchor_batches",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("root", sa.LargeBinary(32), nullable=False, unique=True),
            sa.Column("size", sa.Integer(), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("closed_at", sa.Float(), nullable=False),
            sa.Column("nonce", sa.BigInteger(), nullable=True),
            sa.Column("tx_hash", sa.String(66), nullable=True),
            sa.Column("raw_tx", sa.LargeBinary(), nullable=True),
            sa.Column("max_fee_per_gas", sa.BigInteger(), nullable=True),
            sa.Column("max_priority_fee_per_gas", sa.BigInteger(), nullable=True),
            sa.Column("sent_at", sa.Float(), nullable=True),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("next_try_at", sa.Float(), nullable=False),
            sa.Column("block", sa.BigInteger(), nullable=True),
            sa.Column("block_time", sa.BigInteger(), nullable=True),
            sa.Column("anchored_at", sa.Float(), nullable=True),
        )
        op.create_index("ix_anchor_batches_state", "anchor_batches", ["state"])
    if "anchor_leaves" not in existing:
        op.create_table(
            "anchor_leaves",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("leaf", sa.LargeBinary(32), nullable=False, unique=True),
            sa.Column("queued_at", sa.Float(), nullable=False),
            sa.Column("batch_id", sa.Integer(), sa.ForeignKey("anchor_batches.id"), nullable=True),
            sa.Column("leaf_index", sa.Integer(), nullable=True),
            sa.Column("receipt", sa.LargeBinary(), nullable=True),
        )
        op.create_index("ix_anchor_leaves_batch_id", "anchor_leaves", ["batch_id"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_login_failures_at", "login_failures", ["at"])
    op.create_index("ix_login_failures_username_at", "login_failures", ["username", "at"])
    op.create_index("ix_login_failures_address_at", "login_failures", ["address", "at"])


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("users")
    op.drop_table("anchor_leaves")
    op.drop_table("anchor_batches")
