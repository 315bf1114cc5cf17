"""One-time links for contractors (a contract's signing link, the registration link of
a replaced key): the token is shown once and only its SHA-256 is stored; a new link
ends its owner's earlier unused ones; a link opens once, before it expires."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from issuer.contracts.models import ContractLink, ContractorKeyLink
from issuer.contracts.records import ContractError

L = TypeVar("L", ContractLink, ContractorKeyLink)
Owner = TypeVar("Owner")


class LinkError(ContractError):
    """A link that does not work (unknown, used, expired, or what it is for no longer
    waits for it). ``status`` is the HTTP status to answer."""

    def __init__(self, ja: str, en: str, *, status: int = 410) -> None:
        super().__init__(ja, en)
        self.status = status


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


def open_link(
    session: Session,
    kind: type[L],
    token: str,
    *,
    now: float,
    name: str,
    owner: Callable[[L], Owner],
    refuse: Callable[[Owner | None, str], None],
) -> tuple[L, Owner]:
    """The unused, unexpired link of ``kind`` behind ``token`` and what it is for
    (``owner``). Otherwise ``refuse(owner or None, reason)`` records why
    (``unknown_<name>``, ``used_<name>``, ``expired_<name>``) and :class:`LinkError`
    is raised."""
    link = session.scalar(select(kind).where(kind.token_hash == token_hash(token)))
    if link is None:
        refuse(None, f"unknown_{name}")
        raise LinkError("このリンクは無効です", "this link is not valid", status=404)
    row = owner(link)
    if link.used_at is not None:
        refuse(row, f"used_{name}")
        raise LinkError("このリンクはすでに使われました", "this link has already been used")
    if link.expires_at <= now:
        refuse(row, f"expired_{name}")
        raise LinkError(
            "このリンクは期限切れです。発注者にお問い合わせください", "this link has expired"
        )
    return link, row
