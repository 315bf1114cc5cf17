"""Credential offers for residents' wallets (OpenID4VCI), consumed nonces and the
credentials delivered.

Revision ID: 0004_offers
Revises: 0003_certificates
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_offers"
down_revision = "0003_certificates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential_offers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("public_id", sa.String(32), nullable=False, unique=True),
        sa.Column("certificate_id", sa.Integer(), sa.ForeignKey("certificates.id"), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("tx_code_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("access_token_hash", sa.LargeBinary(32), nullable=True, unique=True),
        sa.Column("token_expires_at", sa.Float(), nullable=True),
        sa.Column("holder_key_id", sa.String(64), nullable=True),
        sa.Column("redeemed_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_credential_offers_certificate_id", "credential_offers", ["certificate_id"])
    op.create_table(
        "oid4vci_used_nonces",
        sa.Column("nonce_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_oid4vci_used_nonces_expires_at", "oid4vci_used_nonces", ["expires_at"])
    op.create_table(
        "delivered_credentials",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("certificate_id", sa.Integer(), sa.ForeignKey("certificates.id"), nullable=False),
        sa.Column(
            "offer_id",
            sa.Integer(),
            sa.ForeignKey("credential_offers.id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("leaf", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("holder_kid", sa.String(64), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_delivered_credentials_certificate_id", "delivered_credentials", ["certificate_id"]
    )


def downgrade() -> None:
    op.drop_table("delivered_credentials")
    op.drop_table("oid4vci_used_nonces")
    op.drop_table("credential_offers")
