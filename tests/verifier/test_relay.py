"""Link-mode fetches: an allow list of full origins and one path shape, no redirects,
timeouts and size caps, and one message for every failure (nothing tells what listens)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from credentials import qr
from credentials.errors import InvalidCredential
from verifier.relay import DEFAULT_PATH, Relay, make_fetcher, parse_relays

PRESENTATION = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln~"
Handler = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def server(handle: Handler) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 answering GETs with ``handle``: (origin, paths asked)."""
    asked: list[str] = []

    class Relay(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", asked
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def answer(status: int, body: bytes = b"", **headers: str) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Length", headers.pop("length", str(len(body))))
        for name, value in headers.items():
            h.send_header(name.replace("_", "-"), value)
        h.end_headers()
        h.wfile.write(body)

    return handle


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- the list


def test_entries_are_origins_with_a_default_path_and_bare_hosts_mean_default_ports() -> None:
    assert parse_relays(["https://Relay.Example", " http://127.0.0.1:5200 ", ""]) == {
        Relay("https", "relay.example", 443, DEFAULT_PATH),
        Relay("http", "127.0.0.1", 5200, DEFAULT_PATH),
    }
    assert parse_relays(["https://relay.example:8443/shomei/r/"]) == {
        Relay("https", "relay.example", 8443, "/shomei/r")
    }
    assert parse_relays(["relay.example"]) == {
        Relay("https", "relay.example", 443, DEFAULT_PATH),
        Relay("http", "relay.example", 80, DEFAULT_PATH),
    }
    assert parse_relays(["http://[::1]:5200"]) == {Relay("http", "[::1]", 5200, DEFAULT_PATH)}


@pytest.mark.parametrize(
    "entry",
    [
        "relay.example:5200",
        "ftp://relay.example",
        "https://user@relay.example",
        "https://relay.example/?q=1",
        "https://relay.example/#x",
        "https://relay.example:99999",
        "https://",
        "relay example",
    ],
)
def test_bad_entries_are_refused_at_start(entry: str) -> None:
    with pytest.raises(ValueError, match="link relay"):
        make_fetcher([entry])


def test_the_app_refuses_a_bad_entry_with_a_message(monkeypatch) -> None:
    from credentials.errors import ShomeiError
    from credentials.trust import TrustList
    from verifier.app import create_app
    from verifier.policy import Verifier

    config = {"VERIFIER": Verifier(trust=TrustList({})), "LINK_RELAYS": ["relay.example:5200"]}
    with pytest.raises(ShomeiError, match="bad SHOMEI_LINK_RELAYS: link relay"):
        create_app(config)
    monkeypatch.setenv("SHOMEI_VERIFIER_MAX_PIXELS", "many")
    with pytest.raises(ShomeiError, match="bad configuration: SHOMEI_VERIFIER_MAX_PIXELS"):
        create_app({"VERIFIER": Verifier(trust=TrustList({}))})


# --------------------------------------------------------------------------- SSRF


def test_another_port_or_path_of_an_allowed_host_is_never_contacted() -> None:
    with server(answer(200, b"x" * 64)) as (origin, asked):
        port = origin.rsplit(":", 1)[1]
        for allowed in (["127.0.0.1"], [f"http://127.0.0.1:{closed_port()}"]):
            fetch = make_fetcher(allowed)
            assert fetch is not None
            with pytest.raises(InvalidCredential, match="relay not allowed"):
                fetch(qr.LinkRef.new(f"http://127.0.0.1:{port}/relay"))
        fetch = make_fetcher([origin])
        assert fetch is not None
        for base in (
            f"{origin}/admin",
            f"{origin}",
            f"{origin}/relay/x",
            f"https://127.0.0.1:{port}",
        ):
            with pytest.raises(InvalidCredential, match="relay not allowed"):
                fetch(qr.LinkRef.new(base))
        assert asked == []


def test_the_blob_is_fetched_at_the_relay_path_only() -> None:
    blobs: dict[str, bytes] = {}

    def handle(h: BaseHTTPRequestHandler) -> None:
        answer(200, blobs[h.path])(h) if h.path in blobs else answer(404)(h)

    with server(handle) as (origin, asked):
        ref = qr.LinkRef.new(f"{origin}/relay")
        path = "/relay/" + ref.to_url().partition("#")[0].rsplit("/", 1)[1]
        blobs[path] = qr.seal(PRESENTATION, ref)
        fetch = make_fetcher([origin])
        assert fetch is not None
        assert fetch(ref).presentation == PRESENTATION
        assert asked == [path]


def _slow(h: BaseHTTPRequestHandler) -> None:
    time.sleep(1.0)
    answer(200, b"x" * 64)(h)


@pytest.mark.parametrize(
    "handle",
    [
        answer(404),
        answer(500, b"internal"),
        answer(302, Location="http://127.0.0.1:1/relay/x"),
        answer(200, b"not a sealed blob at all, but long enough"),
        answer(200, b"x" * 2048),
        answer(200, b"x" * 64, length=str(10**9)),
        _slow,
        None,  # nothing listens
    ],
    ids=["404", "500", "redirect", "bad-blob", "oversized", "declared-oversized", "slow", "closed"],
)
def test_every_failure_reads_the_same(handle: Handler | None) -> None:
    expected = (
        "中継サーバーから提示データを取得できません（期限切れ、取得済み、または読み取れません） / "
        "cannot fetch the presentation from the relay (expired, already fetched, or unreadable)"
    )
    if handle is None:
        origin = f"http://127.0.0.1:{closed_port()}"
        fetch = make_fetcher([origin], timeout=0.3, max_blob=1024)
        assert fetch is not None
        with pytest.raises(InvalidCredential) as caught:
            fetch(qr.LinkRef.new(f"{origin}/relay"))
        assert str(caught.value) == expected
        return
    with server(handle) as (origin, _):
        fetch = make_fetcher([origin], timeout=0.3, max_blob=1024)
        assert fetch is not None
        started = time.monotonic()
        with pytest.raises(InvalidCredential) as caught:
            fetch(qr.LinkRef.new(f"{origin}/relay"))
        assert str(caught.value) == expected
        assert time.monotonic() - started < 0.9
