"""A populated issuer for the fuzzers: an initialised city key, a SQLite file database,
a clerk and a supervisor, a resident's certificate with an open wallet offer, a
contractor with a contract and its signing link, and an account for the fuzzers to
change (never the ones they sign in with). ``seeds`` holds real values of each URL
argument, so fuzzed requests reach past the lookups."""

from __future__ import annotations

import html
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from fpdf import FPDF
from issuer_testing import FAST_ARGON2, PASSWORD, add_user, csrf_token, sign_in
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage

from anchor import merkle
from anchor.accounts import ChainAccount
from anchor.backends import EvmChain
from anchor.batcher import Batcher
from anchor.registry import register_issuer
from credentials import _jws, doctypes
from credentials.keys import SigningKey
from issuer import create_app, db
from issuer.accounts.models import User
from issuer.certificates import service as certificates
from issuer.contracts.models import Contractor
from issuer.keys import service as keys
from issuer.oid4vci import service as oid4vci
from issuer.oid4vci.protocol import NewOffer

ISSUER = "https://fuzz.example.jp"
PASSPHRASE = "fuzz-city-passphrase"
SETTINGS = keys.IssuerSettings(issuer_id=ISSUER, name="試験市", municipality_code="402052")
GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
WALLET = SigningKey.generate()
_CONTRACT = re.compile(r"/contracts/([A-Za-z0-9_-]{22})")
_SIGN_LINK = re.compile(r"/contract-sign/([A-Za-z0-9_-]{43})")
_KEY_LINK = re.compile(r"/contractor-key/([A-Za-z0-9_-]{43})")
_CONTRACTOR = {
    "name": "株式会社サンプル建設",
    "corporate_number": "7000012050002",
    "representative": "代表取締役 田中 一郎",
    "email": "keiyaku@sample-kensetsu.example.jp",
}
_TERMS = {
    "title": "市道舗装補修工事",
    "contract_number": "契第2026-0001号",
    "amount_jpy": "12,650,000",
    "period_start": "2026-12-10",
    "period_end": "2027-03-19",
    "site": "市内",
}


@dataclass
class World:
    app: Flask
    seeds: dict[str, list[Any]] = field(default_factory=dict)
    #: good values of form fields by name (bytes for a file)
    good: dict[str, list[Any]] = field(default_factory=dict)
    #: pages that answer a POST (path, HTML), for the forms only they show
    extra_pages: list[tuple[str, str]] = field(default_factory=list)
    certificate: str = ""

    def city(self) -> keys.City:
        return keys.load(self.app.config["DATA_DIR"], PASSPHRASE)

    def user(self, session: Session, username: str) -> User:
        found = session.scalar(select(User).where(User.username == username))
        assert found is not None
        return found

    def new_offer(self) -> tuple[str, str]:
        """A fresh offer of the certificate: (pre-authorized code, tx_code)."""
        offer = self._offer()
        return offer.pre_authorized_code, offer.tx_code

    def offer_reference(self) -> str:
        """The reference of a fresh offer (the last part of its credential_offer_uri)."""
        return self._offer().uri.rsplit("/", 1)[1]

    def _offer(self) -> NewOffer:
        with Session(db.engine_of(self.app)) as session:
            return oid4vci.create_offer(
                session,
                self.certificate,
                city=self.city(),
                clerk=self.user(session, "clerk1"),
                now=time.time(),
                ttl=600,
            )

    def access_token(self) -> tuple[str, str]:
        """A fresh access token for the certificate and a c_nonce from the nonce
        endpoint: (token, c_nonce)."""
        code, tx_code = self.new_offer()
        response = self.app.test_client().post(
            "/oid4vci/token",
            data={"grant_type": GRANT, "pre-authorized_code": code, "tx_code": tx_code},
        )
        assert response.status_code == 200, response.get_json()
        nonce = self.app.test_client().post("/oid4vci/nonce").get_json()["c_nonce"]
        return response.get_json()["access_token"], str(nonce)

    def deliver(self) -> str:
        """A credential delivered to a wallet; the hex of its leaf."""
        access_token, nonce = self.access_token()
        header = {"alg": "ES256", "typ": "openid4vci-proof+jwt", "jwk": WALLET.jwk}
        claims = {"aud": ISSUER, "iat": int(time.time()), "nonce": nonce}
        proof = _jws.sign(_jws.encode_header(header), claims, WALLET.private_key)
        response = self.app.test_client().post(
            "/oid4vci/credential",
            json={
                "credential_configuration_id": "juminhyo",
                "proof": {"proof_type": "jwt", "jwt": proof},
            },
            headers={"Authorization": f"Bearer {access_token}"},
        )
        assert response.status_code == 200, response.get_json()
        credential = response.get_json()["credentials"][0]["credential"]
        return merkle.leaf_hash(credential.split("~", 1)[0]).hex()


def _anchor(app: Flask) -> None:
    """Anchor every queued leaf on an in-process chain."""
    chain, account = EvmChain.fresh(), ChainAccount.dev(1)
    register_issuer(
        chain, account.address, issuer_id=ISSUER, name="試験市", municipality_code="402052"
    )
    batcher = Batcher(
        engine=db.engine_of(app), chain=chain.using(account), issuer_address=account.address
    )
    batcher.flush()
    batcher.run_until_idle(timeout=30, interval=0)


def _pdf() -> bytes:
    doc = FPDF()
    doc.set_font("helvetica", size=12)
    doc.add_page()
    doc.cell(text="Contract")
    return bytes(doc.output())


def _signed_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def _contractor(app: Flask, clerk: FlaskClient) -> str:
    token = csrf_token(clerk, "/contracts/contractors/new")
    response = clerk.post("/contracts/contractors/new", data={**_CONTRACTOR, "csrf_token": token})
    assert response.status_code in (302, 303), response.status_code
    with Session(db.engine_of(app)) as session:
        return session.scalars(select(Contractor.public_id)).one()


def _contract(clerk: FlaskClient, contractor: str, number: int) -> tuple[str, str]:
    """A contract and its signing link: (contract id, link token)."""
    token = csrf_token(clerk, "/contracts/new")
    terms = {**_TERMS, "contract_number": f"契第2026-{number:04d}号"}
    form: dict[str, Any] = {**terms, "contractor": contractor, "csrf_token": token}
    form["document"] = FileStorage(
        io.BytesIO(_pdf()), filename="contract.pdf", content_type="application/pdf"
    )
    response = clerk.post("/contracts/new", data=form, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)
    found = _CONTRACT.search(response.headers["Location"])
    assert found
    contract = found.group(1)
    token = csrf_token(clerk, f"/contracts/{contract}")
    page = clerk.post(f"/contracts/{contract}/link", data={"csrf_token": token})
    link = _SIGN_LINK.search(page.get_data(as_text=True))
    assert link
    return contract, link.group(1)


def _sign(app: Flask, link: str, key: SigningKey) -> None:
    """The contractor registers its key and signs, as contract-sign.js does."""
    browser = app.test_client()
    token = csrf_token(browser, f"/contract-sign/{link}")
    response = browser.post(
        f"/contract-sign/{link}/key", data={"jwk": json.dumps(key.jwk), "csrf_token": token}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    page = browser.get(f"/contract-sign/{link}").get_data(as_text=True)
    found = re.search(r'data-expected="([^"]+)"', page)
    assert found
    expected = json.loads(html.unescape(found.group(1)))
    header = {"alg": "ES256", "typ": "shomei-contract-agreement+jwt", "jwk": key.jwk}
    agreement = _jws.sign(
        _jws.encode_header(header), {**expected, "iat": int(time.time())}, key.private_key
    )
    response = browser.post(
        f"/contract-sign/{link}",
        data={"agreement": agreement, "csrf_token": token},
        headers={"Accept": "application/json"},
    )
    assert response.get_json() == {"signed": True}


def _replace_key(boss: FlaskClient, contractor: str) -> str:
    """The supervisor replaces the contractor's key: the new key's link."""
    path = f"/contracts/contractors/{contractor}/key"
    form = {"reason": "鍵の紛失", "confirm": "yes", "csrf_token": csrf_token(boss, path)}
    page = boss.post(path, data=form).get_data(as_text=True)
    found = _KEY_LINK.search(page)
    assert found, page
    return found.group(1)


def _contracts(app: Flask) -> list[str]:
    """Three contracts (awaiting the contractor, awaiting approval, issued), their
    contractor, whose key is then replaced, the signing link of the first contract and
    the key link: [ids..., link, key link]."""
    clerk, boss = _signed_in(app, "clerk1"), _signed_in(app, "boss")
    contractor = _contractor(app, clerk)
    waiting, link = _contract(clerk, contractor, 1)
    signed, signed_link = _contract(clerk, contractor, 2)
    key = SigningKey.generate()  # the contractor's one key
    _sign(app, signed_link, key)
    issued, issued_link = _contract(clerk, contractor, 3)
    _sign(app, issued_link, key)
    token = csrf_token(boss, f"/contracts/{issued}")
    response = boss.post(f"/contracts/{issued}/approve", data={"csrf_token": token})
    assert response.status_code == 303, response.status_code
    key_link = _replace_key(boss, contractor)
    return [waiting, signed, issued, contractor, link, key_link]


def build(directory: Path, **config: Any) -> World:
    """The populated issuer in ``directory`` (its data directory and database)."""
    keys.init(directory / "data", SETTINGS, passphrase=PASSPHRASE)
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": directory / "data",
            "DATABASE_URL": f"sqlite:///{directory / 'issuer.db'}",
            "KEY_PASSPHRASE": PASSPHRASE,
            **FAST_ARGON2,
            **config,
        }
    )
    add_user(app, "clerk1", "clerk", display_name="窓口 花子")
    add_user(app, "boss", "supervisor", display_name="監督 太郎")
    add_user(app, "target", "clerk", display_name="対象 次郎")
    add_user(app, "visitor", "clerk", display_name="来訪 四郎")  # the sign-in form's
    world = World(app=app)
    with Session(db.engine_of(app)) as session:
        cert = certificates.issue_juminhyo(
            session,
            doctypes.sample("juminhyo"),
            city=world.city(),
            clerk=world.user(session, "clerk1"),
            now=time.time(),
            include_household=False,
            include_domicile=False,
        )
        world.certificate = cert.public_id
        victim = world.user(session, "target").id
    offer_id = _offer_id(app, world)
    *contracts, link, key_link = _contracts(app)
    city = world.city()
    anchored = world.deliver()
    _anchor(app)  # the first delivered credential has evidence, the second not yet
    world.seeds = {
        "public_id": [world.certificate, *contracts],
        "offer_id": [offer_id],
        "doc_type": list(doctypes.DOCUMENT_TYPES),
        "token": [link, key_link],
        "user_id": [victim],
        "kid": [city.key.kid],
        "party": ["orderer", "contractor"],
        "name": list(doctypes.DOCUMENT_TYPES),
        "list_id": [0, 1],
        "leaf_hex": [anchored, world.deliver(), "00" * 32],
    }
    world.good = _good_values(contract_pdf=_pdf())
    login = "/auth/login?next=/users/"  # the sign-in form with its hidden ``next``
    world.extra_pages = [
        *_previews(_signed_in(app, "clerk1")),
        (login, app.test_client().get(login).get_data(as_text=True)),
    ]
    return world


def _good_values(contract_pdf: bytes) -> dict[str, list[Any]]:
    good: dict[str, list[Any]] = {}
    samples = [doctypes.sample(name) for name in ("juminhyo", "partnership")]
    for values in (*samples, _CONTRACTOR, _TERMS):
        for name, value in values.items():
            if isinstance(value, str):
                good.setdefault(name, []).append(value)
    good.update(
        # The sign-in form signs in (as an account of its own), the others make new ones.
        username=["visitor", "newclerk"],
        display_name=["新人 三郎"],
        password=[PASSWORD],
        password_confirm=[PASSWORD],
        role=["clerk"],
        reason=["転出"],
        confirm=["1"],
        jwk=[json.dumps(SigningKey.generate().jwk)],
        document=[contract_pdf],
    )
    return good


def _previews(clerk: FlaskClient) -> list[tuple[str, str]]:
    """The preview page of a valid 住民票 (its form issues the certificate)."""
    path = "/certificates/new/juminhyo"
    form = {k: v for k, v in doctypes.sample("juminhyo").items() if isinstance(v, str)}
    response = clerk.post(path, data={**form, "csrf_token": csrf_token(clerk, path)})
    assert response.status_code == 200, response.status_code
    return [(path, response.get_data(as_text=True))]


def _offer_id(app: Flask, world: World) -> str:
    clerk = _signed_in(app, "clerk1")
    token = csrf_token(clerk, f"/certificates/{world.certificate}")
    response = clerk.post(f"/certificates/{world.certificate}/offer", data={"csrf_token": token})
    assert response.status_code == 303
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[1]
