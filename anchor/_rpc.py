"""The JSON-RPC backend: any Ethereum node over HTTP, with several URLs and fallback.

:class:`FallbackProvider` sends each request to the endpoint that last answered and
moves to the next one on a connection error, a timeout, HTTP 429 or 5xx, a response that
is not JSON-RPC, or a rate-limit error; when every endpoint failed it raises
:class:`ChainUnavailable`. Before first use each endpoint must prove it serves the
configured chain id: a mistyped URL pointing at another network is skipped, never
believed. URLs may embed API keys, so messages and logs show only scheme, host and port.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from web3 import Web3
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from ._web3chain import Node, Web3Chain
from .accounts import ChainAccount
from .chain import ChainUnavailable

log = logging.getLogger(__name__)

#: (connect, read) seconds: a dead endpoint must not stall a verifier for long.
DEFAULT_TIMEOUT = (2.0, 5.0)
# JSON-RPC error codes that mean "this endpoint, not your request": limit exceeded
# (EIP-1474), and the HTTP-like codes some providers put in the body.
_RETRY_CODES = {-32005, 429, 503}
_EXECUTION_REVERTED = 3


class _EndpointFailed(Exception):
    """This endpoint cannot answer now; try the next one."""


def redact(url: str) -> str:
    """``scheme://host:port`` of ``url``: paths and queries often carry API keys."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


class FallbackProvider(JSONBaseProvider):
    """A web3 provider over several HTTP JSON-RPC endpoints of one chain."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        chain_id: int,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__()
        if not urls:
            raise ValueError("at least one RPC URL is needed")
        self.urls = list(urls)
        self.chain_id = chain_id
        self.timeout = timeout
        self._current = 0
        self._verified = [False] * len(self.urls)
        self._session = requests.Session()
        self._lock = threading.Lock()

    def __str__(self) -> str:
        return f"RPC fallback over {', '.join(redact(u) for u in self.urls)}"

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._session.close()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        """The first good response, trying each endpoint once from the last good one.

        Raises ChainUnavailable when none answered."""
        body = self.encode_rpc_request(method, params)
        failures: list[str] = []
        start = self._current
        for step in range(len(self.urls)):
            i = (start + step) % len(self.urls)
            try:
                if not self._verified[i]:
                    self._verify(i)
                response = self._post(i, body)
            except _EndpointFailed as e:
                failures.append(f"{redact(self.urls[i])}: {e}")
                log.warning("RPC endpoint %s failed (%s)", redact(self.urls[i]), e)
                continue
            with self._lock:
                self._current = i
            return response
        raise ChainUnavailable(
            "ブロックチェーンのどのRPCエンドポイントにも接続できません",
            f"no RPC endpoint answered {method}: " + "; ".join(failures),
        )

    def _verify(self, i: int) -> None:
        response = self._post(i, self.encode_rpc_request(RPCEndpoint("eth_chainId"), []))
        try:
            served = int(cast(str, response["result"]), 16)
        except (KeyError, TypeError, ValueError):
            raise _EndpointFailed("no chain id") from None
        if served != self.chain_id:
            log.error(
                "RPC endpoint %s serves chain %s, not %s: ignored",
                redact(self.urls[i]),
                served,
                self.chain_id,
            )
            raise _EndpointFailed(f"serves chain {served}, not {self.chain_id}")
        self._verified[i] = True

    def _post(self, i: int, body: bytes) -> RPCResponse:
        try:
            http = self._session.post(
                self.urls[i],
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except requests.Timeout:
            raise _EndpointFailed("timeout") from None
        except requests.RequestException as e:
            raise _EndpointFailed(type(e).__name__) from None
        try:
            response = self.decode_rpc_response(http.content)
        except ValueError:
            status = http.status_code
            raise _EndpointFailed(f"HTTP {status}" if status >= 400 else "not JSON-RPC") from None
        if not _is_json_rpc(response):
            # JSON but no JSON-RPC response (a proxy's {"message": ...}, an error that is
            # a string): web3 would raise BadResponseFormat, which no caller expects.
            status = http.status_code
            raise _EndpointFailed(f"HTTP {status}" if status >= 400 else "not a JSON-RPC response")
        error = response.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        if http.status_code >= 400 and code != _EXECUTION_REVERTED:
            # 429 and 5xx: overloaded or down; other 4xx: a bad key or path. A revert
            # is the same answer everywhere, whatever the status code.
            raise _EndpointFailed(f"HTTP {http.status_code}")
        if code in _RETRY_CODES:
            raise _EndpointFailed(f"rate limited ({code})")
        return response


def _is_json_rpc(response: object) -> bool:
    """Whether ``response`` is a JSON-RPC 2.0 response as web3 accepts one: version
    "2.0", an integer id (null only beside an error), and either a result or an error
    object with an integer code and a string message."""
    if not isinstance(response, dict) or response.get("jsonrpc") != "2.0":
        return False
    has_error = "error" in response
    if ("result" in response) == has_error or "id" not in response:
        return False
    response_id = response["id"]
    if isinstance(response_id, str):
        try:
            int(response_id)
        except ValueError:
            return False
    elif not (type(response_id) is int or (response_id is None and has_error)):
        return False
    error = response.get("error")
    return not has_error or (
        isinstance(error, dict)
        and type(error.get("code")) is int
        and isinstance(error.get("message"), str)
    )


class RpcNode(Node):
    """An Ethereum network over JSON-RPC with fallback between ``urls``."""

    def __init__(
        self,
        urls: Sequence[str],
        chain_id: int,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.provider = FallbackProvider(urls, chain_id=chain_id, timeout=timeout)
        super().__init__(Web3(self.provider), chain_id)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.provider.close()

    def set_automine(self, enabled: bool) -> None:
        """anvil and hardhat only (``evm_setAutomine``)."""
        with self.translating():
            self.w3.manager.request_blocking(RPCEndpoint("evm_setAutomine"), [enabled])

    def mine(self, blocks: int = 1) -> None:
        """Development nodes only (``evm_mine``: anvil, hardhat, ganache)."""
        with self.translating():
            for _ in range(blocks):
                self.w3.manager.request_blocking(RPCEndpoint("evm_mine"), [])


class RpcChain(Web3Chain):
    """The Chain of a registry on a JSON-RPC network, with fallback between ``urls``."""

    node: RpcNode

    def __init__(
        self,
        urls: Sequence[str],
        chain_id: int,
        registry_address: str,
        account: ChainAccount | None = None,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(
            RpcNode(urls, chain_id, timeout=timeout),
            registry_address=registry_address,
            account=account,
        )
