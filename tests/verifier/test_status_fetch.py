"""The HTTP status fetcher against a real HTTP server on 127.0.0.1, and the status
check end to end through the verification checklist."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from credentials import doctypes, sdjwt
from credentials.errors import InvalidCredential, VerificationError
from credentials.keys import SigningKey
from credentials.status_list import INVALID, MEDIA_TYPE, SUSPENDED, StatusList, issue_token
from credentials.trust import TrustList
from verifier.policy import Verifier
from verifier.status import HttpStatusFetcher, StatusUnavailable

ISS = "https://city.iizuka.example"
T0 = 1_760_000_000
PATH = "/statuslists/1"


@dataclass
class Route:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    send_length: bool = True
    delay: float = 0.0


class Server:
    """A status provider: serves whatever :attr:`routes` holds and counts requests."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.accept: list[str | None] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str = PATH) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] += 1
                server.accept.append(self.headers.get("Accept"))
                route = server.routes.get(self.path, Route(b"not found", status=404))
                time.sleep(route.delay)
                self.send_response(route.status)
                self.send_header("Content-Type", MEDIA_TYPE)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.send_length:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                try:
                    self.wfile.write(route.body)
                except OSError:
                    pass  # the client gave up first (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def trust(key: SigningKey) -> TrustList:
    return TrustList.from_json(
        TrustList.document(ISS, name="飯塚市", municipality_code="402052", jwks=[key.jwk])
    )


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def publish(
    server: Server,
    key: SigningKey,
    lst: StatusList,
    *,
    path: str = PATH,
    iat: int = T0,
    ttl: int = 60,
    exp: int | None = None,
    issuer: str = ISS,
) -> None:
    token = issue_token(
        lst,
        key=key,
        issuer=issuer,
        uri=server.url(path),
        iat=iat,
        exp=exp if exp is not None else iat + 3600,
        ttl=ttl,
    )
    server.routes[path] = Route(token.encode())


def sample_list() -> StatusList:
    lst = StatusList(bits=2, size=1024)
    lst.set(10, INVALID)
    lst.set(11, SUSPENDED)
    return lst


def ref(uri: str, idx: int) -> dict[str, Any]:
    return {"status_list": {"idx": idx, "uri": uri}}


def test_valid_revoked_and_suspended(server: Server, key: SigningKey, trust: TrustList) -> None:
    publish(server, key, sample_list())
    fetch = HttpStatusFetcher(trust.resolve_key, clock=Clock())
    assert [fetch(ref(server.url(), i)) for i in (9, 10, 11)] == [0, 1, 2]
    assert fetch(ref(server.url(), 11), issuer=ISS) == 2
    assert server.accept[0] == "application/statuslist+jwt"


def test_cache_honours_the_token_ttl(server: Server, key: SigningKey, trust: TrustList) -> None:
    publish(server, key, sample_list(), ttl=60)
    clock = Clock()
    fetch = HttpStatusFetcher(trust.resolve_key, ttl=300, clock=clock)
    assert fetch(ref(server.url(), 5)) == 0
    revoked = sample_list()
    revoked.set(5, INVALID)
    publish(server, key, revoked, iat=T0 + 30)
    clock.now = T0 + 59
    assert fetch(ref(server.url(), 5)) == 0  # still the cached list
    assert server.hits[PATH] == 1
    clock.now = T0 + 60
    assert fetch(ref(server.url(), 5)) == INVALID
    assert server.hits[PATH] == 2


def test_cache_time_is_capped_by_configuration_and_exp(
    server: Server, key: SigningKey, trust: TrustList
) -> None:
    clock = Clock()
    publish(server, key, sample_list(), ttl=86400)
    capped = HttpStatusFetcher(trust.resolve_key, ttl=120, clock=clock)
    capped(ref(server.url(), 1))
    clock.now = T0 + 119
    capped(ref(server.url(), 1))
    assert server.hits[PATH] == 1
    clock.now = T0 + 120
    capped(ref(server.url(), 1))
    assert server.hits[PATH] == 2

    clock.now = T0
    publish(server, key, sample_list(), ttl=3600, exp=T0 + 90)
    short = HttpStatusFetcher(trust.resolve_key, ttl=3600, clock=clock)
    short(ref(server.url(), 1))
    clock.now = T0 + 90  # the token's exp comes before its ttl runs out
    publish(server, key, sample_list(), iat=T0 + 90)
    short(ref(server.url(), 1))
    assert server.hits[PATH] == 4


def test_server_down_raises(trust: TrustList) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fetch = HttpStatusFetcher(trust.resolve_key, clock=Clock())
    with pytest.raises(StatusUnavailable, match="接続できません"):
        fetch(ref(f"http://127.0.0.1:{port}{PATH}", 1))


def test_http_error_raises(server: Server, trust: TrustList) -> None:
    fetch = HttpStatusFetcher(trust.resolve_key, clock=Clock())
    with pytest.raises(StatusUnavailable, match="HTTP 404"):
        fetch(ref(server.url("/missing"), 1))


def test_slow_server_times_out(server: Server, key: SigningKey, trust: TrustList) -> None:
    publish(server, key, sample_list())
    server.routes[PATH].delay = 1.0
    fetch = HttpStatusFetcher(trust.resolve_key, timeout=0.2, clock=Clock())
    started = time.perf_counter()
    with pytest.raises(StatusUnavailable):
        fetch(ref(server.url(), 1))
    assert time.perf_counter() - started < 0.9


@pytest.mark.parametrize("send_length", [True, False], ids=["declared", "undeclared"])
def test_oversized_response_is_refused(server: Server, trust: TrustList, send_length: bool) -> None:
    server.routes[PATH] = Route(b"e" * 5000, send_length=send_length)
    fetch = HttpStatusFetcher(trust.resolve_key, max_response=4096, clock=Clock())
    with pytest.raises(StatusUnavailable, match="4096"):
        fetch(ref(server.url(), 1))


def test_response_that_is_not_a_token(server: Server, trust: TrustList) -> None:
    server.routes[PATH] = Route("失効".encode())
    fetch = HttpStatusFetcher(trust.resolve_key, clock=Clock())
    with pytest.raises(StatusUnavailable, match="not a token"):
        fetch(ref(server.url(), 1))
    server.routes[PATH] = Route(b"<html>maintenance</html>")
    with pytest.raises(InvalidCredential, match="compact JWS"):
        fetch(ref(server.url(), 1))


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/statuslists/1",
        "data:,eyJ",
        "gopher://127.0.0.1/1",
        "http:///statuslists/1",
        "statuslists/1",
    ],
)
def test_non_http_urls_are_refused(server: Server, trust: TrustList, uri: str) -> None:
    fetch = HttpStatusFetcher(trust.resolve_key, clock=Clock())
    with pytest.raises(VerificationError, match=r"not an http\(s\) URL"):
        fetch(ref(uri, 1))
    assert not server.hits


def test_redirects_only_to_http(server: Server, key: SigningKey, trust: TrustList) -> None:
    publish(server, key, sample_list())
    server.routes["/moved"] = Route(b"", status=302, headers={"Location": server.url()})
    server.routes["/to-ftp"] = Route(
        b"", status=302, headers={"Location": "ftp://127.0.0.1/statuslists/1"}
    )
    fetch = HttpStatusFetcher(trust.resolve_key, clock=Clock())
    # The token names the list's own uri: a redirect cannot pass one list off as another.
    with pytest.raises(VerificationError, match="sub"):
        fetch(ref(server.url("/moved"), 10))
    with pytest.raises(StatusUnavailable, match="HTTP 302"):
        fetch(ref(server.url("/to-ftp"), 10))


def test_untrusted_signer_and_wrong_issuer(
    server: Server, key: SigningKey, trust: TrustList
) -> None:
    fetch = HttpStatusFetcher(trust.resolve_key, clock=Clock())
    publish(server, SigningKey.generate(), sample_list())
    with pytest.raises(VerificationError, match="登録されていません"):
        fetch(ref(server.url(), 10))
    publish(server, key, sample_list(), issuer="https://other-city.example")
    with pytest.raises(VerificationError, match="not trusted"):
        fetch(ref(server.url(), 10))
    publish(server, key, sample_list())
    with pytest.raises(VerificationError, match="not the credential's issuer"):
        fetch(ref(server.url(), 10), issuer="https://other-city.example")
    # Failures are not cached: the next call fetches again and gets the good list.
    assert fetch(ref(server.url(), 10)) == INVALID
    assert server.hits[PATH] == 4


def test_index_beyond_the_list(server: Server, key: SigningKey, trust: TrustList) -> None:
    publish(server, key, sample_list())
    fetch = HttpStatusFetcher(trust.resolve_key, clock=Clock())
    with pytest.raises(VerificationError, match="beyond the status list"):
        fetch(ref(server.url(), 1024))
    with pytest.raises(InvalidCredential, match="idx"):
        fetch(ref(server.url(), -1))


def test_expired_list_is_not_used(server: Server, key: SigningKey, trust: TrustList) -> None:
    publish(server, key, sample_list(), iat=T0 - 7200, exp=T0 - 3600)
    fetch = HttpStatusFetcher(trust.resolve_key, clock=Clock())
    with pytest.raises(VerificationError, match="expired"):
        fetch(ref(server.url(), 10))


# --------------------------------------------------------------------------- end to end


def test_revocation_end_to_end(server: Server, key: SigningKey, trust: TrustList) -> None:
    idx = 613
    dt = doctypes.get("juminhyo")
    credential = sdjwt.issue(
        doctypes.sample("juminhyo"),
        key=key,
        issuer=ISS,
        vct=dt.vct_for(ISS),
        iat=T0 - 100,
        exp=T0 + 86400,
        always_plain=dt.never_disclosable,
        status={"status_list": {"idx": idx, "uri": server.url()}},
    ).sd_jwt
    lst = StatusList(bits=2, size=1024)
    publish(server, key, lst, ttl=300)
    clock = Clock()
    verifier = Verifier(
        trust=trust, status_fetcher=HttpStatusFetcher(trust.resolve_key, clock=clock)
    )

    first = verifier.verify(credential, now=clock.now).check("status")
    assert (first.status, first.ja) == ("pass", "取り消されていません")

    lst.set(idx, INVALID)
    publish(server, key, lst, iat=T0 + 10, ttl=300)
    clock.now = T0 + 100  # the cached list is still fresh
    assert verifier.verify(credential, now=clock.now).check("status").status == "pass"

    clock.now = T0 + 300
    result = verifier.verify(credential, now=clock.now)
    status = result.check("status")
    assert status.status == "fail"
    assert "取り消し済み" in status.message
    assert result.verdict == "invalid"
    assert server.hits[PATH] == 2


def test_unreachable_list_is_a_warning_not_a_pass(key: SigningKey, trust: TrustList) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dt = doctypes.get("juminhyo")
    credential = sdjwt.issue(
        doctypes.sample("juminhyo"),
        key=key,
        issuer=ISS,
        vct=dt.vct_for(ISS),
        iat=T0 - 100,
        exp=T0 + 86400,
        always_plain=dt.never_disclosable,
        status={"status_list": {"idx": 1, "uri": f"http://127.0.0.1:{port}{PATH}"}},
    ).sd_jwt
    verifier = Verifier(
        trust=trust, status_fetcher=HttpStatusFetcher(trust.resolve_key, clock=Clock())
    )
    status = verifier.verify(credential, now=T0).check("status")
    assert status.status == "warn"
    assert "確認できませんでした" in status.ja
