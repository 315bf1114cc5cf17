"""Rotation of the city's signing key from the supervisor's page, on an in-process EVM
registry: the new key on chain first, the local switch, the old key retired with a
future revokedAt; credentials issued before and after verify against the registry."""

from __future__ import annotations

import html as html_lib
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from issuer_testing import add_user, csrf_token, sign_in
from sqlalchemy import select
from sqlalchemy.orm import Session

from anchor import evidence, merkle
from anchor.accounts import ChainAccount
from anchor.backends import EvmChain, EvmNode, RpcChain
from anchor.chain import KeyRecord
from anchor.registry import add_key, deploy_registry, register_issuer
from credentials import doctypes
from credentials._b64 import b64d, b64e
from credentials.errors import KeyFileError
from credentials.keys import SigningKey
from issuer import db
from issuer.audit.models import AuditEntry
from issuer.audit.service import KEY_ROTATED
from issuer.certificates import service as certificates
from issuer.city import resource as city_resource
from issuer.keys import rotation as key_rotation
from issuer.keys import service as keys
from verifier.policy import Verifier
from verifier.registry_trust import RegistryTrust

ISSUER = "https://iizuka.example.jp"
PASSPHRASE = "city-key-passphrase"
SETTINGS = keys.IssuerSettings(issuer_id=ISSUER, name="飯塚市", municipality_code="402052")
GOVERNANCE, CITY = ChainAccount.dev(0), ChainAccount.dev(1)
GRACE = 86_400
CERT_LINK = re.compile(r"/certificates/([A-Za-z0-9_-]{22})")


@pytest.fixture(scope="module")
def node() -> EvmNode:
    return EvmNode(accounts=2)


@pytest.fixture
def registry(node: EvmNode) -> str:
    """A fresh registry (on the module's node) with no issuer yet."""
    return deploy_registry(node, GOVERNANCE)


def chain(node: EvmNode, address: str, account: ChainAccount | None) -> EvmChain:
    return EvmChain(node, registry_address=address, account=account)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    keys.init(tmp_path / "data", SETTINGS, passphrase=PASSPHRASE)
    return tmp_path / "data"


@pytest.fixture
def registered(node: EvmNode, registry: str, data_dir: Path) -> str:
    """The city registered with its current key; the registry's address."""
    gov = chain(node, registry, GOVERNANCE)
    register_issuer(gov, CITY.address, issuer_id=ISSUER, name="飯塚市", municipality_code="402052")
    add_key(chain(node, registry, CITY), keys.load(data_dir, PASSPHRASE).key.jwk)
    return registry


def build(make_app: Any, data_dir: Path, **config: Any) -> Flask:
    app: Flask = make_app(KEY_PASSPHRASE=PASSPHRASE, **config)
    assert app.config["DATA_DIR"] == data_dir
    add_user(app, "clerk1", "clerk")
    add_user(app, "boss", "supervisor")
    return app


@pytest.fixture
def city_app(make_app: Any, node: EvmNode, registered: str, data_dir: Path) -> Flask:
    return build(
        make_app,
        data_dir,
        CHAIN_FACTORY=lambda account: chain(node, registered, account),
        ANCHOR_ACCOUNT=CITY,
    )


def signed_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def rotate(client: FlaskClient, **form: str) -> Any:
    token = csrf_token(client, "/keys/")
    return client.post("/keys/rotate", data={"confirm": "1", "csrf_token": token, **form})


def issue(client: FlaskClient) -> str:
    """Form -> preview -> issue a 住民票 as a clerk does; the certificate's public id."""
    form = {k: v for k, v in doctypes.sample("juminhyo").items() if isinstance(v, str)}
    token = csrf_token(client, "/certificates/new/juminhyo")
    page = client.post("/certificates/new/juminhyo", data={**form, "csrf_token": token})
    assert page.status_code == 200
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text)
    response = client.post(
        "/certificates/issue/juminhyo", data={k: html_lib.unescape(v) for k, v in fields}
    )
    assert response.status_code == 302, response.text
    match = CERT_LINK.search(response.headers["Location"])
    assert match
    return match.group(1)


def credential_of(app: Flask, public_id: str) -> str:
    city = keys.load(app.config["DATA_DIR"], PASSPHRASE)
    with Session(db.engine_of(app)) as session:
        cert = certificates.find(session, public_id)
        opened = json.loads(city.unseal(cert.sealed, context=public_id.encode()))
    return str(opened["credential"])


def kid_of(credential: str) -> str:
    header = credential.split(".", 1)[0]
    return str(json.loads(b64d(header))["kid"])


def on_chain(node: EvmNode, address: str, kid: str) -> KeyRecord | None:
    record = chain(node, address, None).issuer_by_id(ISSUER)
    return key_rotation.on_chain_key(record, kid)


def registry_verifier(node: EvmNode, address: str) -> Verifier:
    trust = RegistryTrust(chain(node, address, None), ttl=0)
    return Verifier(trust=trust, anchors=trust)


def current_kid(app: Flask) -> str:
    return keys.load(app.config["DATA_DIR"], PASSPHRASE).key.kid


# ------------------------------------------------------------------ the rotation
def test_supervisor_rotates_and_both_generations_verify(
    city_app: Flask, node: EvmNode, registered: str
):
    clerk, boss = signed_in(city_app, "clerk1"), signed_in(city_app, "boss")
    before = credential_of(city_app, issue(clerk))
    old_kid = kid_of(before)
    page = boss.get("/keys/")
    assert page.status_code == 200 and old_kid in page.text and "登録済み" in page.text
    assert "署名鍵を更新" in page.text

    started = time.time()
    response = rotate(boss)
    assert response.status_code == 303, response.text
    new_kid = current_kid(city_app)
    assert new_kid != old_kid

    # on chain: the new key valid from about now, the old one revoked only after the grace
    new, old = on_chain(node, registered, new_kid), on_chain(node, registered, old_kid)
    assert new is not None and new.revoked_at is None
    assert started - 5 <= new.valid_from <= time.time() + 5
    assert old is not None and old.revoked_at is not None
    assert old.revoked_at >= started + GRACE - 5
    # the well-known keys: the new key first, the retired one still published
    jwks = city_app.test_client().get("/.well-known/jwt-vc-issuer").get_json()["jwks"]["keys"]
    assert [k["kid"] for k in jwks] == [new_kid, old_kid]
    assert all("d" not in k for k in jwks)
    page = boss.get("/keys/").text
    assert "署名鍵を更新しました" in page and new_kid in page and old_kid in page

    after = credential_of(city_app, issue(clerk))
    assert kid_of(after) == new_kid  # the cached issuer was replaced at once
    verifier = registry_verifier(node, registered)
    for credential in (before, after):
        result = verifier.verify(credential, now=time.time())
        assert result.verdict == "valid", result.to_json()
    # the old credential, anchored only now (it waited in the queue), is still valid
    batch = merkle.build([merkle.leaf_hash(before.split("~")[0]), merkle.leaf_hash("eyJ.x.y")])
    chain(node, registered, CITY).anchor(batch.root)
    ev = evidence.encode_receipt(batch.receipt(1, 0))
    result = verifier.verify(before, now=time.time(), evidence=ev)
    assert result.verdict == "valid" and result.check("anchor").status == "pass"


def test_the_rotation_is_audited_without_key_material(city_app: Flask, data_dir: Path):
    old_kid = current_kid(city_app)
    assert rotate(signed_in(city_app, "boss")).status_code == 303
    with Session(db.engine_of(city_app)) as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == KEY_ROTATED))
    assert entry.actor == "boss" and entry.target == f"issuer:{ISSUER}"
    assert entry.details["key_id"] == current_kid(city_app)
    assert entry.details["old_key_id"] == old_kid
    assert re.fullmatch(r"0x[0-9a-f]{64}", entry.details["tx"])
    text = json.dumps(entry.details)
    assert PASSPHRASE not in text and "PRIVATE" not in text and '"d"' not in text
    # the retired key's private part is gone from disk
    history = (keys.issuer_dir(data_dir) / keys.HISTORY_FILE).read_text()
    assert "PRIVATE" not in history and '"d"' not in history


def test_a_clerk_cannot_see_or_rotate(city_app: Flask):
    clerk = signed_in(city_app, "clerk1")
    old_kid = current_kid(city_app)
    assert clerk.get("/keys/").status_code == 403
    token = csrf_token(clerk, "/")
    assert clerk.post("/keys/rotate", data={"confirm": "1", "csrf_token": token}).status_code == 403
    assert current_kid(city_app) == old_kid


def test_missing_csrf_or_confirmation_changes_nothing(
    city_app: Flask, node: EvmNode, registered: str
):
    boss = signed_in(city_app, "boss")
    old_kid = current_kid(city_app)
    assert boss.post("/keys/rotate", data={"confirm": "1"}).status_code == 400
    unconfirmed = boss.post("/keys/rotate", data={"csrf_token": csrf_token(boss, "/keys/")})
    assert unconfirmed.status_code == 400 and "確認欄" in unconfirmed.text
    assert current_kid(city_app) == old_kid
    (only,) = chain(node, registered, None).issuer_by_id(ISSUER).keys  # type: ignore[union-attr]
    assert only.revoked_at is None


# ------------------------------------------------------------------ failures
def dead_chain(account: ChainAccount | None) -> RpcChain:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    return RpcChain([f"http://127.0.0.1:{port}"], 31337, "0x" + "11" * 20, account)


@pytest.mark.parametrize(
    ("config", "ja", "en"),
    [
        ({}, "アカウントが未設定", "no anchoring account"),
        (
            {"ANCHOR_ACCOUNT": CITY},
            "ブロックチェーンが設定されていません",
            "no chain is configured",
        ),
        (
            {"ANCHOR_ACCOUNT": CITY, "CHAIN_FACTORY": dead_chain},
            "登録簿を読み込めません",
            "cannot read",
        ),
    ],
    ids=["no-account", "no-chain", "node-down"],
)
def test_no_chain_or_node_down_is_a_message_and_the_key_stays(
    make_app: Any, data_dir: Path, config: dict[str, Any], ja: str, en: str
):
    app = build(make_app, data_dir, **config)
    boss = signed_in(app, "boss")
    old_kid = current_kid(app)
    page = boss.get("/keys/")
    assert page.status_code == 200 and "登録簿を確認できません" in page.text
    response = rotate(boss)
    assert response.status_code == 400 and ja in response.text
    assert boss.get("/?lang=en").status_code == 200
    assert en in rotate(boss).text
    assert current_kid(app) == old_kid
    assert not (keys.issuer_dir(data_dir) / keys.HISTORY_FILE).exists()


def test_a_city_not_registered_on_chain_is_told_so(
    make_app: Any, node: EvmNode, registry: str, data_dir: Path
):
    app = build(
        make_app,
        data_dir,
        CHAIN_FACTORY=lambda account: chain(node, registry, account),
        ANCHOR_ACCOUNT=CITY,
    )
    boss = signed_in(app, "boss")
    old_kid = current_kid(app)
    assert "登録されていません" in boss.get("/keys/").text
    response = rotate(boss)
    assert response.status_code == 400 and "発行者として登録されていません" in response.text
    assert current_kid(app) == old_kid


def test_wrong_passphrase_or_another_account_changes_nothing(
    node: EvmNode, registered: str, data_dir: Path
):
    city_chain = chain(node, registered, CITY)
    with pytest.raises(KeyFileError, match="passphrase"):
        key_rotation.rotate(data_dir, passphrase="wrong", chain=city_chain, now=time.time())
    with pytest.raises(key_rotation.RotationError, match="not the city's address"):
        key_rotation.rotate(
            data_dir, passphrase=PASSPHRASE, chain=chain(node, registered, GOVERNANCE), now=1.0
        )
    (only,) = city_chain.issuer_by_id(ISSUER).keys  # type: ignore[union-attr]
    assert only.revoked_at is None
    assert keys.load(data_dir, PASSPHRASE).key.kid == b64e(only.thumbprint)


def test_the_new_key_refused_on_chain_changes_nothing_locally(
    node: EvmNode, registered: str, data_dir: Path
):
    city_chain = chain(node, registered, CITY)
    taken = SigningKey.generate()
    add_key(city_chain, taken.jwk)  # the same key twice: the registry reverts (KeyExists)
    before = keys.load(data_dir, PASSPHRASE).key.kid
    with pytest.raises(key_rotation.RotationError, match="not registered on chain"):
        key_rotation.rotate(
            data_dir, passphrase=PASSPHRASE, chain=city_chain, now=time.time(), new_key=taken
        )
    assert keys.load(data_dir, PASSPHRASE).key.kid == before


def test_revoked_at_is_the_grace_after_the_rotation(node: EvmNode, registered: str, data_dir: Path):
    now = time.time()
    result = key_rotation.rotate(
        data_dir, passphrase=PASSPHRASE, chain=chain(node, registered, CITY), now=now, grace=600
    )
    assert result.revoked_at == int(now) + 600 and result.revoke_tx and not result.revoke_error
    old = on_chain(node, registered, result.old_kid)
    assert old is not None and old.revoked_at == int(now) + 600
    city = keys.load(data_dir, PASSPHRASE)
    assert city.key.kid == result.new_kid and city.key_since == now
    assert [r.kid for r in city.retired] == [result.old_kid]


def test_grace_setting():
    assert key_rotation.grace_seconds({}) == 86_400
    assert key_rotation.grace_seconds({"KEY_RETIRE_GRACE_SECONDS": "3600"}) == 3600
    with pytest.raises(key_rotation.RotationError, match="positive"):
        key_rotation.grace_seconds({"KEY_RETIRE_GRACE_SECONDS": "-5"})


# ------------------------------------------------------------------ the key files
@pytest.fixture
def city(data_dir: Path) -> keys.City:
    return keys.load(data_dir, PASSPHRASE)


def files_of(data_dir: Path) -> Iterator[Path]:
    return keys.issuer_dir(data_dir).iterdir()


def test_switch_key_keeps_only_the_public_part_of_the_old_key(data_dir: Path, city: keys.City):
    new = SigningKey.generate()
    switched = keys.switch_key(data_dir, city, new, passphrase=PASSPHRASE, now=1_780_000_000.0)
    loaded = keys.load(data_dir, PASSPHRASE)
    assert loaded.key.kid == switched.key.kid == new.kid
    assert loaded.key_since == 1_780_000_000.0
    (retired,) = loaded.retired
    assert retired.kid == city.key.kid and retired.jwk == city.key.jwk
    assert retired.retired_at == 1_780_000_000.0 and retired.since is None
    assert [k["kid"] for k in loaded.jwks()["keys"]] == [new.kid, city.key.kid]
    for path in files_of(data_dir):
        assert path.stat().st_mode & 0o077 == 0, path
        assert not path.name.endswith(".tmp")
    # a second rotation keeps both retired keys; a compromised one is not published
    third = keys.switch_key(data_dir, loaded, SigningKey.generate(), passphrase=PASSPHRASE, now=2.0)
    assert [r.kid for r in third.retired] == [city.key.kid, new.kid]
    compromised = keys.City(
        settings=third.settings,
        key=third.key,
        storage_key=third.storage_key,
        retired=(keys.RetiredKey(**{**vars(third.retired[0]), "compromised": True}),),
    )
    assert [k["kid"] for k in compromised.jwks()["keys"]] == [third.key.kid]


def test_a_crash_between_the_writes_leaves_a_usable_key(
    data_dir: Path, city: keys.City, monkeypatch: pytest.MonkeyPatch
):
    real_replace = keys.os.replace
    calls: list[str] = []

    def dies_on_the_second(src: Any, dst: Any) -> None:
        calls.append(Path(dst).name)
        if len(calls) == 2:
            raise OSError(5, "simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(keys.os, "replace", dies_on_the_second)
    with pytest.raises(OSError, match="simulated"):
        keys.switch_key(data_dir, city, SigningKey.generate(), passphrase=PASSPHRASE, now=5.0)
    monkeypatch.undo()
    assert calls == [keys.HISTORY_FILE, keys.KEY_FILE]  # the history first, the key last
    after = keys.load(data_dir, PASSPHRASE)
    assert after.key.kid == city.key.kid  # the old key still signs
    assert after.retired == () and len(after.jwks()["keys"]) == 1  # and is listed once
    assert not any(p.name.endswith(".tmp") for p in files_of(data_dir))
    # a later rotation works from there
    redone = keys.switch_key(data_dir, after, SigningKey.generate(), passphrase=PASSPHRASE, now=6)
    assert [r.kid for r in keys.load(data_dir, PASSPHRASE).retired] == [city.key.kid]
    assert redone.key.kid == keys.load(data_dir, PASSPHRASE).key.kid


def test_a_failed_first_write_changes_nothing(
    data_dir: Path, city: keys.City, monkeypatch: pytest.MonkeyPatch
):
    def no_space(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keys.os, "replace", no_space)
    with pytest.raises(OSError):
        keys.switch_key(data_dir, city, SigningKey.generate(), passphrase=PASSPHRASE, now=5.0)
    monkeypatch.undo()
    assert sorted(p.name for p in files_of(data_dir)) == sorted(
        [keys.KEY_FILE, keys.STORAGE_KEY_FILE, keys.SETTINGS_FILE]
    )
    assert keys.load(data_dir, PASSPHRASE).key.kid == city.key.kid


def test_a_stale_city_is_not_switched(data_dir: Path, city: keys.City):
    keys.switch_key(data_dir, city, SigningKey.generate(), passphrase=PASSPHRASE, now=1.0)
    with pytest.raises(ValueError, match="changed on disk"):
        keys.switch_key(data_dir, city, SigningKey.generate(), passphrase=PASSPHRASE, now=2.0)


def test_a_malformed_history_is_reported(data_dir: Path):
    (keys.issuer_dir(data_dir) / keys.HISTORY_FILE).write_text('{"retired": [{"kid": "x"}]}')
    with pytest.raises(keys.NotInitialised, match="key history"):
        keys.load(data_dir, PASSPHRASE)


def test_a_failed_revocation_can_be_sent_again(
    city_app: Flask, node: EvmNode, registered: str, monkeypatch: pytest.MonkeyPatch
):
    def node_gone(*args: Any, **kwargs: Any) -> str:
        raise key_rotation.RotationError("取り消せません", "node gone")

    boss = signed_in(city_app, "boss")
    old_kid = current_kid(city_app)
    with monkeypatch.context() as m:
        m.setattr(key_rotation, "retire_on_chain", node_gone)
        assert rotate(boss).status_code == 303
    page = boss.get("/keys/").text
    assert "署名鍵を更新しました" in page and "取り消せません" in page
    assert current_kid(city_app) != old_kid  # the rotation itself happened
    old = on_chain(node, registered, old_kid)
    assert old is not None and old.revoked_at is None
    assert ">取り消しを登録</button>" in page
    retired_at = keys.load(city_app.config["DATA_DIR"], PASSPHRASE).retired[0].retired_at
    token = csrf_token(boss, "/keys/")
    assert boss.post(f"/keys/retire/{old_kid}", data={"csrf_token": token}).status_code == 303
    old = on_chain(node, registered, old_kid)
    assert old is not None and old.revoked_at == int(retired_at) + GRACE
    assert ">取り消しを登録</button>" not in boss.get("/keys/").text
    unknown = boss.post(f"/keys/retire/{current_kid(city_app)}", data={"csrf_token": token})
    assert unknown.status_code == 303
    assert on_chain(node, registered, current_kid(city_app)).revoked_at is None  # type: ignore[union-attr]


def test_every_worker_process_signs_with_the_key_another_one_rotated_to(
    make_app: Any, data_dir: Path
):
    """gunicorn serves the issuer from several processes: a rotation made in one (files
    replaced on disk) reaches the others at their next request, without a restart."""
    other = make_app(KEY_PASSPHRASE=PASSPHRASE)  # another worker, its key already open
    old = keys.load(data_dir, PASSPHRASE)

    def published() -> list[str]:
        document = other.test_client().get("/.well-known/jwt-vc-issuer").get_json()
        return [k["kid"] for k in document["jwks"]["keys"]]

    assert published() == [old.key.kid]
    new = SigningKey.generate()
    keys.switch_key(data_dir, old, new, passphrase=PASSPHRASE, now=time.time())  # worker A

    assert published() == [new.kid, old.key.kid]
    with other.test_request_context():
        assert city_resource().get().key.kid == new.kid
