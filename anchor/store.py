"""Persistent anchoring state (SQLAlchemy 2): queued leaves, batches, receipts.

A leaf is written here, in the issuer's own transaction, *before* the credential is
handed out; from then on nothing can lose it. Times are seconds since the epoch (floats)
so SQLite and PostgreSQL store them alike.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Batch states, in order. One batch at a time is "closed" or "sent"; any number may be
# "mined" and waiting to become final.
CLOSED = "closed"  # leaves assigned, root computed, no transaction signed yet
SENT = "sent"  # signed transaction stored (then broadcast), waiting for the chain
MINED = "mined"  # in a block, not final yet (K confirmations, or the finalized block);
#   the next batch may be sent meanwhile; a reorg sends it back to "sent"
ANCHORED = "anchored"  # on chain with enough confirmations; receipts stored
# Terminal states besides "anchored"; neither blocks the batches after it.
ABANDONED = "abandoned"  # can never be anchored (its leaves no longer rebuild its root
#   and no transaction of it can be mined): its leaves went back to the queue
ATTENTION = "attention"  # its root is on chain but no leaf set found rebuilds it: its
#   leaves went back to the queue; `shomei anchor status` lists it for the operator
UNMINED = (CLOSED, SENT)  # at most one batch at a time: nonces stay in order
IN_FLIGHT = (CLOSED, SENT, MINED)


class Base(DeclarativeBase):
    pass


class Leaf(Base):
    __tablename__ = "anchor_leaves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    leaf: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    queued_at: Mapped[float] = mapped_column(Float)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("anchor_batches.id"), index=True)
    leaf_index: Mapped[int | None] = mapped_column(Integer)
    receipt: Mapped[bytes | None] = mapped_column(LargeBinary)


class Batch(Base):
    __tablename__ = "anchor_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    closed_at: Mapped[float] = mapped_column(Float)
    # The transaction, stored before it is broadcast so a restart can resend it.
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary)
    max_fee_per_gas: Mapped[int | None] = mapped_column(BigInteger)
    max_priority_fee_per_gas: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[float | None] = mapped_column(Float)
    # Retries: RPC outages back off instead of spinning.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_try_at: Mapped[float] = mapped_column(Float, default=0.0)
    # The anchor, once on chain.
    block: Mapped[int | None] = mapped_column(BigInteger)
    block_time: Mapped[int | None] = mapped_column(BigInteger)
    anchored_at: Mapped[float | None] = mapped_column(Float)
    # The leader's lease epoch when it closed (then sent) the batch: fencing evidence.
    epoch: Mapped[int | None] = mapped_column(BigInteger)
    # The ordered leaves (32 bytes each) the root was built from, written in the same
    # transaction that claims them: the record a repair rebuilds the batch from.
    leaf_list: Mapped[bytes | None] = mapped_column(LargeBinary)


class LeaseRow(Base):
    """The anchoring leader's lease: one row per database (``name`` "anchor").

    A process leads while it holds the row (``holder``) and has not let it expire; every
    takeover increments ``epoch``, and every write of a leader is fenced by a
    conditional update of this row on (holder, epoch) in the same transaction."""

    __tablename__ = "anchor_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    epoch: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[float] = mapped_column(Float)
    acquired_at: Mapped[float] = mapped_column(Float)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so the issuer and the
    anchoring worker can share one file. Pooled connections are checked before use, so
    a database restart costs one failed step, not a dead worker."""
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # type: ignore[no-untyped-def]
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


#: Columns added after the first release, for databases made by ``create_schema`` then.
_ADDED_COLUMNS = {"anchor_batches": {"epoch": "BIGINT", "leaf_list": "BLOB"}}


def create_schema(engine: Engine) -> None:
    """Create the anchoring tables, or add what a database of an earlier release lacks
    (the issuer's Alembic history does the same for its databases)."""
    Base.metadata.create_all(engine)
    add_missing_columns(engine)


def add_missing_columns(engine: Engine) -> None:
    """Add the nullable columns of later releases to existing anchoring tables."""
    existing = inspect(engine)
    blob = "BYTEA" if engine.dialect.name == "postgresql" else "BLOB"
    with engine.begin() as conn:
        for table, columns in _ADDED_COLUMNS.items():
            have = {c["name"] for c in existing.get_columns(table)}
            for name, kind in columns.items():
                if name not in have:
                    kind = blob if kind == "BLOB" else kind
                    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))
