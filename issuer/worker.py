"""The anchoring worker beside the issuer's web server: a thread that drives the batcher.

``shomei issuer serve`` (and ``shomei demo``) run one in a child process beside
gunicorn (:func:`run_until_stopped`; never in the web workers), so a city's one-person
IT team starts one command, not two. It closes a batch every
``ANCHOR_INTERVAL_SECONDS`` (or at 1,024 leaves), anchors it with the city's account
(``issuer.chain_access``), and puts the audit log's head into every batch. The batcher
keeps its whole state in the database, so stopping the process at any moment loses
nothing: the next start resumes where it stopped.

Any number of processes may serve one database with their workers on: exactly one of
them leads (the anchoring lease, :mod:`anchor.lease`), the others follow, look every
``ANCHOR_FOLLOWER_POLL_SECONDS`` and take over within ``ANCHOR_LEASE_SECONDS`` when the
leader dies. A clean stop hands the lease over at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anchor.batcher import BUSY, Batcher, BatchPolicy
from anchor.lease import DEFAULT_TTL, Lease
from credentials.errors import ShomeiError
from issuer.audit import service as audit
from issuer.keys import chain_access

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger("shomei.anchoring")

DEFAULT_INTERVAL = 10.0  # seconds: a batch closes at most this long after its first leaf
FOLLOWER_POLL = 0.5  # seconds between a follower's looks at the lease (one cheap UPDATE)


class AnchorWorker:
    """Steps a :class:`~anchor.batcher.Batcher` in a daemon thread until stopped."""

    def __init__(
        self, batcher: Batcher, *, poll: float = 0.25, follower_poll: float = FOLLOWER_POLL
    ) -> None:
        self.batcher = batcher
        self.poll = poll
        self.follower_poll = follower_poll
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shomei-anchor", daemon=True)

    def start(self) -> AnchorWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop stepping and hand the lease over (a follower takes over at once)."""
        self._stop.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            try:
                self.batcher.release()
            except Exception:  # the database may be gone at shutdown: the lease expires
                log.warning("anchoring: could not release the lease at stop")

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                outcome = self.batcher.step()
                failures = 0
            except ShomeiError as e:  # the chain or the database said no: try again later
                failures += 1
                self._note(e.en)
                outcome = "error"
            except Exception as e:  # never let the thread die; the batcher's state is safe
                failures += 1
                self._note(f"{type(e).__name__}")
                log.exception("anchoring step failed")
                outcome = "error"
            if outcome == "retry":  # the batcher backs off by itself; say why, once
                flight = self.batcher.status()["in_flight"] or {}
                self._note(str(flight.get("last_error") or "retrying"))
            elif outcome == "anchored":
                self.last_error = None
            if outcome in BUSY:
                continue  # more to do right away (poll a receipt, send the next batch)
            if outcome == "follower":
                self._stop.wait(self.follower_poll)
                continue
            self._stop.wait(min(self.poll * 2**failures, 30.0))

    def _note(self, message: str) -> None:
        if message != self.last_error:
            log.warning("anchoring: %s", message)
        self.last_error = message


def build(
    config: Mapping[str, Any], engine: Engine, *, interval: float | None = None
) -> AnchorWorker:
    """A worker for the app configured by ``config`` (not started). Raises
    ``anchor.config.ConfigError`` when the chain or the city's account is not set up."""
    account = chain_access.anchor_account(config)
    chain = chain_access.chain_for(config, account)
    cfg = chain_access.chain_config(config) if config.get("CHAIN_FACTORY") is None else None
    policy = BatchPolicy(
        max_age=float(interval or config.get("ANCHOR_INTERVAL_SECONDS") or DEFAULT_INTERVAL),
        confirmations=cfg.confirmations if cfg is not None else 0,
        finalized=cfg.finalized if cfg is not None else False,
    )
    batcher = Batcher(
        engine=engine,
        chain=chain,
        issuer_address=account.address,
        policy=policy,
        clock=time.time,
        extra_leaves=audit.anchor_head,
        lease=Lease(engine, ttl=float(config.get("ANCHOR_LEASE_SECONDS", DEFAULT_TTL))),
    )
    return AnchorWorker(
        batcher,
        poll=float(config.get("ANCHOR_POLL_SECONDS", 0.25)),
        follower_poll=float(config.get("ANCHOR_FOLLOWER_POLL_SECONDS", FOLLOWER_POLL)),
    )


def run_until_stopped(worker: AnchorWorker, *, grace: float = 5.0) -> int:
    """Run ``worker`` in this process until SIGTERM or SIGINT, then stop it (the lease
    handed over, within ``grace`` seconds); return the exit status, 0."""
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stopping.set())
    worker.start()
    while not stopping.wait(1.0):
        pass
    worker.stop(timeout=grace)
    return 0
