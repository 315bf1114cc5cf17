"""Link-mode QR codes: fetch the sealed presentation from an allowed relay.

Only relays on the configured host list are contacted (``LINK_RELAYS``), so a QR code
cannot make the verifier fetch arbitrary URLs. The relay sees the blob id, never the key.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable
from urllib.parse import urlsplit

from credentials import qr
from credentials.errors import InvalidCredential

from .inputs import LinkFetcher

#: A sealed presentation is at most the container limit plus nonce and tag.
MAX_BLOB = 256 * 1024
TIMEOUT = 5.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A relay answers with the blob itself; a redirect could lead off the allow list."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def make_fetcher(hosts: Iterable[str], *, timeout: float = TIMEOUT) -> LinkFetcher | None:
    """Return a fetcher for link-mode references whose relay host is in ``hosts``
    (``None`` when the list is empty: link mode not configured). The fetcher raises
    :class:`InvalidCredential` for another host, a failed fetch or a bad blob."""
    allowed = frozenset(h.strip().lower() for h in hosts if h.strip())
    if not allowed:
        return None
    opener = urllib.request.build_opener(_NoRedirects)

    def fetch(ref: qr.LinkRef) -> qr.EmbeddedPayload:
        host = (urlsplit(ref.base_url).hostname or "").lower()
        if host not in allowed:
            raise InvalidCredential(
                f"許可されていない中継サーバーです（{host}）", f"relay not allowed ({host})"
            )
        url = ref.to_url().partition("#")[0]  # the key stays here
        try:
            with opener.open(url, timeout=timeout) as response:
                blob = response.read(MAX_BLOB + 1)
        except (urllib.error.URLError, OSError, ValueError):
            raise InvalidCredential(
                "中継サーバーから提示データを取得できません",
                "cannot fetch the presentation from the relay",
            ) from None
        if len(blob) > MAX_BLOB:
            raise InvalidCredential("リンク先のデータが大きすぎます", "linked data too large")
        return qr.open_sealed(blob, ref)

    return fetch
