"""Public-works contracts: contractors, contract versions and their PDFs, signing
links, the parties' signatures and the credentials issued for them.

Revision ID: 0005_contracts
Revises: 0004_offers
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_contracts"
down_revision = "0004_offers"
branch_labels = None
depends_on = None


def _fk(target: str, *, name: str, nullable: bool = False, unique: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), sa.ForeignKey(target), nullable=nullable, unique=unique)


def upgrade() -> None:
    op.create_table(
        "contractors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("public_id", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("corporate_number", sa.String(13), nullable=False, unique=True),
        sa.Column("representative", sa.String(100), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("jwk", sa.Text(), nullable=True),
        sa.Column("key_thumbprint", sa.String(43), nullable=True),
        _fk("users.id", name="created_by"),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "contracts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("public_id", sa.String(32), nullable=False, unique=True),
        sa.Column("contract_number", sa.String(50), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _fk("contracts.id", name="previous_id", nullable=True),
        _fk("contractors.id", name="contractor_id"),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("amount_jpy", sa.BigInteger(), nullable=False),
        sa.Column("period_start", sa.String(10), nullable=False),
        sa.Column("period_end", sa.String(10), nullable=False),
        sa.Column("site", sa.String(200), nullable=True),
        sa.Column("document_sha256", sa.String(64), nullable=False),
        sa.Column("document_pages", sa.Integer(), nullable=False),
        sa.Column("document_size", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        _fk("users.id", name="created_by"),
        sa.Column("created_at", sa.Float(), nullable=False),
        _fk("users.id", name="approved_by", nullable=True),
        sa.Column("approved_at", sa.Float(), nullable=True),
        sa.Column("concluded_on", sa.String(10), nullable=True),
        _fk("users.id", name="ended_by", nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("contract_number", "version"),
    )
    op.create_index("ix_contracts_contract_number", "contracts", ["contract_number"])
    op.create_index("ix_contracts_contractor_id", "contracts", ["contractor_id"])
    op.create_index("ix_contracts_created_at", "contracts", ["created_at"])
    op.create_table(
        "contract_documents",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("contracts.id", name="contract_id", unique=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "contract_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("contracts.id", name="contract_id"),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        _fk("users.id", name="created_by"),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_contract_links_contract_id", "contract_links", ["contract_id"])
    op.create_table(
        "contract_signatures",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("contracts.id", name="contract_id"),
        sa.Column("party", sa.String(16), nullable=False),
        sa.Column("signed_at", sa.Float(), nullable=False),
        sa.Column("key_thumbprint", sa.String(43), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        _fk("users.id", name="signed_by", nullable=True),
        sa.UniqueConstraint("contract_id", "party"),
    )
    op.create_table(
        "contract_credentials",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("contracts.id", name="contract_id"),
        sa.Column("party", sa.String(16), nullable=False),
        _fk("certificates.id", name="certificate_id", unique=True),
        sa.UniqueConstraint("contract_id", "party"),
    )


def downgrade() -> None:
    for table in (
        "contract_credentials",
        "contract_signatures",
        "contract_links",
        "contract_documents",
        "contracts",
        "contractors",
    ):
        op.drop_table(table)
