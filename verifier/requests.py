"""Cross-device presentation requests: the pool.

A request is made once and answered once, over OpenID4VP 1.0 (its parameters in
:attr:`PendingRequest.oid4vp`, see :mod:`verifier.oid4vp`): the wallet signs a
key-binding JWT over the request's ``nonce`` with ``aud`` = its full client identifier
and posts the presentation to its ``response_uri``; the verifier checks it with the
same nonce and audience, so the holder check proves the presentation was made for this
request just now. Requests live for ``TTL`` seconds in a :class:`Store` shared by the server's
processes (:mod:`verifier.request_store`); only the verification result is kept, for
the company's screen, until the request expires. Time is a parameter (``now``) throughout.

Anyone may create a request, so the pool is bounded per client address (IPv6 by its
/64) as well as in total: see :class:`Limits`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Final, Protocol

from credentials.errors import CodedError

TTL: Final = 300.0
#: An answered request keeps its result at least this long for the screen to show it.
RESULT_TTL: Final = 120.0
#: Expired requests are remembered this much longer (their id only), to answer 410
#: rather than 404; these tombstones count against no limit.
GRACE: Final = 600.0
#: Requests pending at once, all addresses together.
MAX_PENDING: Final = 10_000
#: Requests pending at once from one client address (an IPv6 /64).
PER_ADDRESS: Final = 20
#: Requests one client address may create per minute.
PER_ADDRESS_PER_MINUTE: Final = 30
_CLAIM: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
ID: Final = re.compile(r"[A-Za-z0-9_-]{22}")


class RequestError(CodedError):
    """A request the verifier cannot accept: ``code`` and ``status`` go to the client;
    ``retry_after`` (seconds) when waiting helps (429, 503)."""

    retry_after: int | None = None


UNKNOWN = RequestError("not_found", "依頼が見つかりません", "no such request", status=404)
EXPIRED = RequestError(
    "expired", "依頼の有効期限が切れました", "the request has expired", status=410
)
ANSWERED = RequestError(
    "already_answered",
    "この依頼にはすでに回答があります",
    "this request was already answered (a replayed response?)",
)


def busy(retry_after: float) -> RequestError:
    """503: the pool is full (every address together)."""
    err = RequestError(
        "busy",
        "混み合っています。しばらく待ってからやり直してください",
        "too many pending requests; try again shortly",
        status=503,
    )
    err.retry_after = _seconds(retry_after)
    return err


def too_many(retry_after: float) -> RequestError:
    """429: this address has too many requests pending or made too many just now."""
    err = RequestError(
        "rate_limited",
        "この接続元からの依頼が多すぎます。しばらく待ってからやり直してください",
        "too many requests from this address; try again shortly",
        status=429,
    )
    err.retry_after = _seconds(retry_after)
    return err


def _seconds(delay: float) -> int:
    return max(1, int(-(-delay // 1)))


@dataclass(frozen=True, kw_only=True)
class Limits:
    """How long requests live and how many there may be. Raises :class:`ValueError`
    for a limit that is not positive."""

    ttl: float = TTL
    result_ttl: float = RESULT_TTL
    grace: float = GRACE
    max_pending: int = MAX_PENDING
    per_address: int = PER_ADDRESS
    per_address_per_minute: int = PER_ADDRESS_PER_MINUTE

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, not {value!r}")


@dataclass(frozen=True, kw_only=True)
class PendingRequest:
    """One request: what the QR code says, and the result once the wallet answered."""

    id: str
    nonce: str
    client_id: str
    claims: tuple[str, ...]
    expires_at: float
    result: dict[str, Any] | None = None
    presentation: str | None = None
    #: The OpenID4VP parameters (:class:`verifier.oid4vp.Params` as JSON), if any.
    oid4vp: dict[str, Any] | None = None

    def state(self) -> str:
        """``answered`` or ``pending`` (an expired request is no longer found)."""
        return "answered" if self.result is not None else "pending"


class Store(Protocol):
    """The pool of requests. Every method is atomic, also across processes sharing the
    store; a request stops counting against :class:`Limits` the moment it expires."""

    def create(
        self,
        *,
        client_id: str,
        claims: tuple[str, ...],
        address: str,
        now: float,
        oid4vp: dict[str, Any] | None = None,
    ) -> PendingRequest:
        """A new request with a random id and nonce, made by client ``address``; with
        ``oid4vp`` (parameters with ``state`` and ``nonce``) also found by its state.
        Raises :class:`RequestError`: 429 when the address is over its quota, 503 when
        the pool is full (both with ``retry_after``)."""
        ...

    def get(self, rid: str, *, now: float) -> PendingRequest:
        """The live request. Raises :class:`RequestError`: 404 unknown, 410 expired."""
        ...

    def get_by_state(self, state: str, *, now: float) -> PendingRequest:
        """The live request whose OpenID4VP ``state`` this is. Raises
        :class:`RequestError`: 404 unknown, 410 expired."""
        ...

    def answer(self, rid: str, result: dict[str, Any], presentation: str, *, now: float) -> None:
        """Keep the result of the first answer only. Raises :class:`RequestError`:
        404 unknown, 410 expired, 400 already answered (a replay)."""
        ...

    def take_result(self, rid: str, *, now: float) -> PendingRequest:
        """The answered request, removed (its result is shown once). Raises
        :class:`RequestError`: 404 unknown or not answered yet, 410 expired."""
        ...

    def purge(self, *, now: float) -> None:
        """Drop expired requests (leaving their tombstones) and tombstones past grace."""
        ...


def claim_for_answer(store: Store, rid: str, *, now: float) -> PendingRequest:
    """The request, if it may still be answered. Raises :class:`RequestError`:
    404 unknown, 410 expired, 400 already answered."""
    req = store.get(rid, now=now)
    if req.result is not None:
        raise ANSWERED
    return req


def address_key(address: str | None) -> str:
    """The key client ``address`` is counted under: an IPv4 address itself, an IPv6
    address by its /64 (one subscriber's usual share), anything else as given."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return (address or "unknown")[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


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
