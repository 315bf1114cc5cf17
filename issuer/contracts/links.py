"""One-time links for contractors (a contract's signing link, the registration link of
a replaced key): the token is shown once and only its SHA-256 is stored; a new link
ends its owner's earlier unused ones."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from issuer.contracts.models import ContractLink, ContractorKeyLink


def token_hash(token: str) -> bytes:
    """What is stored of a link's token."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def issue(
    session: Session,
    kind: type[ContractLink] | type[ContractorKeyLink],
    *,
    owner: str,
    owner_id: int,
    created_by: int,
    now: float,
    ttl: float,
    **fields: Any,
) -> str:
    """Add a link of ``kind`` for the row ``owner_id`` (its column ``owner``), ending
    the owner's earlier unused links, and return its token (not committed)."""
    session.execute(
        update(kind)
        .where(getattr(kind, owner) == owner_id, kind.used_at.is_(None), kind.expires_at > now)
        .values(expires_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        kind(
            token_hash=token_hash(token),
            created_by=created_by,
            created_at=now,
            expires_at=now + ttl,
            **{owner: owner_id},
            **fields,
        )
    )
    return token
