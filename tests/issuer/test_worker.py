"""The anchoring worker of the issuer process, on the in-process EVM: a certificate
issued at the counter is anchored within the batch interval, its page says so, the
audit head goes into the batch, and a worker stopped and started again resumes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from anchor.accounts import ChainAccount
from anchor.backends import EvmChain, EvmNode
from anchor.config import ConfigError
from anchor.registry import add_key, deploy_registry, register_issuer
from credentials import doctypes
from issuer import db, worker
from issuer.accounts.models import User
from issuer.certificates import service as certificates
from issuer.keys import service as keys

ISSUER = "https://iizuka.example.jp"
PASSPHRASE = "city-key-passphrase"
SETTINGS = keys.IssuerSettings(issuer_id=ISSUER, name="飯塚市", municipality_code="402052")
GOVERNANCE, CITY = ChainAccount.dev(0), ChainAccount.dev(1)


@pytest.fixture(scope="module")
def node() -> EvmNode:
    return EvmNode()


@pytest.fixture
def chain_app(make_app: Any, tmp_path: Path, node: EvmNode) -> Flask:
    city = keys.init(tmp_path / "data", SETTINGS, passphrase=PASSPHRASE)
    address = deploy_registry(node, GOVERNANCE)
    gov = EvmChain(node, registry_address=address, account=GOVERNANCE)
    register_issuer(gov, CITY.address, issuer_id=ISSUER, name="飯塚市", municipality_code="402052")
    add_key(gov.using(CITY), city.key.jwk)

    def factory(account: ChainAccount | None) -> EvmChain:
        return EvmChain(node, registry_address=address, account=account)

    app: Flask = make_app(
        KEY_PASSPHRASE=PASSPHRASE,
        CHAIN_FACTORY=factory,
        ANCHOR_ACCOUNT=CITY,
        ANCHOR_INTERVAL_SECONDS=0.3,
        ANCHOR_POLL_SECONDS=0.05,
    )
    return app


def issue(app: Flask) -> certificates.Certificate:
    from issuer_testing import add_user

    name = f"clerk{time.monotonic_ns()}"
    add_user(app, name, "clerk")
    with Session(db.engine_of(app), expire_on_commit=False) as s:
        user = s.scalars(select(User).where(User.username == name)).one()
        return certificates.issue_juminhyo(
            s,
            doctypes.sample("juminhyo"),
            city=keys.load(app.config["DATA_DIR"], PASSPHRASE),
            clerk=user,
            now=time.time(),
            include_household=False,
            include_domicile=False,
        )


def wait_anchored(app: Flask, leaf: bytes, timeout: float = 20.0) -> certificates.AnchorState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(db.engine_of(app)) as s:
            state = certificates.anchor_state(s, leaf)
        if state.state == "anchored":
            return state
        time.sleep(0.05)
    raise AssertionError(f"not anchored within {timeout} s: {state}")


def test_issued_certificate_is_anchored_by_the_worker(chain_app: Flask) -> None:
    running = worker.build(chain_app.config, db.engine_of(chain_app)).start()
    try:
        cert = issue(chain_app)
        started = time.monotonic()
        state = wait_anchored(chain_app, cert.leaf)
        assert time.monotonic() - started < 0.3 + 5
        assert state.block is not None and state.block > 0 and state.tx
        with Session(db.engine_of(chain_app)) as s:
            assert certificates.anchor_state(s, cert.leaf).batch_id == state.batch_id
    finally:
        running.stop()
    assert not running.running
    assert running.last_error is None


def test_stopped_worker_resumes_and_anchors_what_was_queued(chain_app: Flask) -> None:
    first = worker.build(chain_app.config, db.engine_of(chain_app)).start()
    first.stop()
    cert = issue(chain_app)  # queued while no worker runs
    with Session(db.engine_of(chain_app)) as s:
        assert certificates.anchor_state(s, cert.leaf).state == "pending"
    second = worker.build(chain_app.config, db.engine_of(chain_app)).start()
    try:
        wait_anchored(chain_app, cert.leaf)
    finally:
        second.stop()


def test_certificate_page_polls_until_anchored(chain_app: Flask) -> None:
    from issuer_testing import add_user, sign_in

    cert = issue(chain_app)
    add_user(chain_app, "viewer", "clerk")
    client = chain_app.test_client()
    assert sign_in(client, "viewer").status_code == 302
    page = client.get(f"/certificates/{cert.public_id}").get_data(as_text=True)
    assert "anchor-state.js" in page and 'data-state="pending"' in page
    polled = client.get(f"/certificates/{cert.public_id}/anchor.json").get_json()
    assert polled["state"] == "pending" and polled["label"] == "記録待ち…"
    running = worker.build(chain_app.config, db.engine_of(chain_app)).start()
    try:
        wait_anchored(chain_app, cert.leaf)
    finally:
        running.stop()
    page = client.get(f"/certificates/{cert.public_id}").get_data(as_text=True)
    assert 'data-state="anchored"' in page and "記録済み" in page
    assert "anchor-state.js" not in page
    polled = client.get(f"/certificates/{cert.public_id}/anchor.json").get_json()
    assert polled["state"] == "anchored" and polled["block"] > 0 and polled["tx"]
    assert "令和" in polled["time"]
    assert client.get("/certificates/nonexistent/anchor.json").status_code == 404
    anonymous = chain_app.test_client().get(f"/certificates/{cert.public_id}/anchor.json")
    assert anonymous.status_code in (302, 401)


class FailingChain:
    """A chain whose node is down: every call fails as an outage does."""

    def __getattr__(self, name: str) -> Any:
        from anchor.chain import ChainUnavailable

        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise ChainUnavailable("ノードに接続できません", "the node is down")

        return fail


def test_worker_survives_a_chain_outage_and_keeps_the_leaf(chain_app: Flask, node: EvmNode) -> None:
    outage = dict(chain_app.config, CHAIN_FACTORY=lambda _account: FailingChain())
    down = worker.build(outage, db.engine_of(chain_app)).start()
    cert = issue(chain_app)
    time.sleep(1.0)
    down.stop()
    assert down.last_error is not None and "down" in down.last_error
    with Session(db.engine_of(chain_app)) as s:
        assert certificates.anchor_state(s, cert.leaf).state in ("pending", "batched")
    up = worker.build(chain_app.config, db.engine_of(chain_app)).start()
    try:
        wait_anchored(chain_app, cert.leaf)
    finally:
        up.stop()


def test_worker_needs_an_account_and_a_chain(make_app: Any, tmp_path: Path) -> None:
    keys.init(tmp_path / "data", SETTINGS, passphrase=PASSPHRASE)
    app = make_app(KEY_PASSPHRASE=PASSPHRASE)
    with pytest.raises(ConfigError, match="anchoring account"):
        worker.build(app.config, db.engine_of(app))
    with_account = dict(app.config, ANCHOR_ACCOUNT_NAME="dev:1")
    with pytest.raises(ConfigError, match="no chain is configured"):
        worker.build(with_account, db.engine_of(app))
