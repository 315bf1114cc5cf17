"""Exactly one anchoring leader per database: a lease row, an epoch, and fencing.

Any number of processes (``shomei issuer serve`` workers, ``shomei anchor``) may run
against one database. Each calls :meth:`Lease.acquire` before it works; one holds the
row ``anchor_lease`` (``holder``) until ``expires_at`` and renews it as it goes, the
others stay followers. When the leader dies (kill -9) its lease runs out and the first
follower to look takes it over, incrementing ``epoch``.

Time alone cannot depose a leader that is merely slow (a pause longer than the lease),
so every write a leader makes begins with :meth:`Lease.fence`: a conditional update of
the lease row on (holder, epoch) *in the same transaction*. It fails once another
process has taken over, and while the transaction is open it holds the row (PostgreSQL)
or the database's write lock (SQLite), so no takeover can slip in before the commit.
The same statements work on SQLite and PostgreSQL: no advisory locks, no files.

Hosts sharing a database compare their own clocks with ``expires_at``: keep them in
sync (NTP); fencing keeps a skewed clock safe, it only costs a spurious takeover.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from credentials.errors import AnchorError

from .store import LeaseRow

NAME = "anchor"
DEFAULT_TTL = 5.0  # seconds: a dead leader is replaced within this (plus one poll)


class NotLeader(AnchorError):
    """This process no longer holds the anchoring lease: another one took over."""


@dataclass(frozen=True, kw_only=True)
class LeaseInfo:
    """Who leads, as the database says."""

    holder: str
    epoch: int
    expires_at: float
    acquired_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "epoch": self.epoch,
            "expires_at": self.expires_at,
            "acquired_at": self.acquired_at,
        }


def default_holder() -> str:
    """``host:pid``: unique among live processes, readable in ``anchor status``. A
    holder may take its own lease back at once (a new epoch): a process that restarted
    its worker, or a new process that reused a dead one's pid on the same host."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Lease:
    """This process's claim on the anchoring lease of the database behind ``engine``."""

    def __init__(
        self,
        engine: Engine,
        *,
        holder: str | None = None,
        ttl: float = DEFAULT_TTL,
        name: str = NAME,
    ) -> None:
        if ttl <= 0:
            raise ValueError("the lease period must be positive")
        self.engine = engine
        self.holder = holder or default_holder()
        self.ttl = ttl
        self.name = name
        self.epoch: int | None = None  # set while this process believes it leads
        self._renewed_at = float("-inf")

    def acquire(self, now: float) -> bool:
        """Renew the lease, or take it when it is free or has expired. Returns whether
        this process leads now. Renewal is written at most every third of the period."""
        if self.epoch is not None and now - self._renewed_at < self.ttl / 3:
            return True
        with self.engine.begin() as conn:
            _ensure_row(conn, self.name)
            if self.epoch is not None and self._renew(conn, now):
                return True
            if self.epoch is not None:
                self.epoch = None  # deposed: someone took over while we were away
            epoch = conn.execute(
                update(LeaseRow)
                .where(
                    LeaseRow.name == self.name,
                    or_(LeaseRow.expires_at <= now, LeaseRow.holder == self.holder),
                )
                .values(
                    holder=self.holder,
                    epoch=LeaseRow.epoch + 1,
                    expires_at=now + self.ttl,
                    acquired_at=now,
                )
                .returning(LeaseRow.epoch)
            ).scalar()
        if epoch is None:
            return False
        self.epoch, self._renewed_at = int(epoch), now
        return True

    def fence(self, session: Session, now: float) -> int:
        """Prove inside ``session``'s transaction that this process still leads, and
        renew the lease. Call it first in every write transaction of the leader.
        Returns the epoch. Raises :class:`NotLeader` (roll the transaction back)."""
        if self.epoch is None or not self._renew(session.connection(), now):
            self.epoch = None
            raise NotLeader(
                "記録の担当（リーダー）が他のプロセスに移りました",
                "another process took over anchoring (lease lost)",
            )
        return self.epoch

    def release(self) -> None:
        """Give the lease up now (a clean stop): a follower takes over at its next look."""
        if self.epoch is None:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(LeaseRow)
                .where(
                    LeaseRow.name == self.name,
                    LeaseRow.holder == self.holder,
                    LeaseRow.epoch == self.epoch,
                )
                .values(expires_at=0.0)
            )
        self.epoch = None

    def _renew(self, conn: Connection, now: float) -> bool:
        result = conn.execute(
            update(LeaseRow)
            .where(
                LeaseRow.name == self.name,
                LeaseRow.holder == self.holder,
                LeaseRow.epoch == self.epoch,
            )
            .values(expires_at=now + self.ttl)
        )
        if result.rowcount != 1:
            return False
        self._renewed_at = now
        return True


def current(session: Session, name: str = NAME) -> LeaseInfo | None:
    """The lease as stored (None before any process ever led)."""
    row = session.get(LeaseRow, name, populate_existing=True)
    if row is None or row.epoch == 0:
        return None
    return LeaseInfo(
        holder=row.holder,
        epoch=row.epoch,
        expires_at=row.expires_at,
        acquired_at=row.acquired_at,
    )


def _ensure_row(conn: Connection, name: str) -> None:
    if conn.execute(select(LeaseRow.name).where(LeaseRow.name == name)).first() is not None:
        return
    insert = _dialect_insert(conn)
    conn.execute(
        insert(LeaseRow)
        .values(name=name, holder="", epoch=0, expires_at=0.0, acquired_at=0.0)
        .on_conflict_do_nothing(index_elements=["name"])
    )


def _dialect_insert(conn: Connection) -> Callable[..., Any]:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
