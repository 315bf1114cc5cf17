"""The wallet's relay for link-mode QR codes: ``PUT`` and ``GET /relay/<id>``.

The wallet seals the presentation in the browser (AES-128-GCM, the key only in the QR
code's URL fragment), so the relay keeps ciphertext only. A blob is handed out once and
then deleted; unclaimed blobs expire after ``RELAY_TTL_SECONDS``. Kept in memory: a
restart loses them, which only means the resident shows the QR code again.
"""

from __future__ import annotations

import re
import threading
import time
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
_ID = re.compile(r"[A-Z2-7]{26}")


class RelayFull(Exception):
    """Too many blobs are waiting."""


class IdTaken(Exception):
    """This blob id was used before (it is never reused, even after the blob is gone)."""


@dataclass
class BlobStore:
    """Blobs by id with an expiry; thread-safe; ``clock`` is a parameter for tests."""

    ttl: float = DEFAULT_TTL
    max_blobs: int = MAX_BLOBS
    clock: Callable[[], float] = time.monotonic
    _blobs: dict[str, tuple[float, bytes]] = field(default_factory=dict)
    _used: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _expire(self, now: float) -> None:
        for key in [k for k, (until, _) in self._blobs.items() if until <= now]:
            del self._blobs[key]
        # Used ids are remembered a while longer than a blob lives, so a replayed PUT
        # within that time is refused; ids are random, so older ones never come back.
        for key in [k for k, until in self._used.items() if until <= now]:
            del self._used[key]

    def put(self, blob_id: str, blob: bytes) -> None:
        """Store a blob. Raises :class:`IdTaken` or :class:`RelayFull`."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            if blob_id in self._used:
                raise IdTaken(blob_id)
            if len(self._blobs) >= self.max_blobs:
                raise RelayFull
            self._blobs[blob_id] = (now + self.ttl, blob)
            self._used[blob_id] = now + 2 * self.ttl

    def take(self, blob_id: str) -> bytes | None:
        """The blob, removed; None when unknown, already fetched or expired."""
        with self._lock:
            self._expire(self.clock())
            found = self._blobs.pop(blob_id, None)
        return found[1] if found else None


def store() -> BlobStore:
    found: BlobStore | None = current_app.extensions.get("shomei_relay")
    if found is None:
        found = BlobStore(
            ttl=float(current_app.config.get("RELAY_TTL_SECONDS", DEFAULT_TTL)),
            clock=current_app.config.get("RELAY_CLOCK", time.monotonic),
        )
        current_app.extensions["shomei_relay"] = found
    return found


def _error(code: str, ja: str, en: str, status: int) -> Response:
    response = json_error(CodedError(code, ja, en, status=status))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _too_large() -> Response:
    return _error("too_large", f"{MAX_BLOB} バイトまでです", f"at most {MAX_BLOB} bytes", 413)


@bp.put("/relay/<blob_id>")
def put(blob_id: str) -> Response:
    if not _ID.fullmatch(blob_id):
        return _error("bad_id", "ID は base32 の26文字です", "the id is 26 base32 characters", 400)
    if (request.content_length or 0) > MAX_BLOB:
        return _too_large()
    blob = request.get_data(cache=False)
    if len(blob) > MAX_BLOB:
        return _too_large()
    if len(blob) < 28:  # nonce and tag at least
        return _error("bad_blob", "封をしたデータではありません", "not a sealed blob", 400)
    try:
        store().put(blob_id, blob)
    except IdTaken:
        return _error("id_taken", "この ID はすでに使われました", "this id was already used", 409)
    except RelayFull:
        return _error(
            "busy",
            "中継が満杯です。しばらくしてからやり直してください",
            "the relay is full; try again shortly",
            503,
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
            "データがありません（取得済みか期限切れです）",
            "no such blob (fetched already, or expired)",
            404,
        )
    response = Response(blob, mimetype="application/octet-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
