"""Server-side sessions and atomic sign-in counters.

Revision ID: 0007_sessions
Revises: 0006_anchor_lease
Create Date: 2026-12-02

``user_sessions`` holds one row per signed-in browser (the cookie carries only a random
token, stored here hashed), so signing out, a password change or a deactivation ends
every copy of a cookie. ``sign_in_counters`` replaces ``login_failures``: attempts are
counted per account and per client address by one conditional UPDATE before the password
is checked. Failures recorded under the old scheme are not carried over (they would
lapse within fifteen minutes anyway); everyone signs in again after the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_sessions"
down_revision = "0006_anchor_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_index("ix_user_sessions_expires_at", "user_sessions", ["expires_at"])
    op.create_table(
        "sign_in_counters",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_sign_in_counters_window_ends_at", "sign_in_counters", ["window_ends_at"])
    op.drop_table("login_failures")


def downgrade() -> None:
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
    op.drop_table("sign_in_counters")
    op.drop_table("user_sessions")
