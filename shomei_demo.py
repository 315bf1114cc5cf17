"""``shomei demo``: the whole system on embedded defaults.

A local Ethereum node (anvil, state in the data directory), the AnchorRegistry with a
demo city, one credential of each document type issued and anchored, a 住民票 presented
with four claims as a QR code carrying its anchor evidence, and that QR verified from
its image against the chain. Then the issuer service for clerks (with its anchoring
worker) is served on 127.0.0.1 with seeded demo accounts, until Ctrl-C. Safe to run
again: it reuses the node, the registry, the city's key and the accounts.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from anchor import evidence as anchor_evidence
from anchor import files, merkle
from anchor.accounts import ChainAccount
from anchor.anchoring import evidence_json
from anchor.batcher import Batcher, BatchPolicy
from anchor.config import ChainConfig, ConfigError, database_url
from anchor.localnode import chain_up
from anchor.operations import registry_deploy
from anchor.queue import enqueue
from anchor.registry import add_key, register_issuer
from anchor.snapshot import export_snapshot
from anchor.store import make_engine
from credentials import doctypes, qr, sdjwt
from credentials.encoding import b64e
from credentials.keys import SigningKey
from credentials.trust import TrustList
from edges.serving import DEFAULT_GRACE, ServeOptions
from issuer import db as issuer_db
from issuer.keys import service as issuer_keys
from verifier import inputs
from verifier.config import build_verifier
from verifier.policy import VerificationResult

ISSUER_NAME = "飯塚市（デモ）"
MUNICIPALITY_CODE = "402052"
PASSPHRASE = "shomei-demo"  # demo only: the demo keys protect nothing real
DEFAULT_SERVE_PORT = 5000
#: The seeded accounts of the issuer service: (username, role, display name).
DEMO_USERS = (
    ("madoguchi", "clerk", "窓口 花子"),
    ("kanri", "supervisor", "管理 太郎"),
)
DEMO_PASSWORD = "shomei-demo-2026"  # demo only
CITY_DEV_ACCOUNT = 1  # anvil's public account 1 anchors for the demo city
SHOWN = ["family_name", "given_name", "birthdate", "address"]
DAY = 86400


def run_demo(
    data: Path, *, port: int | None, describe: Any, serve_port: int = DEFAULT_SERVE_PORT
) -> VerificationResult:
    """Run the demo in ``data``; print what it made; return the QR's verification."""
    out = files.make_private_dir(data / "demo")  # keys, credentials, the receipt
    cfg = _chain(data, port)
    city = ChainAccount.dev(CITY_DEV_ACCOUNT)
    settings = _issuer(data, serve_port)
    key = issuer_keys.load(data, PASSPHRASE).key
    issuer = settings.issuer_id
    _register(cfg, city, key, issuer)
    wallet = _key(out / "wallet-key.pem")
    engine = make_engine(database_url(data))
    # the issuer's tables and the anchoring queue
    issuer_db.migrate(engine, storage_key=issuer_keys.read_storage_key(data))
    _seed_users(engine)
    made = _issue_all(out, engine, key, wallet, issuer)
    batcher = Batcher(
        engine=engine,
        chain=cfg.chain(city),
        issuer_address=city.address,
        policy=BatchPolicy(max_age=0),
    )
    batcher.flush()
    batcher.run_until_idle(timeout=60)
    juminhyo = (out / "juminhyo.sd-jwt").read_text().strip()
    found = batcher.evidence(merkle.leaf_hash(juminhyo.split("~")[0]))
    assert found is not None, "the batch was just anchored"
    receipt = evidence_json(cfg, found)
    (out / "juminhyo.receipt.json").write_text(json.dumps(receipt, indent=2) + "\n")
    text = sdjwt.present(juminhyo, disclose=SHOWN)
    payload = qr.encode_embedded(text, anchor_evidence.encode_receipt(found.receipt))
    (out / "juminhyo-presentation.txt").write_text(text + "\n")
    (out / "juminhyo-qr.png").write_bytes(qr.render_png(payload))
    _offline_trust(out, cfg, key, issuer)
    scanned = inputs.from_bytes((out / "juminhyo-qr.png").read_bytes())
    result = build_verifier(chain=cfg).verify(
        scanned.text, now=time.time(), evidence=scanned.evidence
    )
    _report(out, cfg, made, qr.qr_version(payload), result, describe)
    return result


def _chain(data: Path, port: int | None) -> ChainConfig:
    """The local node running, and a registry deployed on it."""
    try:
        click.echo(chain_up(data, port))
    except ConfigError as e:
        if port is not None or "in use" not in e.en:
            raise
        click.echo(chain_up(data, _free_port()))
    try:
        registry_deploy(data, ChainAccount.dev(0), governance=None, force=False)
    except ConfigError:
        pass  # already deployed on this node: reuse it
    cfg = ChainConfig.load(data)
    assert cfg is not None and cfg.registry_address is not None
    return cfg


def _issuer(data: Path, serve_port: int) -> issuer_keys.IssuerSettings:
    """The issuer service's key and settings (made once): its id is the URL it is
    served at, so wallets and verifiers reach its status lists and metadata."""
    if not issuer_keys.is_initialised(data):
        settings = issuer_keys.IssuerSettings(
            issuer_id=f"http://127.0.0.1:{serve_port}",
            name=ISSUER_NAME,
            municipality_code=MUNICIPALITY_CODE,
        )
        issuer_keys.init(data, settings, passphrase=PASSPHRASE)
    return issuer_keys.load(data, PASSPHRASE).settings


def _seed_users(engine: Any) -> None:
    """The demo clerk and supervisor, created once (their password: DEMO_PASSWORD)."""
    from issuer.accounts import passwords
    from issuer.accounts import service as accounts

    hasher = passwords.make_hasher()
    with Session(engine) as session:
        for username, role, display_name in DEMO_USERS:
            try:
                accounts.create_user(
                    session,
                    hasher,
                    username=username,
                    display_name=display_name,
                    role=role,
                    password=DEMO_PASSWORD,
                    now=time.time(),
                )
            except accounts.AccountError:
                session.rollback()  # already there from an earlier run


def _register(cfg: ChainConfig, city: ChainAccount, key: SigningKey, issuer: str) -> None:
    """The demo city and its current signing key in the registry (once)."""
    gov = cfg.chain(ChainAccount.dev(0))
    try:
        record = gov.issuer_by_id(issuer)
        if record is None:
            register_issuer(
                gov,
                city.address,
                issuer_id=issuer,
                name=ISSUER_NAME,
                municipality_code=MUNICIPALITY_CODE,
            )
            record = gov.issuer_by_id(issuer)
        assert record is not None
        if key.kid not in {b64e(k.thumbprint) for k in record.keys}:
            add_key(gov.using(city), key.jwk)
    finally:
        gov.close()


def _key(path: Path) -> SigningKey:
    if path.exists():
        return SigningKey.from_encrypted_pem(path.read_bytes(), PASSPHRASE)
    key = SigningKey.generate()
    path.write_bytes(key.to_encrypted_pem(PASSPHRASE))
    return key


def _issue_all(
    out: Path, engine: Any, key: SigningKey, wallet: SigningKey, issuer: str
) -> list[tuple[str, Path]]:
    """One credential of each type; each leaf queued before the credential is written."""
    now = int(time.time())
    made = []
    for name, claims in _demo_claims():
        dt = doctypes.get(name.split("-")[0])
        cred = sdjwt.issue(
            doctypes.validate_claims(dt.name, claims),
            key=key,
            issuer=issuer,
            vct=dt.vct_for(issuer),
            iat=now,
            exp=now + dt.default_validity_days * DAY,
            always_plain=dt.never_disclosable,
            holder_jwk=wallet.jwk,
        )
        with Session(engine) as s:
            enqueue(s, merkle.leaf_hash(cred.jwt), now=now)
            s.commit()
        path = out / f"{name}.sd-jwt"
        path.write_text(cred.sd_jwt + "\n")
        made.append((dt.title("ja"), path))
    return made


def _demo_claims() -> list[tuple[str, dict[str, Any]]]:
    first = doctypes.sample("partnership")
    # One credential per partner: the second partner's copy names them as the holder.
    second = dict(first)
    for field_ in ("family_name", "given_name", "birthdate"):
        second[f"holder_{field_}"] = first[f"partner_{field_}"]
        second[f"partner_{field_}"] = first[f"holder_{field_}"]
    return [
        ("juminhyo", doctypes.sample("juminhyo")),
        ("partnership-1", first),
        ("partnership-2", second),
        ("contract", doctypes.sample("contract")),
    ]


def _offline_trust(out: Path, cfg: ChainConfig, key: SigningKey, issuer: str) -> None:
    """A trust file and a governance-signed registry snapshot, for offline checks."""
    doc = TrustList.document(
        issuer, name=ISSUER_NAME, municipality_code=MUNICIPALITY_CODE, jwks=[key.jwk]
    )
    (out / "TRUST.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    gov = cfg.chain(ChainAccount.dev(0))
    try:
        snapshot = export_snapshot(gov, ChainAccount.dev(0), now=int(time.time()))
    finally:
        gov.close()
    (out / "registry-snapshot.json").write_text(
        json.dumps(snapshot, ensure_ascii=False, indent=2) + "\n"
    )


def _report(
    out: Path,
    cfg: ChainConfig,
    made: list[tuple[str, Path]],
    version: int,
    result: VerificationResult,
    describe: Any,
) -> None:
    echo = click.echo
    echo("\nShomei デモ / demo\n")
    echo(f"  チェーン / chain: {', '.join(cfg.rpc_urls)} (chain id {cfg.chain_id})")
    echo(f"  登録簿 / registry: {cfg.registry_address}")
    for title, path in made:
        echo(f"  発行・記録 / issued, anchored   {title}: {path}")
    echo(f"  提示 / presented 住民票（{', '.join(SHOWN)}）: {out / 'juminhyo-presentation.txt'}")
    echo(
        f"  QRコード / QR code (version {version}, with anchor evidence): {out / 'juminhyo-qr.png'}"
    )
    echo(f"  記録の証明 / receipt: {out / 'juminhyo.receipt.json'}")
    echo(f"  オフライン用 / offline: {out / 'TRUST.json'}, {out / 'registry-snapshot.json'}\n")
    echo("QRコードの画像を検証 / verifying the QR code image against the chain:\n")
    echo(describe(result))
    gov = ChainAccount.dev(0).address
    echo(
        "\nもう一度 / again:\n"
        f"  .venv/bin/shomei verify --image {out / 'juminhyo-qr.png'}\n"
        f"  .venv/bin/shomei verify --image {out / 'juminhyo-qr.png'} --offline "
        f"--snapshot {out / 'registry-snapshot.json'} --governance {gov}\n"
        "ローカルチェーンの停止 / stop the local chain:  .venv/bin/shomei chain down\n"
        f"(demo key passphrase: {PASSPHRASE})"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(
    data: Path,
    *,
    host: str,
    port: int,
    verifier_port: int | None = None,
    wallet_port: int | None = None,
) -> int:
    """Serve the issuer service for clerks (with its anchoring worker beside it), the
    standalone verifier for companies and the resident's wallet (with its relay), each
    under gunicorn in a process of its own, until Ctrl-C or SIGTERM; return the exit
    status (0 after a stop, 1 when a service ended by itself)."""
    from edges import processes, serving
    from issuer import cli as issuer_cli
    from issuer import create_app, worker
    from issuer import db as db_module
    from verifier import cli as verifier_cli
    from verifier.app import create_app as create_verifier
    from verifier.x509_identity import write_self_signed
    from wallet_demo import cli as wallet_cli
    from wallet_demo.app import create_app as create_wallet

    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    verifier_port = verifier_port or port + 100
    wallet_port = wallet_port or port + 200
    app = create_app(
        {
            "DATA_DIR": data,
            "WALLET_URL": f"http://{shown}:{wallet_port}",
            "KEY_PASSPHRASE": PASSPHRASE,
            "ANCHOR_ACCOUNT": ChainAccount.dev(CITY_DEV_ACCOUNT),
            "ANCHOR_INTERVAL_SECONDS": 3.0,  # a short batch interval: the demo is small
            "STATUS_TTL": 5,  # verifiers refetch status lists soon: a revocation shows at once
        }
    )
    worker.build(app.config, db_module.engine_of(app))  # a bad setting stops here
    db_module.engine_of(app).dispose()  # no database connection crosses the forks below
    # The verifier trusts only the chain's registry (data/chain.json), as in production,
    # and fetches link-mode presentations only from the wallet's relay: its origins.
    names = ["127.0.0.1", "localhost"] + ([host] if host not in ("0.0.0.0", "::") else [])
    relays = [f"http://{f'[{n}]' if ':' in n else n}:{wallet_port}" for n in dict.fromkeys(names)]
    # OpenID4VP requests name the demo city's 住民票 and are signed as
    # x509_san_dns:<a DNS name> with a self-signed certificate kept (0600) in the data
    # directory; their links use that name (a wallet checks that the response URI is
    # on it), so on this computer the verifier is http://localhost:<port>. Served at
    # another IP address (no DNS name), requests are unsigned (redirect_uri:).
    verifier_config: dict[str, Any] = {
        "DATA_DIR": data,
        "LINK_RELAYS": relays,
        "OID4VP_ISSUERS": [issuer_keys.load(data, PASSPHRASE).settings.issuer_id],
        "WALLET_URL": f"http://{shown}:{wallet_port}",
    }
    dns_name = verifier_dns_name(shown)
    if dns_name is not None:
        cert, cert_key = write_self_signed(data, dns_name, now=datetime.now(UTC))
        verifier_config |= {
            "X509_CERT": str(cert),
            "X509_KEY": str(cert_key),
            "VERIFIER_URL": f"http://{dns_name}:{verifier_port}",
        }
    verifier_app = create_verifier(verifier_config)
    wallet_app = create_wallet()
    # Each service in a process of its own, built here (a bad setting stops the demo
    # before anything listens); the same servers and defaults as `shomei … serve`.
    services = {
        "issuer": (
            port,
            lambda: issuer_cli.serve_app(
                app, host=host, port=port, options=_options(issuer_cli), anchoring=True
            ),
        ),
        "verifier": (
            verifier_port,
            lambda: serving.run(
                verifier_app,
                host=host,
                port=verifier_port,
                options=_options(verifier_cli),
                name="verifier",
            ),
        ),
        "wallet": (
            wallet_port,
            lambda: serving.run(
                wallet_app,
                host=host,
                port=wallet_port,
                options=_options(wallet_cli),
                name="wallet",
            ),
        ),
    }
    for name, (service_port, _run) in services.items():
        if not _bindable(host, service_port):
            click.echo(
                f"エラー: ポート {service_port} は使用中です / port {service_port} is in use "
                f"({name}; see --serve-port, --verifier-port, --wallet-port)",
                err=True,
            )
            return 2
    children: dict[str, int] = {}
    try:
        for name, (_port, run) in services.items():
            children[name] = processes.fork(run)
        for name, (service_port, _run) in services.items():
            if not processes.wait_listening(shown, service_port, pid=children[name], timeout=60):
                click.echo(
                    f"エラー: {name} を開始できません（ポート {service_port}）/ "
                    f"cannot serve the {name} on port {service_port}",
                    err=True,
                )
                processes.stop(list(children.values()), grace=DEFAULT_GRACE)
                return 1
        _welcome(data, shown, port, verifier_port, wallet_port, verifier_name=dns_name or shown)
        return processes.supervise(children, grace=DEFAULT_GRACE + 10)
    finally:  # an error above, or a second Ctrl-C while stopping: leave nothing behind
        processes.stop(list(children.values()), grace=2)


def verifier_dns_name(host: str) -> str | None:
    """The DNS name the demo verifier's certificate names when served on ``host``:
    ``localhost`` for a loopback address, the host itself when it is a name, None for
    another IP address (a dNSName names no address)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    return "localhost" if address.is_loopback else None


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _options(cli: Any) -> ServeOptions:
    """The defaults of ``shomei … serve`` for the service of ``cli``."""
    return ServeOptions(workers=cli.WORKERS, threads=cli.THREADS)


def _welcome(
    data: Path, shown: str, port: int, verifier_port: int, wallet_port: int, *, verifier_name: str
) -> None:
    settings = issuer_keys.load(data, PASSPHRASE).settings
    base = f"http://{shown}:{port}"
    echo = click.echo
    echo("\n職員用の画面 / issuer service for clerks:")
    echo(f"  {base}/")
    for username, role, display_name in DEMO_USERS:
        what = "監督者 / supervisor" if role == "supervisor" else "職員 / clerk"
        echo(f"  サインイン / sign in: {username} / {DEMO_PASSWORD}   （{display_name}, {what}）")
    echo(f"  発行者ID / issuer id: {settings.issuer_id}")
    echo("  証明書は数秒でブロックチェーンに記録されます / certificates anchor within seconds")
    echo("\n検証用の画面 / verifier for companies (no account):")
    echo(f"  http://{verifier_name}:{verifier_port}/")
    echo("  住所確認などの依頼（OpenID4VP）はウォレットで読み取る / wallets answer its requests")
    echo(f"  QRコードの画像で試す / try it with: {data / 'demo' / 'juminhyo-qr.png'}")
    echo("\n住民のウォレット / the resident's wallet (open it on a phone or a second window):")
    echo(f"  http://{shown}:{wallet_port}/")
    echo("  この端末で試す: 窓口の画面の「デモのウォレットで開く」で受け取り、提示したQRコードの")
    echo("  画像かテキストを検証用の画面へ / on this computer: 「デモのウォレットで開く」 on the")
    echo("  clerk's offer, then give the wallet's QR code (image or text) to the verifier")
    echo("  スマートフォンから: カメラと鍵には https が必要です（README のウォレットの節）")
    echo("  (a phone needs https for the camera and keys: see the README's wallet section)")
    echo("止めるには Ctrl-C / stop with Ctrl-C\n")
