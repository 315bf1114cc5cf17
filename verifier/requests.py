"""Cross-device presentation requests (OpenID4VP-like, minimal).

The company's screen shows a request QR code: ``shomei-request:`` + base64url of the
JSON ``{"response_uri", "nonce", "client_id", "claims"}``. The resident's wallet signs
a key-binding JWT over that ``nonce`` with ``aud = client_id`` and posts the
presentation to ``response_uri``; the verifier checks it with the same nonce and
audience, so the holder check proves the presentation was made for this request just
now. Requests live in memory for ``TTL`` seconds; only the verification result is kept,
until the company's screen shows it. Time is a parameter (``now``) throughout.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Final

from credentials.encoding import b64e
from credentials.errors import CodedError

PREFIX: Final = "shomei-request:"
TTL: Final = 300.0
#: Expired requests are remembered this much longer, to answer 410 rather than 404.
GRACE: Final = 600.0
MAX_PENDING: Final = 1000
_CLAIM: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ID: Final = re.compile(r"[A-Za-z0-9_-]{22}")


class RequestError(CodedError):
    """A request the verifier cannot accept: ``code`` and ``status`` go to the client."""


UNKNOWN = RequestError("not_found", "依頼が見つかりません", "no such request", status=404)
EXPIRED = RequestError(
    "expired", "依頼の有効期限が切れました", "the request has expired", status=410
)
ANSWERED = RequestError(
    "already_answered",
    "この依頼にはすでに回答があります",
    "this request was already answered (a replayed response?)",
)


@dataclass(kw_only=True)
class PendingRequest:
    """One request: what the QR code says, and the result once the wallet answered."""

    id: str
    nonce: str
    client_id: str
    response_uri: str
    claims: tuple[str, ...]
    expires_at: float
    result: dict[str, Any] | None = None
    presentation: str | None = field(default=None, repr=False)

    def qr_text(self) -> str:
        """``shomei-request:`` + base64url (unpadded) of the request JSON."""
        doc: dict[str, Any] = {
            "response_uri": self.response_uri,
            "nonce": self.nonce,
            "client_id": self.client_id,
        }
        if self.claims:
            doc["claims"] = list(self.claims)
        raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        return PREFIX + b64e(raw)

    def state(self, now: float) -> str:
        if self.result is not None:
            return "answered"
        return "expired" if now >= self.expires_at else "pending"


def parse_claims(names: list[str]) -> tuple[str, ...]:
    """The requested claim names, in order, duplicates dropped. Raises
    :class:`RequestError` for a name that is not a plain claim name."""
    out: list[str] = []
    for name in names:
        if not _CLAIM.fullmatch(name):
            raise RequestError("bad_request", "項目名が不正です", f"bad claim name {name[:40]!r}")
        if name not in out:
            out.append(name)
    return tuple(out[:32])


@dataclass
class RequestStore:
    """Pending requests by id, thread-safe and bounded."""

    ttl: float = TTL
    max_pending: int = MAX_PENDING
    _items: dict[str, PendingRequest] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _purge(self, now: float) -> None:
        for key in [k for k, r in self._items.items() if now >= r.expires_at + GRACE]:
            del self._items[key]

    def create(self, *, client_id: str, claims: tuple[str, ...], now: float) -> PendingRequest:
        """A new request with a random id and nonce. Raises :class:`RequestError`
        (503) when too many are pending."""
        with self._lock:
            self._purge(now)
            if len(self._items) >= self.max_pending:
                raise RequestError(
                    "busy", "混み合っています", "too many pending requests", status=503
                )
            rid = secrets.token_urlsafe(16)
            req = PendingRequest(
                id=rid,
                nonce=secrets.token_urlsafe(16),
                client_id=client_id,
                response_uri=f"{client_id}/request/{rid}/response",
                claims=claims,
                expires_at=now + self.ttl,
            )
            self._items[rid] = req
            return req

    def get(self, rid: str, *, now: float) -> PendingRequest:
        """The request. Raises :class:`RequestError` (404) when unknown."""
        with self._lock:
            self._purge(now)
            found = self._items.get(rid) if _ID.fullmatch(rid) else None
        if found is None:
            raise UNKNOWN
        return found

    def claim_for_answer(self, rid: str, *, now: float) -> PendingRequest:
        """The request, if it may still be answered. Raises :class:`RequestError`:
        404 unknown, 410 expired, 400 already answered."""
        req = self.get(rid, now=now)
        if req.result is not None:
            raise ANSWERED
        if now >= req.expires_at:
            raise EXPIRED
        return req

    def answer(
        self, req: PendingRequest, result: dict[str, Any], presentation: str, *, now: float
    ) -> None:
        """Keep the result of the first answer. Raises :class:`RequestError` (400) when
        another answer got there first, 410 when the request expired meanwhile."""
        with self._lock:
            if req.result is not None or self._items.get(req.id) is not req:
                raise ANSWERED
            if now >= req.expires_at:
                raise EXPIRED
            req.result = result
            req.presentation = presentation

    def take_result(self, rid: str, *, now: float) -> PendingRequest:
        """The answered request, removed (its result is shown once). Raises
        :class:`RequestError`: 404 unknown or not answered yet, 410 expired."""
        req = self.get(rid, now=now)
        if req.result is None:
            raise EXPIRED if now >= req.expires_at else UNKNOWN
        with self._lock:
            self._items.pop(rid, None)
        return req
