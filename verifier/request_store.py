"""The request pool in SQLite (stdlib ``sqlite3``, WAL): one small database file that
every process of the verifier shares, so a request made through one worker is found,
answered once and shown once through any other.

Each operation is one transaction. ``create`` counts and inserts under ``BEGIN
IMMEDIATE`` (no two processes can both take the last place), ``answer`` is an
``UPDATE … WHERE result IS NULL`` (a replayed answer is refused even when it reaches
another process), ``take_result`` a ``DELETE … RETURNING``. A request counts only while
``expires_at > now``; expired ones are turned into tombstones (their id, for a 410)
by the next write, and tombstones count against nothing.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, NoReturn

from .requests import (
    ANSWERED,
    EXPIRED,
    ID,
    UNKNOWN,
    Limits,
    PendingRequest,
    RequestError,
    address_key,
    busy,
    too_many,
)

MEMORY: Final = ":memory:"
FILE_NAME: Final = "requests.db"
#: The window of the per-address creation rate, in seconds.
_RATE_WINDOW: Final = 60.0
#: How long a write waits for another process's transaction before giving up (ms).
_BUSY_TIMEOUT_MS: Final = 5000
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    nonce TEXT NOT NULL,
    client_id TEXT NOT NULL,
    claims TEXT NOT NULL,
    expires_at REAL NOT NULL,
    result TEXT,
    presentation TEXT,
    state TEXT,
    oid4vp TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS requests_by_state ON requests (state);
CREATE INDEX IF NOT EXISTS requests_by_address ON requests (address, expires_at);
CREATE INDEX IF NOT EXISTS requests_by_expiry ON requests (expires_at);
CREATE TABLE IF NOT EXISTS tombstones (id TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS creations (address TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS creations_by_address ON creations (address, at);
"""
_COLUMNS: Final = "id, nonce, client_id, claims, expires_at, result, presentation, oid4vp"
_log = logging.getLogger("shomei.verifier")


class SqliteStore:
    """The :class:`~verifier.requests.Store` in the SQLite file ``path`` (created 0600,
    its folder 0700, on first use), or in memory for this process only with
    ``path=":memory:"``. Thread-safe; after a fork the child opens its own connection."""

    def __init__(self, *, path: str | os.PathLike[str], limits: Limits | None = None) -> None:
        self.path = str(path)
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0

    # ------------------------------------------------------------------ the operations

    def create(
        self,
        *,
        client_id: str,
        claims: tuple[str, ...],
        address: str,
        now: float,
        oid4vp: dict[str, Any] | None = None,
    ) -> PendingRequest:
        key, lim = address_key(address), self.limits
        with self._write() as db:
            self._purge(db, now)
            mine, my_first = db.execute(
                "SELECT count(*), min(expires_at) FROM requests WHERE address = ?", (key,)
            ).fetchone()
            if mine >= lim.per_address:
                raise too_many(my_first - now)
            recent, first_at = db.execute(
                "SELECT count(*), min(at) FROM creations WHERE address = ?", (key,)
            ).fetchone()
            if recent >= lim.per_address_per_minute:
                raise too_many(first_at + _RATE_WINDOW - now)
            total, first = db.execute("SELECT count(*), min(expires_at) FROM requests").fetchone()
            if total >= lim.max_pending:
                raise busy(first - now)
            rid = secrets.token_urlsafe(16)
            req = PendingRequest(
                id=rid,
                # The OpenID4VP request's own nonce (the key-binding JWT signs it).
                nonce=oid4vp["nonce"] if oid4vp else secrets.token_urlsafe(16),
                client_id=client_id,
                claims=claims,
                expires_at=now + lim.ttl,
                oid4vp=oid4vp,
            )
            db.execute(
                "INSERT INTO requests"
                " (id, address, nonce, client_id, claims, expires_at, state, oid4vp)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rid,
                    key,
                    req.nonce,
                    client_id,
                    json.dumps(list(claims)),
                    req.expires_at,
                    oid4vp["state"] if oid4vp else None,
                    json.dumps(oid4vp) if oid4vp else None,
                ),
            )
            db.execute("INSERT INTO creations (address, at) VALUES (?, ?)", (key, now))
        return req

    def get(self, rid: str, *, now: float) -> PendingRequest:
        if not ID.fullmatch(rid):
            raise UNKNOWN
        with self._read() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM requests WHERE id = ?", (rid,)).fetchone()
            if row is not None and row[4] > now:
                return _request(row)
            self._raise_gone(db, rid, row, now)

    def get_by_state(self, state: str, *, now: float) -> PendingRequest:
        if not ID.fullmatch(state):
            raise UNKNOWN
        with self._read() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM requests WHERE state = ?", (state,)
            ).fetchone()
            if row is not None and row[4] > now:
                return _request(row)
            if row is None:
                raise UNKNOWN  # expired ones leave a tombstone under their id only
            self._raise_gone(db, row[0], row, now)

    def answer(self, rid: str, result: dict[str, Any], presentation: str, *, now: float) -> None:
        if not ID.fullmatch(rid):
            raise UNKNOWN
        keep_until = now + self.limits.result_ttl
        with self._write() as db:
            done = db.execute(
                "UPDATE requests SET result = ?, presentation = ?,"
                " expires_at = max(expires_at, ?)"
                " WHERE id = ? AND result IS NULL AND expires_at > ?",
                (json.dumps(result, ensure_ascii=False), presentation, keep_until, rid, now),
            ).rowcount
            if done == 1:
                return
            row = db.execute(f"SELECT {_COLUMNS} FROM requests WHERE id = ?", (rid,)).fetchone()
            if row is not None and row[4] > now:
                raise ANSWERED
            self._raise_gone(db, rid, row, now)

    def take_result(self, rid: str, *, now: float) -> PendingRequest:
        if not ID.fullmatch(rid):
            raise UNKNOWN
        with self._write() as db:
            row = db.execute(
                f"DELETE FROM requests WHERE id = ? AND result IS NOT NULL AND expires_at > ?"
                f" RETURNING {_COLUMNS}",
                (rid, now),
            ).fetchone()
            if row is not None:
                return _request(row)
            row = db.execute(f"SELECT {_COLUMNS} FROM requests WHERE id = ?", (rid,)).fetchone()
            if row is not None and row[4] > now:
                raise UNKNOWN  # not answered yet
            self._raise_gone(db, rid, row, now)

    def purge(self, *, now: float) -> None:
        with self._write() as db:
            self._purge(db, now)

    # ------------------------------------------------------------------ the database

    def _purge(self, db: sqlite3.Connection, now: float) -> None:
        db.execute(
            "INSERT OR REPLACE INTO tombstones (id, until)"
            " SELECT id, expires_at + ? FROM requests WHERE expires_at <= ?",
            (self.limits.grace, now),
        )
        db.execute("DELETE FROM requests WHERE expires_at <= ?", (now,))
        db.execute("DELETE FROM tombstones WHERE until <= ?", (now,))
        db.execute("DELETE FROM creations WHERE at <= ?", (now - _RATE_WINDOW,))

    def _raise_gone(
        self, db: sqlite3.Connection, rid: str, row: tuple[Any, ...] | None, now: float
    ) -> NoReturn:
        """Raise 410 for a request expired within its grace (a row not purged yet, or
        a tombstone), else 404."""
        if row is not None and row[4] + self.limits.grace > now:
            raise EXPIRED
        if row is None:
            found = db.execute(
                "SELECT 1 FROM tombstones WHERE id = ? AND until > ?", (rid, now)
            ).fetchone()
            if found is not None:
                raise EXPIRED
        raise UNKNOWN

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _unavailable_as_busy():
            yield self._connection()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _unavailable_as_busy():
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except RequestError:
                db.execute("COMMIT")  # a refusal keeps the purge that came before it
                raise
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        if self._db is None or self._pid != os.getpid():
            # A connection is never carried across fork (gunicorn's workers).
            self._db, self._pid = self._open(), os.getpid()
        return self._db

    def _open(self) -> sqlite3.Connection:
        if self.path != MEMORY:
            path = Path(self.path)
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        if self.path != MEMORY:
            # WAL: pollers read while a request is made; -wal/-shm take the file's mode.
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
        columns = {r[1] for r in db.execute("PRAGMA table_info(requests)")}
        if columns and "oid4vp" not in columns:
            # A pool from before OpenID4VP: its requests live minutes, start afresh.
            db.execute("DROP TABLE requests")
        db.executescript(_SCHEMA)
        return db


@contextmanager
def _unavailable_as_busy() -> Iterator[None]:
    """A database that stays locked (or cannot be written) is a 503, not a crash."""
    try:
        yield
    except sqlite3.OperationalError as e:
        _log.warning("request pool unavailable: %s", e)
        raise busy(1.0) from None


def _request(row: tuple[Any, ...]) -> PendingRequest:
    rid, nonce, client_id, claims, expires_at, result, presentation, oid4vp = row
    return PendingRequest(
        id=rid,
        nonce=nonce,
        client_id=client_id,
        claims=tuple(json.loads(claims)),
        expires_at=float(expires_at),
        result=json.loads(result) if result is not None else None,
        presentation=presentation,
        oid4vp=json.loads(oid4vp) if oid4vp is not None else None,
    )
