"""Operator services for anchoring: the queue in the data directory's database, runs of
the batcher for ``shomei anchor``, and the receipts (anchor evidence) it stores. No click:
errors are :class:`~anchor.config.ConfigError` and friends, results are data or lines."""

from __future__ import annotations

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
    from .batcher import AnchorEvidence, Batcher


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

    from .batcher import enqueue

    with database(directory) as engine, Session(engine) as session:
        enqueue(session, merkle.leaf_hash(jwt), now=now)
        session.commit()
    return True


@dataclass(frozen=True)
class AnchorRun:
    anchored: list[dict[str, Any]]  # the batches anchored by this run
    status: dict[str, Any]  # Batcher.status() afterwards


def run_anchor(
    directory: Path, cfg: ChainConfig, account: ChainAccount, *, wait: bool, timeout: float
) -> AnchorRun:
    """Close a batch now and drive the batcher: one pass, or until idle (``wait``).
    Raises ConfigError when the account is not an active issuer, ChainUnavailable when
    the node does not answer."""
    from .batcher import Batcher, BatchPolicy

    chain = cfg.chain(account)
    try:
        issuer = chain.issuer_of(account.address)
        if issuer is None or not issuer.active:
            raise ConfigError(
                f"{account.address} は有効な発行者として登録されていません",
                f"{account.address} is not an active registered issuer "
                "(shomei registry register-issuer)",
            )
        with database(directory) as engine:
            before = _anchored_batches(engine)
            batcher = Batcher(
                engine=engine,
                chain=chain,
                issuer_address=account.address,
                policy=BatchPolicy(confirmations=cfg.confirmations),
            )
            batcher.flush()
            _drive(batcher, wait=wait, timeout=timeout)
            anchored = [b for i, b in _anchored_batches(engine).items() if i not in before]
            return AnchorRun(anchored=anchored, status=batcher.status())
    finally:
        chain.close()


def _drive(batcher: Batcher, *, wait: bool, timeout: float) -> None:
    from credentials.errors import AnchorError

    if wait:
        try:
            batcher.run_until_idle(timeout=timeout)
        except AnchorError:
            pass  # still pending: reported from the status
        return
    # One pass: keep going while each step completes at once (send, then the poll
    # that finds it mined on an automining node), stop at anything that must wait.
    for _ in range(8):
        if batcher.step() not in ("sent", "anchored"):
            return


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

    from .batcher import AnchorEvidence
    from .store import ANCHORED, Batch, Leaf

    with database(directory) as engine, Session(engine) as s:
        row = s.execute(
            select(Leaf, Batch).outerjoin(Batch, Leaf.batch_id == Batch.id).where(Leaf.leaf == leaf)
        ).first()
        if row is None:
            return None, None
        entry, batch = row
        if batch is None or batch.state != ANCHORED or entry.receipt is None:
            return None, entry.queued_at
        assert batch.block is not None and batch.block_time is not None
        return AnchorEvidence(
            receipt=merkle.Receipt.from_bytes(entry.receipt),
            root=batch.root,
            block=batch.block,
            timestamp=batch.block_time,
            tx=batch.tx_hash,
        ), None


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
