"""Contractors sealed at rest: name, 法人番号, representative and e-mail move into one
AES-256-GCM sealed column (the storage key, as certificates), with a keyed MAC of the
法人番号 for the uniqueness check; a replaced signing key is kept as revoked, and the
new one comes through a one-time key link.

Revision ID: 0008_contractors_sealed
Revises: 0006_anchor_lease
Create Date: 2026-12-02

Existing rows are sealed here, with the storage key that ``issuer.db.migrate`` passes
(``config.attributes["storage_key"]``: the app at start, ``shomei issuer migrate`` and
``create-user`` read it from the data directory). A database holding contractors and
no key to seal them stops with ``MigrationError`` before anything changes. The sealing
format is copied here, frozen: ``issuer.contracts.contractors`` reads what this writes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from issuer.db import MigrationError

revision = "0008_contractors_sealed"
down_revision = "0006_anchor_lease"
branch_labels = None
depends_on = None

_FIELDS = ("name", "corporate_number", "representative", "email")
_MAC_LABEL = b"shomei contractor corporate number v1\x00"
_NONCE = 12
_UNIQUE_MAC = "contractors_corporate_number_mac_key"


def _storage_key(rows: int) -> bytes | None:
    key = context.config.attributes.get("storage_key")
    if rows and key is None:
        raise MigrationError(
            "受注者の情報を暗号化するには保管用の鍵が必要です。"
            "発行者のデータディレクトリを指定して `shomei issuer migrate --data-dir DIR` "
            "を実行してください",
            "sealing the contractors needs the storage key: run "
            "`shomei issuer migrate --data-dir DIR` with the issuer's data directory",
        )
    return key if isinstance(key, bytes) else None


def _context(public_id: str) -> bytes:
    return f"contractor:{public_id}".encode()


def _seal(key: bytes, row: Any) -> dict[str, Any]:
    plain = json.dumps({name: getattr(row, name) for name in _FIELDS}, ensure_ascii=False)
    nonce = secrets.token_bytes(_NONCE)
    sealed = nonce + AESGCM(key).encrypt(nonce, plain.encode("utf-8"), _context(row.public_id))
    mac = hmac.new(key, _MAC_LABEL + row.corporate_number.encode("utf-8"), hashlib.sha256)
    return {"id": row.id, "sealed": sealed, "mac": mac.hexdigest()}


def _unseal(key: bytes, row: Any) -> dict[str, Any]:
    sealed = bytes(row.sealed)
    plain = AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], _context(row.public_id))
    return {"id": row.id, **json.loads(plain)}


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, public_id, name, corporate_number, representative, email FROM contractors"
        )
    ).all()
    key = _storage_key(len(rows))  # before any change: nothing half done without the key
    with op.batch_alter_table("contractors") as batch:
        batch.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("corporate_number_mac", sa.String(64), nullable=True))
    if rows and key is not None:
        bind.execute(
            sa.text(
                "UPDATE contractors SET sealed = :sealed, corporate_number_mac = :mac"
                " WHERE id = :id"
            ).bindparams(sa.bindparam("sealed", type_=sa.LargeBinary())),
            [_seal(key, row) for row in rows],
        )
    with op.batch_alter_table("contractors") as batch:
        batch.alter_column("sealed", existing_type=sa.LargeBinary(), nullable=False)
        batch.alter_column("corporate_number_mac", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint(_UNIQUE_MAC, ["corporate_number_mac"])
        for name in _FIELDS:
            batch.drop_column(name)
    _key_replacement_tables()


def _fk(target: str, *, name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), sa.ForeignKey(target), nullable=False)


def _key_replacement_tables() -> None:
    op.create_table(
        "contractor_revoked_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("contractors.id", name="contractor_id"),
        sa.Column("jwk", sa.Text(), nullable=False),
        sa.Column("key_thumbprint", sa.String(43), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=False),
        _fk("users.id", name="revoked_by"),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_contractor_revoked_keys_contractor_id", "contractor_revoked_keys", ["contractor_id"]
    )
    op.create_index(
        "ix_contractor_revoked_keys_key_thumbprint", "contractor_revoked_keys", ["key_thumbprint"]
    )
    op.create_table(
        "contractor_key_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("contractors.id", name="contractor_id"),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("reason", sa.Text(), nullable=False),
        _fk("users.id", name="created_by"),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
    )
    op.create_index(
        "ix_contractor_key_links_contractor_id", "contractor_key_links", ["contractor_id"]
    )


def downgrade() -> None:
    op.drop_table("contractor_key_links")
    op.drop_table("contractor_revoked_keys")
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, public_id, sealed FROM contractors")).all()
    key = _storage_key(len(rows))
    with op.batch_alter_table("contractors") as batch:
        batch.add_column(sa.Column("name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("corporate_number", sa.String(13), nullable=True))
        batch.add_column(sa.Column("representative", sa.String(100), nullable=True))
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))
    if rows and key is not None:
        bind.execute(
            sa.text(
                "UPDATE contractors SET name = :name, corporate_number = :corporate_number,"
                " representative = :representative, email = :email WHERE id = :id"
            ),
            [_unseal(key, row) for row in rows],
        )
    with op.batch_alter_table("contractors") as batch:
        batch.drop_constraint(_UNIQUE_MAC, type_="unique")
        batch.drop_column("corporate_number_mac")
        batch.drop_column("sealed")
        for name, length in (("name", 100), ("representative", 100), ("email", 254)):
            batch.alter_column(name, existing_type=sa.String(length), nullable=False)
        batch.alter_column("corporate_number", existing_type=sa.String(13), nullable=False)
        batch.create_unique_constraint("contractors_corporate_number_key", ["corporate_number"])
