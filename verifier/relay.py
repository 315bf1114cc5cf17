"""Link-mode QR codes: fetch the sealed presentation from an allowed relay.

Only relays on the configured list are contacted (``LINK_RELAYS``), and only at one
path shape, so a QR code cannot make the verifier fetch anything else. The list holds
full origins, each with an optional base path (the wallet relay's ``/relay`` when
none is given)::

    https://relay.example            https, port 443, blobs at /relay/<ID>
    http://127.0.0.1:5200            http, port 5200, blobs at /relay/<ID>
    https://relay.example/shomei/r   https, port 443, blobs at /shomei/r/<ID>
    relay.example                    a bare host: https on 443 and http on 80 only

A link matches an entry when its scheme, host, port and base path are all the same.
The URL fetched is built from the entry and the blob id (26 base32 characters), never
from the link's text. No redirects, a timeout, a size cap, and one message for every
failure after the allow list (refused, timeout, HTTP error, oversized, a blob that does
not open), so the answer reveals nothing about what listens where. The relay sees the
blob id, never the key.
"""

from __future__ import annotations

import base64
import http.client
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from credentials import qr
from credentials.errors import InvalidCredential, ShomeiError

from .inputs import LinkFetcher

#: A sealed presentation is at most the container limit plus nonce and tag.
MAX_BLOB = 256 * 1024
TIMEOUT = 5.0
#: The wallet relay's base path (wallet_demo/relay.py: ``/relay/<ID>``).
DEFAULT_PATH = "/relay"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\]")
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)*")
_CHUNK = 16 * 1024


@dataclass(frozen=True)
class Relay:
    """One allowed relay: where its blobs are (``<scheme>://<host>:<port><path>/<ID>``)."""

    scheme: str
    host: str  # lower case; an IPv6 address in brackets
    port: int
    path: str  # "" or "/a/b", no trailing slash

    def blob_url(self, blob_id: bytes) -> str:
        """The URL of a blob: this relay's origin and path, and the id in base32."""
        name = base64.b32encode(blob_id).decode("ascii").rstrip("=")
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}{self.path}/{name}"


def parse_relays(entries: Iterable[str]) -> frozenset[Relay]:
    """The relays of the configured entries (origins with an optional base path, or
    bare hosts, see the module's docstring). Raises ``ValueError`` for an entry that is
    neither (a bare ``host:port`` too: write the origin)."""
    found: set[Relay] = set()
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        if "://" not in entry:
            host = entry.lower()
            if not _HOST.fullmatch(host):
                raise ValueError(f"link relay {entry!r}: write an origin, e.g. https://{entry}")
            found.update(Relay(s, host, p, DEFAULT_PATH) for s, p in _DEFAULT_PORTS.items())
            continue
        relay = _relay_of(entry, default_path=DEFAULT_PATH)
        if relay is None:
            raise ValueError(
                f"link relay {entry!r} is not http(s)://host[:port][/path] "
                "(no user, query or fragment)"
            )
        found.add(relay)
    return frozenset(found)


def _relay_of(url: str, *, default_path: str | None) -> Relay | None:
    """The relay a URL names, or None for anything but ``http(s)://host[:port][/path]``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if (
        scheme not in _DEFAULT_PORTS
        or not _HOST.fullmatch(host)
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
        or "?" in url
        or "#" in url
    ):
        return None
    path = parts.path.rstrip("/")
    if not _PATH.fullmatch(path):
        return None
    if not path and default_path is not None:
        path = default_path
    return Relay(scheme, host, port if port is not None else _DEFAULT_PORTS[scheme], path)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A relay answers with the blob itself; a redirect could lead off the allow list."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _unavailable() -> InvalidCredential:
    # One message for every way a fetch can fail: nothing tells a closed port from an
    # open one, a timeout from a 404, or a missing blob from a damaged one.
    return InvalidCredential(
        "中継サーバーから提示データを取得できません（期限切れ、取得済み、または読み取れません）",
        "cannot fetch the presentation from the relay (expired, already fetched, or unreadable)",
    )


def make_fetcher(
    relays: Iterable[str], *, timeout: float = TIMEOUT, max_blob: int = MAX_BLOB
) -> LinkFetcher | None:
    """Return a fetcher for link-mode references to one of ``relays`` (``None`` when
    the list is empty: link mode not configured), with ``timeout`` and ``max_blob``.
    The fetcher raises :class:`InvalidCredential`. Raises ``ValueError`` for a bad
    entry (see :func:`parse_relays`)."""
    allowed = parse_relays(relays)
    if not allowed:
        return None
    opener = urllib.request.build_opener(_NoRedirects)

    def fetch(ref: qr.LinkRef) -> qr.EmbeddedPayload:
        relay = _relay_of(ref.base_url, default_path=None)
        if relay is None or relay not in allowed:
            shown = ref.base_url[:80]
            raise InvalidCredential(
                f"許可されていない中継サーバーです（{shown}）", f"relay not allowed ({shown})"
            )
        try:
            blob = _get(opener, relay.blob_url(ref.blob_id), timeout=timeout, max_blob=max_blob)
            return qr.open_sealed(blob, ref)
        except ShomeiError:
            raise _unavailable() from None

    return fetch


def _get(
    opener: urllib.request.OpenerDirector, url: str, *, timeout: float, max_blob: int
) -> bytes:
    """GET ``url``: a 200 whose body is at most ``max_blob`` bytes (``timeout`` for the
    connection and each read, and for the body as a whole). Raises
    :class:`InvalidCredential` for anything else."""
    deadline = time.monotonic() + timeout
    try:
        with opener.open(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if response.status != 200 or (length and length.isdigit() and int(length) > max_blob):
                raise _unavailable()
            body = bytearray()
            while chunk := response.read(min(_CHUNK, max_blob + 1 - len(body))):
                body += chunk
                if len(body) > max_blob or time.monotonic() > deadline:
                    raise _unavailable()
            return bytes(body)
    except urllib.error.HTTPError as e:  # an error status or a redirect: not followed
        e.close()
        raise _unavailable() from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        raise _unavailable() from None
