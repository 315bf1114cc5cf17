"""The verifier's status fetcher: Status List Tokens over HTTP(S), verified and cached.

The issuer serves one list for many credentials, so fetching it reveals nothing about
which credential is being checked; the cache (one entry per list, kept for the token's
``ttl`` up to a configured maximum) keeps the issuer from even learning how often.
Any failure to obtain a verified list raises a :class:`ShomeiError`, which the policy
reports as an unknown status (``warn``), never as a pass.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

from credentials import status_list
from credentials.errors import ShomeiError, VerificationError
from credentials.status_list import KeyResolver, StatusListToken

_SCHEMES = ("http", "https")
#: A list of 2**20 two-bit entries at 50% revocation compresses to about 120 KiB.
DEFAULT_MAX_RESPONSE = 1024 * 1024
DEFAULT_MAX_ENTRIES = 256


class StatusUnavailable(ShomeiError):
    """The status list could not be fetched (network, HTTP error, oversized response)."""


def check_url(uri: str) -> None:
    """Accept only absolute ``http``/``https`` URLs with a host. Raises
    :class:`VerificationError` for anything else (``file:``, ``ftp:``, ``data:``…)."""
    parts = urlsplit(uri)
    if parts.scheme.lower() not in _SCHEMES or not parts.hostname:
        raise VerificationError(
            f"失効リストの取得先 {uri!r} は http(s) のURLではありません",
            f"status list uri {uri!r} is not an http(s) URL",
        )


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a few redirects, and only to http(s): urllib alone would go to ftp:."""

    max_redirections = 3

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme.lower() not in _SCHEMES:
            raise urllib.error.HTTPError(
                newurl, code, "redirect to a non-HTTP URL refused", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def default_opener() -> urllib.request.OpenerDirector:
    """urllib's opener with redirects restricted to http(s)."""
    return urllib.request.build_opener(_HttpOnlyRedirects)


@dataclass(frozen=True)
class _Cached:
    token: StatusListToken
    until: float


class HttpStatusFetcher:
    """A :data:`verifier.policy.StatusFetcher` that reads lists over HTTP(S).

    ``resolve_key(iss, kid)`` is the trust source's key lookup; ``ttl`` is both the
    cache time for tokens without a ``ttl`` claim and the upper bound for those with
    one; ``max_size`` bounds a decompressed list and ``max_response`` the HTTP body.
    ``clock`` and ``opener`` are parameters so tests can move time and servers.
    """

    def __init__(
        self,
        resolve_key: KeyResolver,
        *,
        ttl: float = 300,
        timeout: float = 3,
        max_size: int = status_list.DEFAULT_MAX_SIZE,
        max_response: int = DEFAULT_MAX_RESPONSE,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
        opener: urllib.request.OpenerDirector | None = None,
    ) -> None:
        if ttl <= 0 or timeout <= 0 or max_size <= 0 or max_response <= 0 or max_entries <= 0:
            raise ValueError("ttl, timeout and the size limits must be positive")
        self.resolve_key = resolve_key
        self.ttl = ttl
        self.timeout = timeout
        self.max_size = max_size
        self.max_response = max_response
        self.max_entries = max_entries
        self.clock = clock
        self.opener = opener or default_opener()
        self._cache: dict[tuple[str, str | None], _Cached] = {}
        self._lock = threading.Lock()

    def __call__(self, ref: dict[str, Any], *, issuer: str | None = None) -> int:
        """The status value (0 valid, 1 revoked, 2 suspended…) for a credential's
        ``status`` claim. ``issuer`` is the credential's ``iss``: the list must come from
        it (without it, from any issuer the trust source accepts).

        Raises :class:`InvalidCredential` for a malformed reference,
        :class:`VerificationError` for a non-http(s) uri, an index beyond the list or a
        token that does not verify, and :class:`StatusUnavailable` when the list cannot
        be fetched.
        """
        idx, uri = status_list.parse_reference(ref)
        lst = self.token(uri, issuer=issuer).status_list
        if idx >= lst.size:
            raise VerificationError(
                f"失効情報の索引 {idx} が失効リストの範囲（{lst.size} 件）を超えています",
                f"status index {idx} is beyond the status list ({lst.size} entries)",
            )
        return lst.get(idx)

    def token(self, uri: str, *, issuer: str | None = None) -> StatusListToken:
        """The verified token at ``uri``, from the cache while it is fresh.

        Raises :class:`VerificationError` or :class:`StatusUnavailable`.
        """
        check_url(uri)
        key = (uri, issuer)
        now = self.clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now < cached.until:
            return cached.token
        verified = StatusListToken.verify(
            self._fetch(uri),
            resolve_key=self.resolve_key,
            uri=uri,
            issuer=issuer,
            now=now,
            max_size=self.max_size,
        )
        self._store(key, _Cached(verified, self._until(verified, now)))
        return verified

    def _until(self, token: StatusListToken, now: float) -> float:
        """Fresh for the token's ttl, at most the configured one, never past exp."""
        until = now + min(token.ttl if token.ttl is not None else self.ttl, self.ttl)
        return until if token.exp is None else min(until, token.exp)

    def _store(self, key: tuple[str, str | None], entry: _Cached) -> None:
        with self._lock:
            if key not in self._cache and len(self._cache) >= self.max_entries:
                del self._cache[next(iter(self._cache))]  # the oldest entry
            self._cache[key] = entry

    def _fetch(self, uri: str) -> str:
        """GET the token. Raises :class:`StatusUnavailable`."""
        request = urllib.request.Request(uri, headers={"Accept": status_list.MEDIA_TYPE})
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                self._check_length(uri, response.headers.get("Content-Length"))
                body: bytes = response.read(self.max_response + 1)
        except urllib.error.HTTPError as e:
            e.close()
            raise StatusUnavailable(
                f"失効リストを取得できません（HTTP {e.code}）",
                f"cannot fetch the status list {uri} (HTTP {e.code})",
            ) from None
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise StatusUnavailable(
                "失効リストを取得できません（接続できません）",
                f"cannot fetch the status list {uri}: {e}",
            ) from None
        self._check_length(uri, str(len(body)))
        try:
            return body.decode("ascii").strip()
        except UnicodeDecodeError:
            raise StatusUnavailable(
                "失効リストの応答がトークンではありません",
                f"the response from {uri} is not a token",
            ) from None

    def _check_length(self, uri: str, length: str | None) -> None:
        if length is not None and length.isdigit() and int(length) > self.max_response:
            raise StatusUnavailable(
                f"失効リストの応答が大きすぎます（{self.max_response} バイトまで）",
                f"the response from {uri} exceeds {self.max_response} bytes",
            )
