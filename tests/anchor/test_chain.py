"""The Chain backends and the AnchorRegistry, on the in-process EVM and on anvil.

Every test taking ``net`` runs on both backends with the same expectations; the ones at
the end exercise what only JSON-RPC has (fallback between URLs) and the accounts.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from web3 import Web3

from anchor import merkle
from anchor._web3chain import Web3Chain, event_topic, registry_artifact
from anchor.accounts import ChainAccount
from anchor.backends import RpcChain, RpcNode
from anchor.chain import (
    AnchorRecord,
    ChainRejected,
    ChainUnavailable,
    KeyRecord,
    SignedTx,
)
from anchor.registry import (
    add_key,
    deactivate_issuer,
    deploy_registry,
    key_fields,
    reactivate_issuer,
    register_issuer,
    revoke_key,
    transfer_governance,
)
from credentials.errors import KeyFileError
from credentials.keys import SigningKey, jwk_thumbprint, public_jwk

GAS_GOAL = 50_000
CITY_A = "https://city-a.example.jp"
CITY_B = "https://city-b.example.jp"
EVENTS = {
    event_topic(e["name"]): e["name"] for e in registry_artifact()["abi"] if e["type"] == "event"
}


# --------------------------------------------------------------------------- helpers


def new_jwk() -> dict[str, str]:
    return public_jwk(SigningKey.generate().public_key)


def root_of(n: int) -> bytes:
    """The Merkle root of ``n`` distinct leaves (fresh for each ``n``)."""
    return merkle.build([os.urandom(32) for _ in range(n)]).root


def events(chain: Web3Chain, tx_hash: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, args) of every registry event the transaction emitted."""
    receipt = chain.node.w3.eth.get_transaction_receipt(tx_hash)
    out = []
    for log in receipt["logs"]:
        name = EVENTS[log["topics"][0].to_0x_hex()]
        decoded = getattr(chain.contract.events, name)().process_log(log)
        out.append((name, dict(decoded["args"])))
    return out


def gas_used(chain: Web3Chain, tx_hash: str) -> int:
    return int(chain.node.w3.eth.get_transaction_receipt(tx_hash)["gasUsed"])


def latest_time(chain: Web3Chain) -> int:
    return int(chain.node.w3.eth.get_block("latest")["timestamp"])


def register(gov: Web3Chain, account: ChainAccount, issuer_id: str) -> Web3Chain:
    register_issuer(
        gov, account.address, issuer_id=issuer_id, name="テスト市", municipality_code="131016"
    )
    return gov.using(account)


@pytest.fixture
def city_a(gov: Web3Chain, people) -> Web3Chain:
    """City A registered, with one key; its chain signs as city A."""
    chain = register(gov, people.city_a, CITY_A)
    add_key(chain, new_jwk())
    return chain


@pytest.fixture
def city_b(gov: Web3Chain, people) -> Web3Chain:
    chain = register(gov, people.city_b, CITY_B)
    add_key(chain, new_jwk())
    return chain


def first_key(chain: Web3Chain, issuer_id: str) -> KeyRecord:
    record = chain.issuer_by_id(issuer_id)
    assert record is not None and record.keys
    return record.keys[0]


def sign(chain: Web3Chain, root: bytes, *, nonce: int | None = None) -> SignedTx:
    assert chain.account is not None
    max_fee, tip = chain.suggest_fees()
    return chain.sign_anchor(
        root,
        nonce=chain.next_nonce(chain.account.address) if nonce is None else nonce,
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=tip,
    )


# --------------------------------------------------------------------------- deployment


def test_deploy(gov: Web3Chain, people):
    w3 = gov.node.w3
    code = w3.eth.get_code(Web3.to_checksum_address(gov.registry_address))
    assert code.to_0x_hex() == registry_artifact()["deployedBytecode"]
    assert gov.governance() == people.governance.address
    assert gov.chain_id == w3.eth.chain_id
    logs = w3.eth.get_logs(
        {"address": gov.registry_address, "fromBlock": gov.block_number(), "toBlock": "latest"}
    )
    (log,) = logs
    event = gov.contract.events.GovernanceTransferred().process_log(log)
    assert event["args"]["newGovernance"] == people.governance.address


def test_a_chain_without_a_registry_says_so(net, people):
    chain = net.chain(people.outsider.address, None)  # an account: no code there
    try:
        with pytest.raises(ChainRejected, match="no AnchorRegistry"):
            chain.issuer_by_id(CITY_A)
    finally:
        chain.close()


# --------------------------------------------------------------------------- issuers


def test_outsider_cannot_register_issuers(gov: Web3Chain, people):
    outsider = gov.using(people.outsider)
    with pytest.raises(ChainRejected, match="only the governance account") as e:
        register_issuer(
            outsider, people.outsider.address, issuer_id=CITY_A, name="x", municipality_code="1"
        )
    assert e.value.reason == "NotGovernance"
    assert gov.issuer_by_id(CITY_A) is None


def test_governance_registers_an_issuer(gov: Web3Chain, people):
    receipt = register_issuer(
        gov, people.city_a.address, issuer_id=CITY_A, name="長崎市", municipality_code="422011"
    )
    assert events(gov, receipt.tx_hash) == [
        (
            "IssuerRegistered",
            {
                "account": people.city_a.address,
                "issuerId": CITY_A,
                "name": "長崎市",
                "municipalityCode": "422011",
            },
        )
    ]
    record = gov.issuer_by_id(CITY_A)
    assert record is not None
    assert (record.address, record.name, record.municipality_code) == (
        people.city_a.address,
        "長崎市",
        "422011",
    )
    assert record.active and record.keys == ()
    with pytest.raises(ChainRejected, match="already taken") as e:
        register_issuer(
            gov, people.city_b.address, issuer_id=CITY_A, name="x", municipality_code="1"
        )
    assert e.value.reason == "IssuerIdTaken"
    with pytest.raises(ChainRejected, match="already a registered issuer"):
        register_issuer(
            gov, people.city_a.address, issuer_id=CITY_B, name="x", municipality_code="1"
        )


def test_governance_can_be_transferred(gov: Web3Chain, people):
    receipt = transfer_governance(gov, people.city_b.address)
    assert events(gov, receipt.tx_hash) == [
        (
            "GovernanceTransferred",
            {
                "previousGovernance": people.governance.address,
                "newGovernance": people.city_b.address,
            },
        )
    ]
    with pytest.raises(ChainRejected, match="only the governance account"):
        register(gov, people.city_a, CITY_A)
    register(gov.using(people.city_b), people.city_a, CITY_A)


# --------------------------------------------------------------------------- anchoring


def test_unregistered_issuer_cannot_anchor(gov: Web3Chain, people):
    outsider = gov.using(people.outsider)
    root = root_of(3)
    # sign_anchor asks the node first: refused before anything is spent...
    with pytest.raises(ChainRejected, match="not an active registered issuer") as e:
        sign(outsider, root)
    assert e.value.reason == "NotActiveIssuer"
    # ...and the contract refuses it too when the check is skipped.
    w3 = gov.node.w3
    tx = people.outsider.local.sign_transaction(
        {
            "type": 2,
            "chainId": gov.chain_id,
            "nonce": outsider.next_nonce(people.outsider.address),
            "to": gov.registry_address,
            "data": gov.contract.encode_abi("anchor", [root]),
            "value": 0,
            "gas": 100_000,
            "maxFeePerGas": 10 * 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    w3.eth.send_raw_transaction(tx.raw_transaction)
    # anvil mines it at once, but a loaded machine may answer the receipt a moment later.
    deadline = time.monotonic() + 10
    while (receipt := outsider.receipt(tx.hash.to_0x_hex())) is None:
        assert time.monotonic() < deadline, "not mined"
        time.sleep(0.05)
    assert not receipt.success
    assert outsider.read_anchor(people.outsider.address, root) is None


def test_deactivated_issuer_cannot_anchor(gov: Web3Chain, city_a: Web3Chain, people):
    receipt = deactivate_issuer(gov, people.city_a.address)
    assert events(gov, receipt.tx_hash) == [
        ("IssuerDeactivated", {"account": people.city_a.address})
    ]
    record = gov.issuer_by_id(CITY_A)
    assert record is not None and not record.active
    with pytest.raises(ChainRejected, match="not an active registered issuer"):
        city_a.anchor(root_of(2))
    with pytest.raises(ChainRejected, match="already inactive") as e:
        deactivate_issuer(gov, people.city_a.address)
    assert e.value.reason == "StatusUnchanged"
    receipt = reactivate_issuer(gov, people.city_a.address)
    assert events(gov, receipt.tx_hash) == [
        ("IssuerReactivated", {"account": people.city_a.address})
    ]
    city_a.anchor(root_of(2))


def test_anchor_and_read_it_back(gov: Web3Chain, city_a: Web3Chain, people):
    root = root_of(10)
    receipt = city_a.anchor(root)
    block = gov.node.w3.eth.get_block(receipt.block)
    # A verifier holds no account: a read-only chain is enough.
    reader = gov.using(None)
    record = reader.read_anchor(people.city_a.address.lower(), root)
    assert record == AnchorRecord(
        issuer_address=people.city_a.address,
        root=root,
        block=receipt.block,
        timestamp=block["timestamp"],
        tx=receipt.tx_hash,
    )
    assert events(gov, receipt.tx_hash) == [
        (
            "Anchored",
            {"issuer": people.city_a.address, "root": root, "timestamp": block["timestamp"]},
        )
    ]
    assert reader.read_anchor(people.city_a.address, root_of(10)) is None
    assert reader.read_anchor(people.city_b.address, root) is None
    with pytest.raises(ValueError, match="read-only"):
        reader.sign_anchor(root, nonce=0, max_fee_per_gas=1, max_priority_fee_per_gas=1)
    with pytest.raises(ValueError, match="32 bytes"):
        reader.read_anchor(people.city_a.address, root[:31])


def test_duplicate_root_is_refused(city_a: Web3Chain, city_b: Web3Chain, people):
    root = root_of(5)
    city_a.anchor(root)
    with pytest.raises(
        ChainRejected, match=r"このルートは既に記録されています.*already anchored"
    ) as e:
        city_a.anchor(root)
    assert e.value.reason == "AlreadyAnchored"
    # Roots are per issuer: another city anchoring the same bytes proves nothing for A.
    city_b.anchor(root)
    a = city_a.read_anchor(people.city_a.address, root)
    b = city_a.read_anchor(people.city_b.address, root)
    assert a is not None and b is not None and a.tx != b.tx


def test_gas_per_anchor_is_within_the_goal(
    net, city_a: Web3Chain, record_property: pytest.RecordProperty
):
    used = {n: gas_used(city_a, city_a.anchor(root_of(n)).tx_hash) for n in (1, 100, 5000)}
    record_property(f"gas_per_anchor_{net.name}", used)
    print(f"\ngas per anchor on {net.name}: {used}")
    assert all(g <= GAS_GOAL for g in used.values()), used
    # One root, whatever the batch: only calldata zero bytes can move it (by 12 gas each).
    assert max(used.values()) - min(used.values()) <= 12 * 32


# --------------------------------------------------------------------------- keys


def test_issuer_by_id_returns_the_keys(gov: Web3Chain, people):
    chain = register(gov, people.city_a, CITY_A)
    jwk = new_jwk()
    receipt = add_key(chain, jwk)
    thumbprint, x, y = key_fields(jwk)
    ((name, args),) = events(gov, receipt.tx_hash)
    assert name == "KeyAdded" and args["issuer"] == people.city_a.address
    assert (args["thumbprint"], args["x"], args["y"]) == (thumbprint, x, y)
    record = gov.using(None).issuer_by_id(CITY_A)
    assert record is not None
    (key,) = record.keys
    mined_at = gov.node.w3.eth.get_block(receipt.block)["timestamp"]
    assert (key.thumbprint, key.x, key.y) == (thumbprint, x, y)
    assert key.valid_from == key.added_at == mined_at and key.revoked_at is None
    # A verifier rebuilds the JWK from the chain alone, and its kid matches.
    rebuilt = {"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]}
    assert jwk_thumbprint(rebuilt) == jwk_thumbprint(jwk)
    assert gov.issuer_by_id("https://unknown.example") is None
    with pytest.raises(ChainRejected, match="already registered") as e:
        add_key(chain, jwk)
    assert e.value.reason == "KeyExists"


def test_issuer_cannot_backdate_its_own_key_but_governance_can(gov: Web3Chain, people):
    chain = register(gov, people.city_a, CITY_A)
    past = latest_time(gov) - 86_400
    with pytest.raises(ChainRejected, match="before the block time") as e:
        add_key(chain, new_jwk(), valid_from=past)
    assert e.value.reason == "ValidFromInPast"
    future = latest_time(gov) + 86_400
    add_key(chain, new_jwk(), valid_from=future)
    add_key(gov, new_jwk(), issuer=people.city_a.address, valid_from=past)
    record = gov.issuer_by_id(CITY_A)
    assert record is not None
    assert [k.valid_from for k in record.keys] == [future, past]


def test_an_issuer_cannot_touch_another_issuers_keys(
    gov: Web3Chain, city_a: Web3Chain, city_b: Web3Chain, people
):
    a_key = first_key(gov, CITY_A)
    # revokeKey only ever addresses the caller's own keys: B has no such key.
    with pytest.raises(ChainRejected, match="has no key") as e:
        revoke_key(city_b, a_key.thumbprint)
    assert e.value.reason == "UnknownKey"
    # The functions that name another issuer are governance's alone.
    with pytest.raises(ChainRejected, match="only the governance account"):
        revoke_key(city_b, a_key.thumbprint, issuer=people.city_a.address)
    with pytest.raises(ChainRejected, match="only the governance account"):
        add_key(city_b, new_jwk(), issuer=people.city_a.address)
    record = gov.issuer_by_id(CITY_A)
    assert record is not None and record.keys == (a_key,)


def test_governance_can_revoke_any_key(gov: Web3Chain, city_a: Web3Chain, people):
    key = first_key(gov, CITY_A)
    when = latest_time(gov) + 10
    receipt = revoke_key(gov, key.thumbprint, issuer=people.city_a.address, revoked_at=when)
    assert events(gov, receipt.tx_hash) == [
        (
            "KeyRevoked",
            {"issuer": people.city_a.address, "thumbprint": key.thumbprint, "revokedAt": when},
        )
    ]
    assert first_key(gov, CITY_A).revoked_at == when
    # A revocation moves only earlier: never restores trust in what it condemned.
    with pytest.raises(ChainRejected, match="already revoked") as e:
        revoke_key(city_a, key.thumbprint, revoked_at=when + 100)
    assert e.value.reason == "KeyAlreadyRevoked"
    revoke_key(city_a, key.thumbprint, revoked_at=when - 5_000)
    assert first_key(gov, CITY_A).revoked_at == when - 5_000


# --------------------------------------------------------------------------- transactions


def test_sign_then_broadcast_twice_is_harmless(city_a: Web3Chain, people):
    root = root_of(4)
    tx = sign(city_a, root)
    assert tx.nonce == city_a.next_nonce(people.city_a.address)
    city_a.broadcast(tx)
    city_a.broadcast(tx)  # mined already (automine): "nonce too low" for our own tx
    receipt = city_a.receipt(tx.tx_hash)
    assert receipt is not None and receipt.success
    record = city_a.read_anchor(people.city_a.address, root)
    assert record is not None and record.tx == tx.tx_hash


def test_receipt_is_none_until_mined(net, city_a: Web3Chain, people):
    root = root_of(8)
    net.node.set_automine(False)
    try:
        tx = sign(city_a, root)
        city_a.broadcast(tx)
        city_a.broadcast(tx)  # still pending: "already known"
        assert city_a.receipt(tx.tx_hash) is None
        assert city_a.read_anchor(people.city_a.address, root) is None
        net.node.mine()
    finally:
        net.node.set_automine(True)
    receipt = city_a.receipt(tx.tx_hash)
    assert receipt is not None and receipt.success
    record = city_a.read_anchor(people.city_a.address, root)
    assert record is not None and record.block == receipt.block and record.tx == tx.tx_hash


def test_a_nonce_used_by_another_transaction_is_reported(city_a: Web3Chain, people):
    nonce = city_a.next_nonce(people.city_a.address)
    first, second = sign(city_a, root_of(2), nonce=nonce), sign(city_a, root_of(3), nonce=nonce)
    city_a.broadcast(first)
    with pytest.raises(ChainRejected, match="used by another transaction") as e:
        city_a.broadcast(second)
    assert e.value.reason == "NonceUsed"
    assert city_a.receipt(second.tx_hash) is None


def test_fees_follow_the_base_fee(city_a: Web3Chain):
    max_fee, tip = city_a.suggest_fees()
    base = city_a.node.w3.eth.get_block("latest")["baseFeePerGas"]
    assert tip >= 1 and max_fee == 2 * base + tip


# --------------------------------------------------------------------------- JSON-RPC only


class _Busy(BaseHTTPRequestHandler):
    """An RPC endpoint that is always rate limited."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(429)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def busy_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_rpc_falls_back_to_the_next_url(
    anvil, dead_url: str, busy_url: str, people, caplog: pytest.LogCaptureFixture
):
    # A closed port, then an endpoint answering HTTP 429, then the real node.
    urls = [dead_url + "/v3/SECRET-API-KEY", busy_url, anvil.url]
    caplog.set_level(logging.WARNING, logger="anchor._rpc")
    node = RpcNode(urls, anvil.chain_id)
    try:
        address = deploy_registry(node, people.governance)
    finally:
        node.close()
    gov = RpcChain(urls, anvil.chain_id, address, people.governance)
    try:
        city = register(gov, people.city_a, CITY_A)
        root = root_of(3)
        assert city.anchor(root).success
        record = city.read_anchor(people.city_a.address, root)
        assert record is not None and record.tx is not None
    finally:
        gov.close()
    assert f"{dead_url} failed (ConnectionError)" in caplog.text
    assert f"{busy_url} failed (HTTP 429)" in caplog.text
    assert "SECRET" not in caplog.text


def test_rpc_all_urls_dead_is_unavailable(dead_url: str, busy_url: str, people):
    urls = [dead_url + "/key/SECRET", busy_url]
    chain = RpcChain(urls, 31337, "0x" + "11" * 20, people.city_a)
    try:
        with pytest.raises(ChainUnavailable, match="no RPC endpoint answered") as e:
            chain.read_anchor(people.city_a.address, root_of(1))
        assert "SECRET" not in str(e.value)  # URLs may carry API keys
        assert "HTTP 429" in str(e.value)
        with pytest.raises(ChainUnavailable):
            chain.suggest_fees()
    finally:
        chain.close()


def test_rpc_url_of_another_chain_is_never_believed(anvil, people):
    chain = RpcChain([anvil.url], 1, "0x" + "11" * 20, people.city_a)  # anvil is 31337
    try:
        with pytest.raises(ChainUnavailable, match="serves chain 31337, not 1"):
            chain.block_number()
    finally:
        chain.close()


def test_dev_accounts_are_anvils(anvil, people):
    chain = RpcChain([anvil.url], anvil.chain_id, "0x" + "11" * 20)
    try:
        accounts = chain.node.w3.eth.accounts
    finally:
        chain.close()
    assert accounts[:4] == [
        people.governance.address,
        people.city_a.address,
        people.city_b.address,
        people.outsider.address,
    ]


# --------------------------------------------------------------------------- accounts


def test_keystore_round_trip_and_wrong_passphrase(tmp_path):
    account = ChainAccount.generate()
    path = tmp_path / "issuer.json"
    path.write_text(json.dumps(account.to_keystore("正しい合言葉", kdf="pbkdf2", iterations=2)))
    assert ChainAccount.from_keystore(path, "正しい合言葉").address == account.address
    with pytest.raises(KeyFileError, match="wrong passphrase") as e:
        ChainAccount.from_keystore(path, "wrong-passphrase-123")
    assert "wrong-passphrase-123" not in str(e.value)
    with pytest.raises(KeyFileError, match="cannot read"):
        ChainAccount.from_keystore("not json", "x")
    assert account.address in repr(account)
    assert account.local.key.hex() not in repr(account)
    with pytest.raises(ValueError, match="empty passphrase"):
        account.to_keystore("")


def test_an_unusable_answer_is_an_outage_not_a_crash() -> None:
    """A JSON-RPC answer web3 cannot use (e.g. a result of the wrong shape) becomes
    ChainUnavailable, so the anchoring worker backs off and tries again."""
    from web3.exceptions import BadResponseFormat

    from anchor.backends import EvmNode

    error = EvmNode().translate(BadResponseFormat("result: 'zz'"))
    assert isinstance(error, ChainUnavailable)
    assert "unusable" in error.en
