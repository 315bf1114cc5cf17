"""Operator services for anchoring: the queue in the data directory's database, runs of
the batcher for ``shomei anchor``, and the receipts (anchor evidence) it stores. No click:
errors are :class:`~anchor.config.ConfigError` and friends, results are data or lines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import merkle
from .config import (
    ChainConfig,
    ConfigError,
    database_url,
)
from .operations import jst, tx_line

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .accounts import ChainAccount
    from .batcher import Batcher
    from .queue import AnchorEvidence


@contextmanager
def database(directory: Path) -> Iterator[Engine]:
    """The anchoring database (schema created if missing); database errors become
    ConfigError."""
    from sqlalchemy.exc import SQLAlchemyError

    from .store import create_schema, make_engine

    try:
        engine = make_engine(database_url(directory))
        try:
            create_schema(engine)
            yield engine
        finally:
            engine.dispose()
    except SQLAlchemyError as e:
        raise ConfigError(
            "データベースを使えません", f"database error: {type(e).__name__}: {e.args[0]}"
        ) from None


def queue_credential(directory: Path, jwt: str, *, queue: bool | None, now: float) -> bool:
    """Queue an issued credential's leaf for anchoring when anchoring is configured
    (``chain.json`` or ``SHOMEI_RPC_URLS``) or ``queue`` is True. Returns whether it was
    queued. Raises ConfigError when it cannot be: the credential must not go out then."""
    if queue is False or (queue is None and ChainConfig.load(directory) is None):
        return False
    from sqlalchemy.orm import Session

    from .queue import enqueue

    with database(directory) as engine, Session(engine) as session:
        enqueue(session, merkle.leaf_hash(jwt), now=now)
        session.commit()
    return True


@dataclass(frozen=True)
class AnchorRun:
    anchored: list[dict[str, Any]]  # the batches anchored by this run
    status: dict[str, Any]  # Batcher.status() afterwards
    leader: dict[str, Any] | None = None  # another process that leads (we followed it)


def _batcher(engine: Engine, cfg: ChainConfig, chain: Any, address: str) -> Batcher:
    from .batcher import Batcher, BatchPolicy

    return Batcher(
        engine=engine,
        chain=chain,
        issuer_address=address,
        policy=BatchPolicy(confirmations=cfg.confirmations, finalized=cfg.finalized),
    )


def _active_issuer(chain: Any, account: ChainAccount) -> None:
    issuer = chain.issuer_of(account.address)
    if issuer is None or not issuer.active:
        raise ConfigError(
            f"{account.address} は有効な発行者として登録されていません",
            f"{account.address} is not an active registered issuer "
            "(shomei registry register-issuer)",
        )


def run_anchor(
    directory: Path, cfg: ChainConfig, account: ChainAccount, *, wait: bool, timeout: float
) -> AnchorRun:
    """Close a batch now and drive the batcher: one pass, or until idle (``wait``).
    When another process leads (an issuer's worker), follow it instead: report, or
    with ``wait`` watch until it has anchored everything. Raises ConfigError when the
    account is not an active issuer, ChainUnavailable when the node does not answer."""
    chain = cfg.chain(account)
    try:
        _active_issuer(chain, account)
        with database(directory) as engine:
            before = _anchored_batches(engine)
            batcher = _batcher(engine, cfg, chain, account.address)
            leader = None
            if batcher.lease.acquire(time.time()):
                try:
                    batcher.flush()
                    _drive(batcher, wait=wait, timeout=timeout)
                finally:
                    batcher.release()
            else:
                info = batcher.leader()
                leader = info.to_json() if info else None
                if wait:
                    _watch(batcher, timeout=timeout)
            anchored = [b for i, b in _anchored_batches(engine).items() if i not in before]
            return AnchorRun(anchored=anchored, status=batcher.status(), leader=leader)
    finally:
        chain.close()


def _watch(batcher: Batcher, *, timeout: float) -> None:
    """Follow the leader until nothing is pending (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while batcher.pending_count() and time.monotonic() < deadline:
        time.sleep(0.2)


def _drive(batcher: Batcher, *, wait: bool, timeout: float) -> None:
    from credentials.errors import AnchorError

    from .batcher import BUSY

    if wait:
        try:
            batcher.run_until_idle(timeout=timeout)
        except AnchorError:
            pass  # still pending: reported from the status
        return
    # One pass: keep going while each step completes at once (send, then the poll
    # that finds it mined on an automining node), stop at anything that must wait.
    for _ in range(8):
        if batcher.step() not in BUSY:
            return


def anchor_status(directory: Path, *, now: float) -> dict[str, Any]:
    """The anchoring as an operator sees it (no chain needed): the leader and its
    epoch, the queue depth, the oldest unanchored leaf's age, the batch in flight and
    every batch needing attention."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from .lease import current
    from .queue import batch_summary, pending_count
    from .repair import attention
    from .store import ABANDONED, ANCHORED, IN_FLIGHT, Batch, Leaf

    with database(directory) as engine, Session(engine) as s:
        lease = current(s)
        oldest = s.scalar(select(func.min(Leaf.queued_at)).where(Leaf.receipt.is_(None)))
        flight = s.scalars(
            select(Batch).where(Batch.state.in_(IN_FLIGHT)).order_by(Batch.id).limit(1)
        ).first()
        counts = {
            state: n
            for state, n in s.execute(select(Batch.state, func.count()).group_by(Batch.state))
        }
        return {
            "leader": None
            if lease is None
            else {**lease.to_json(), "alive": lease.expires_at > now},
            "pending": pending_count(engine),
            "oldest_pending_age": None if oldest is None else max(0.0, now - oldest),
            "in_flight": None if flight is None else batch_summary(flight),
            "anchored_batches": counts.get(ANCHORED, 0),
            "abandoned_batches": counts.get(ABANDONED, 0),
            "attention": attention(s),
        }


def describe_status(st: dict[str, Any], *, now: float) -> list[str]:
    """The lines of ``shomei anchor status``."""
    lead = st["leader"]
    if lead is None:
        lines = ["リーダー / leader: なし / none yet"]
    else:
        left = lead["expires_at"] - now
        state = f"有効 / alive, {left:.1f} s left" if lead["alive"] else "期限切れ / expired"
        lines = [f"リーダー / leader: {lead['holder']} (epoch {lead['epoch']}, {state})"]
    age = st["oldest_pending_age"]
    lines.append(
        f"記録待ち / pending: {st['pending']} 件"
        + (f", oldest {age:.1f} s ago" if age is not None else "")
    )
    flight = st["in_flight"]
    if flight:
        lines.append(
            f"送信中 / in flight: batch {flight['batch']} ({flight['state']}, "
            f"{flight['size']} leaves, nonce {flight['nonce']}, epoch {flight['epoch']})"
        )
        if flight["last_error"]:
            lines.append(f"  最後のエラー / last error: {flight['last_error']}")
    lines.append(
        f"記録済み / anchored: {st['anchored_batches']} batches"
        + (f", abandoned {st['abandoned_batches']}" if st["abandoned_batches"] else "")
    )
    if not st["attention"]:
        lines.append("要対応 / needs attention: なし / none")
    for a in st["attention"]:
        lines.append(f"要対応 / needs attention: batch {a['batch']} ({a['state']}): {a['why']}")
    return lines


def run_repair(directory: Path, cfg: ChainConfig, account: ChainAccount) -> list[str]:
    """Check every batch against its leaves and the chain and repair what is wrong
    (:func:`anchor.repair.repair`); returns what changed. Raises ConfigError while
    another process leads (it repairs as it goes; stop it for a full repair)."""
    from .repair import repair

    chain = cfg.chain(account)
    try:
        with database(directory) as engine:
            batcher = _batcher(engine, cfg, chain, account.address)
            if not batcher.lease.acquire(time.time()):
                info = batcher.leader()
                holder = info.holder if info else "?"
                raise ConfigError(
                    f"記録のリーダー {holder} が動作中です。停止してから実行してください",
                    f"the anchoring leader {holder} is running (it repairs recent batches "
                    "itself); stop it to run a full repair",
                )
            try:
                return repair(batcher, time.time())
            finally:
                batcher.release()
    finally:
        chain.close()


def _anchored_batches(engine: Engine) -> dict[int, dict[str, Any]]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from .store import ANCHORED, Batch

    with Session(engine) as s:
        rows = s.scalars(select(Batch).where(Batch.state == ANCHORED).order_by(Batch.id))
        return {
            b.id: {
                "batch": b.id,
                "size": b.size,
                "block": b.block,
                "time": b.block_time,
                "tx": b.tx_hash,
            }
            for b in rows
        }


def describe_run(cfg: ChainConfig, run: AnchorRun) -> list[str]:
    """The lines of ``shomei anchor``: each batch anchored, then what is pending."""
    lines = [
        f"記録しました / anchored: batch {b['batch']} ({b['size']} 件), "
        f"{jst(b['time'])}, {tx_line(cfg, b['tx'], b['block'])}"
        for b in run.anchored
    ]
    if run.leader is not None:
        lines.append(
            f"記録は動作中のリーダーが担当しています / another process leads the anchoring: "
            f"{run.leader['holder']} (epoch {run.leader['epoch']})"
        )
    st = run.status
    if not st["pending"]:
        return [*lines, "すべて記録済み / nothing pending"]
    line = f"記録待ち / pending: {st['pending']} 件, pending since {jst(st['pending_since'])}"
    err = (st["in_flight"] or {}).get("last_error")
    return [*lines, line + (f"\n  最後のエラー / last error: {err}" if err else "")]


# ================================================================== receipts
def credential_leaf(path: str) -> bytes:
    """The leaf of the credential in file ``path`` (its issuer-signed JWT)."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{path} を読めません", f"cannot read {path}") from None
    jwt = text.split("~", 1)[0]
    if jwt.count(".") != 2 or "~" not in text:
        raise ConfigError(f"{path} はSD-JWTではありません", f"{path} is not an SD-JWT")
    return merkle.leaf_hash(jwt)


def lookup(directory: Path, leaf: bytes) -> tuple[AnchorEvidence | None, float | None]:
    """(evidence, None) once anchored; (None, queued_at) while pending; (None, None)
    when the leaf was never queued here."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from .queue import find_evidence
    from .store import Leaf

    with database(directory) as engine, Session(engine) as s:
        found = find_evidence(s, leaf)
        if found is not None:
            return found, None
        return None, s.scalar(select(Leaf.queued_at).where(Leaf.leaf == leaf))


def evidence_json(cfg: ChainConfig | None, ev: AnchorEvidence) -> dict[str, Any]:
    """The anchor evidence as the JSON a verifier reads (``shomei receipt``);
    ``chain_id`` and ``registry_address`` are null without a chain configuration."""
    return {
        "receipt": ev.receipt.to_json(),
        "root": "0x" + ev.root.hex(),
        "chain_id": cfg.chain_id if cfg else None,
        "registry_address": cfg.registry_address if cfg else None,
        "block": ev.block,
        "timestamp": ev.timestamp,
        "tx": ev.tx,
    }


def pending_line(queued_at: float | None) -> str:
    """Why a credential has no evidence yet: pending since when, or never queued here."""
    since = (
        f"pending since {jst(queued_at)}" if queued_at else "この記録簿に未登録 / never queued here"
    )
    return f"まだ記録されていません / not anchored yet ({since})"
