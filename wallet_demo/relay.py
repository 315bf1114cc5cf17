"""The wallet's relay for link-mode QR codes: ``PUT`` and ``GET /relay/<id>``.

The wallet seals the presentation in the browser (AES-128-GCM, the key only in the QR
code's URL fragment), so the relay keeps ciphertext only. A blob is handed out once and
then deleted; unclaimed blobs expire after ``RELAY_TTL_SECONDS``. Kept in memory: a
restart loses them, which only means the resident shows the QR code again.

Anyone can ``PUT``, so the store is on a budget, checked before a blob is kept: at most
``RELAY_MAX_BLOB`` bytes a blob, ``RELAY_PER_CLIENT`` blobs waiting per client address
(429 beyond), ``RELAY_MAX_BLOBS`` blobs and ``RELAY_MAX_BYTES`` bytes in all (503
beyond), each answer with ``Retry-After``; the ids used are remembered (so a replayed
``PUT`` is refused) up to ``MAX_USED`` of them, the oldest forgotten first: a blob is
sealed to its id and its key, so a forgotten id put again opens for nobody.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Blueprint, current_app, jsonify, request
from flask.wrappers import Response

from credentials.errors import CodedError
from edges.errors import json_error

bp = Blueprint("relay", __name__)

MAX_BLOB = 64 * 1024
DEFAULT_TTL = 600
MAX_BLOBS = 1000
MAX_BYTES = 16 * 1024 * 1024
PER_CLIENT = 16
MAX_USED = 100_000
_ID = re.compile(r"[A-Z2-7]{26}")


class RelayFull(Exception):
    """Too many blobs or bytes are waiting; ``retry_after`` seconds until one expires."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class ClientQuota(RelayFull):
    """This client has as many blobs waiting as it may."""


class IdTaken(Exception):
    """This blob id was used before (it is never reused, even after the blob is gone)."""


@dataclass
class BlobStore:
    """Blobs by id with an expiry, on a budget per client and in all; thread-safe;
    ``clock`` is a parameter for tests."""

    ttl: float = DEFAULT_TTL
    max_blobs: int = MAX_BLOBS
    max_bytes: int = MAX_BYTES
    per_client: int = PER_CLIENT
    max_used: int = MAX_USED
    clock: Callable[[], float] = time.monotonic
    _blobs: dict[str, tuple[float, bytes, str]] = field(default_factory=dict)
    _used: OrderedDict[str, float] = field(default_factory=OrderedDict)
    _clients: Counter[str] = field(default_factory=Counter)
    _bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _drop(self, key: str) -> bytes:
        _, blob, client = self._blobs.pop(key)
        self._bytes -= len(blob)
        self._clients[client] -= 1
        if self._clients[client] <= 0:
            del self._clients[client]
        return blob

    def _expire(self, now: float) -> None:
        for key in [k for k, (until, _, _) in self._blobs.items() if until <= now]:
            self._drop(key)
        # Used ids are remembered a while longer than a blob lives, so a replayed PUT
        # within that time is refused; ids are random, so older ones never come back.
        while self._used and next(iter(self._used.values())) <= now:
            self._used.popitem(last=False)

    def _retry_after(self, now: float, client: str | None = None) -> int:
        ends = [until for until, _, c in self._blobs.values() if client in (None, c)]
        return max(1, math.ceil(min(ends, default=now + 1) - now))

    def put(self, blob_id: str, blob: bytes, *, client: str = "") -> None:
        """Store a blob from ``client`` (its address). Raises :class:`IdTaken`,
        :class:`ClientQuota` or :class:`RelayFull`."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            if blob_id in self._used:
                raise IdTaken(blob_id)
            if self._clients[client] >= self.per_client:
                raise ClientQuota(self._retry_after(now, client))
            if len(self._blobs) >= self.max_blobs or self._bytes + len(blob) > self.max_bytes:
                raise RelayFull(self._retry_after(now))
            self._blobs[blob_id] = (now + self.ttl, blob, client)
            self._bytes += len(blob)
            self._clients[client] += 1
            self._used[blob_id] = now + 2 * self.ttl
            while len(self._used) > self.max_used:
                self._used.popitem(last=False)

    def take(self, blob_id: str) -> bytes | None:
        """The blob, removed; None when unknown, already fetched or expired."""
        with self._lock:
            self._expire(self.clock())
            return self._drop(blob_id) if blob_id in self._blobs else None


def store() -> BlobStore:
    found: BlobStore | None = current_app.extensions.get("shomei_relay")
    if found is None:
        config = current_app.config
        found = BlobStore(
            ttl=float(config.get("RELAY_TTL_SECONDS", DEFAULT_TTL)),
            max_blobs=int(config.get("RELAY_MAX_BLOBS", MAX_BLOBS)),
            max_bytes=int(config.get("RELAY_MAX_BYTES", MAX_BYTES)),
            per_client=int(config.get("RELAY_PER_CLIENT", PER_CLIENT)),
            clock=config.get("RELAY_CLOCK", time.monotonic),
        )
        current_app.extensions["shomei_relay"] = found
    return found


def defaults() -> dict[str, float]:
    """The relay's limits, with ``SHOMEI_WALLET_RELAY_…`` overrides from the environment
    (``RELAY_TTL_SECONDS``, ``RELAY_MAX_BLOB``, ``RELAY_MAX_BLOBS``, ``RELAY_MAX_BYTES``,
    ``RELAY_PER_CLIENT``)."""
    values = {
        "RELAY_TTL_SECONDS": float(DEFAULT_TTL),
        "RELAY_MAX_BLOB": MAX_BLOB,
        "RELAY_MAX_BLOBS": MAX_BLOBS,
        "RELAY_MAX_BYTES": MAX_BYTES,
        "RELAY_PER_CLIENT": PER_CLIENT,
    }
    for name, default in values.items():
        raw = os.environ.get(f"SHOMEI_WALLET_{name}", "").strip()
        if raw:
            values[name] = type(default)(raw)
    return values


def _error(code: str, ja: str, en: str, status: int, *, retry_after: int | None = None) -> Response:
    response = json_error(CodedError(code, ja, en, status=status))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Access-Control-Allow-Origin"] = "*"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _too_large(limit: int) -> Response:
    return _error(
        "too_large",
        f"データが大きすぎます（{limit}バイトまで）",
        f"at most {limit} bytes",
        413,
    )


@bp.put("/relay/<blob_id>")
def put(blob_id: str) -> Response:
    if not _ID.fullmatch(blob_id):
        return _error("bad_id", "IDの形式が不正です", "the id is 26 base32 characters", 400)
    limit = int(current_app.config.get("RELAY_MAX_BLOB", MAX_BLOB))
    if (request.content_length or 0) > limit:
        return _too_large(limit)
    blob = request.stream.read(limit + 1)
    if len(blob) > limit:
        return _too_large(limit)
    if len(blob) < 28:  # nonce and tag at least
        return _error("bad_blob", "暗号化されたデータではありません", "not a sealed blob", 400)
    try:
        store().put(blob_id, blob, client=request.remote_addr or "")
    except IdTaken:
        return _error("id_taken", "このIDは使用済みです", "this id was already used", 409)
    except ClientQuota as e:
        return _error(
            "rate_limited",
            "この端末からの保存が多すぎます。しばらく待ってからやり直してください",
            "too many blobs waiting from this address; try again shortly",
            429,
            retry_after=e.retry_after,
        )
    except RelayFull as e:
        return _error(
            "busy",
            "中継サーバーが混み合っています。しばらく待ってからやり直してください",
            "the relay is full; try again shortly",
            503,
            retry_after=e.retry_after,
        )
    response = jsonify({"ok": True, "expires_in": int(store().ttl)})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/relay/<blob_id>")
def get(blob_id: str) -> Response:
    blob = store().take(blob_id) if _ID.fullmatch(blob_id) else None
    if blob is None:
        return _error(
            "not_found",
            "見つかりません（取得済みか、期限切れです）",
            "no such blob (fetched already, or expired)",
            404,
        )
    response = Response(blob, mimetype="application/octet-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
