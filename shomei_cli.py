"""The ``shomei`` command: keys, issuing, presenting and verifying credentials.

This is the composition root: the only module that wires the issuer-side core and the
verifier together. Secrets come from a prompt or ``SHOMEI_KEY_PASSPHRASE``, never from
an argument, and are never printed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from anchor import anchoring, files, merkle
from anchor import cli as anchor_cli
from anchor import evidence as anchor_evidence
from anchor.config import ChainConfig
from anchor.config import data_dir as config_data_dir
from credentials import doctypes, qr, sdjwt
from credentials.errors import InvalidCredential, ShomeiError, ValidationError
from credentials.keys import SigningKey, jwk_thumbprint
from issuer import cli as issuer_cli
from issuer.audit.cli import audit_group
from verifier import cli as verifier_cli
from verifier import documents, inputs
from verifier.agreements import tokens_in
from verifier.config import build_verifier
from verifier.policy import VerificationResult
from wallet_demo import cli as wallet_cli

PASSPHRASE_ENV = "SHOMEI_KEY_PASSPHRASE"
EXIT_VALID, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2
DAY = 86400


def _fail(err: ShomeiError | str, code: int = EXIT_UNUSABLE) -> None:
    click.echo(f"エラー: {err}", err=True)
    sys.exit(code)


def _passphrase(*, confirm: bool = False) -> str:
    secret = os.environ.get(PASSPHRASE_ENV)
    if secret:
        return secret
    if not sys.stdin.isatty():
        _fail(
            f"パスフレーズが必要です（{PASSPHRASE_ENV} を設定してください） / passphrase required"
        )
    return str(
        click.prompt(
            "鍵のパスフレーズ / key passphrase", hide_input=True, confirmation_prompt=confirm
        )
    )


def _load_key(path: str) -> SigningKey:
    try:
        pem = Path(path).read_bytes()
    except OSError as e:
        _fail(f"鍵ファイル {path} を読めません / cannot read key file: {e.strerror}")
    try:
        return SigningKey.from_encrypted_pem(pem, _passphrase())
    except ShomeiError as e:
        _fail(e)
    raise AssertionError("unreachable")


def _read_json(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        _fail(f"{what} {path} を読めません / cannot read {path}: {e}")


def _write(path: str | None, data: str | bytes) -> None:
    if path is None or path == "-":
        click.echo(data if isinstance(data, str) else data.decode())
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        p.write_text(data + ("" if data.endswith("\n") else "\n"), encoding="utf-8")
    else:
        p.write_bytes(data)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Shomei（証明）: tamper-evident municipal certificates."""
    # Before any command writes: keys, databases and outputs are for this user alone.
    files.restrict_umask()


# chain, account, registry, anchor, receipt: the operator's commands for the chain.
for _command in anchor_cli.COMMANDS:
    main.add_command(_command)
main.add_command(issuer_cli.issuer_group)
main.add_command(audit_group)
main.add_command(verifier_cli.verifier_group)
main.add_command(wallet_cli.wallet_group)


@main.command()
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="KEY.pem")
@click.option("--public-out", type=click.Path(dir_okay=False), help="write the public JWK here")
def keygen(out: str, public_out: str | None) -> None:
    """Generate an encrypted P-256 signing key; print its JWK thumbprint."""
    if Path(out).exists():
        _fail(f"{out} は既に存在します（上書きしません） / {out} exists, not overwriting")
    key = SigningKey.generate()
    pem = key.to_encrypted_pem(_passphrase(confirm=True))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    if public_out:
        _write(public_out, json.dumps(key.jwk, indent=2))
    click.echo(key.kid)


@main.command()
@click.argument("doc_type", metavar="TYPE", type=click.Choice(sorted(doctypes.DOCUMENT_TYPES)))
@click.option("--data", "data_path", required=True, help="CLAIMS.json")
@click.option("--key", "key_path", required=True, help="the issuer's KEY.pem")
@click.option("--issuer", "issuer", required=True, help="the issuer id (iss URL)")
@click.option("--holder-jwk", help="JWK.json of the holder's wallet key (binds cnf)")
@click.option("--valid-days", type=click.IntRange(1, 36500), help="validity in days")
@click.option("--decoys", type=click.IntRange(0, 32), default=0, show_default=True)
@click.option("--out", help="output file (default: standard output)")
@click.option(
    "--queue/--no-queue", default=None, help="queue for anchoring [default: if chain.json]"
)
@click.option(
    "--data-dir", envvar="SHOMEI_DATA_DIR", default="data", type=click.Path(path_type=Path)
)
def issue(
    doc_type: str,
    data_path: str,
    key_path: str,
    issuer: str,
    holder_jwk: str | None,
    valid_days: int | None,
    decoys: int,
    out: str | None,
    queue: bool | None,
    data_dir: Path,
) -> None:
    """Issue an SD-JWT VC of TYPE (juminhyo, partnership, contract) with all disclosures."""
    dt = doctypes.get(doc_type)
    try:
        claims = doctypes.validate_claims(doc_type, _read_json(data_path, "データ"))
    except ValidationError as e:
        for path, ja, en in e.errors:
            click.echo(f"  {path}: {ja} / {en}", err=True)
        _fail(e)
    holder = _read_json(holder_jwk, "JWK") if holder_jwk else None
    if holder is not None:
        try:
            jwk_thumbprint(holder)
            holder = {k: holder[k] for k in ("kty", "crv", "x", "y")}
        except (ShomeiError, KeyError, TypeError):
            _fail("所持者のJWKが不正です / the holder JWK is malformed")
    key = _load_key(key_path)
    now = int(time.time())
    days = valid_days or dt.default_validity_days
    cred = sdjwt.issue(
        claims,
        key=key,
        issuer=issuer,
        vct=dt.vct_for(issuer),
        iat=now,
        exp=now + days * DAY,
        always_plain=dt.never_disclosable,
        holder_jwk=holder,
        decoys=decoys,
    )
    # Queued before it goes out: an issued credential is never missing from the queue.
    try:
        if anchoring.queue_credential(config_data_dir(data_dir), cred.jwt, queue=queue, now=now):
            click.echo("記録待ちに追加しました / queued for anchoring (shomei anchor)", err=True)
    except ShomeiError as e:
        _fail(e)
    _write(out, cred.sd_jwt)


@main.command()
@click.argument("cred_path", metavar="CRED")
@click.option("--disclose", default="", help="comma-separated claim names to reveal")
@click.option("--qr", "qr_path", help="write the QR code here (PNG, or SVG by extension)")
@click.option("--mode", type=click.Choice(["embedded", "link"]), default="embedded")
@click.option("--relay", default="https://relay.shomei.invalid/r", help="link mode: relay base URL")
@click.option("--holder-key", help="wallet KEY.pem: add a key-binding JWT")
@click.option("--nonce", help="key binding: the verifier's nonce")
@click.option("--aud", help="key binding: the verifier's id")
@click.option(
    "--receipt", "receipt_path", help="anchor evidence (from `shomei receipt`) for the QR"
)
@click.option("--out", help="write the presentation here (default: standard output)")
def present(
    cred_path: str,
    disclose: str,
    qr_path: str | None,
    mode: str,
    relay: str,
    holder_key: str | None,
    nonce: str | None,
    aud: str | None,
    receipt_path: str | None,
    out: str | None,
) -> None:
    """Make the holder's presentation revealing only the chosen claims; the QR code
    carries the anchor evidence when ``--receipt`` is given."""
    evidence = _read_receipt(receipt_path) if receipt_path else None
    try:
        cred = Path(cred_path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        _fail(f"{cred_path} を読めません / cannot read: {e}")
    names = [n.strip() for n in disclose.split(",") if n.strip()]
    key = _load_key(holder_key) if holder_key else None
    try:
        text = sdjwt.present(
            cred,
            disclose=names,
            holder_key=key,
            nonce=nonce or (os.urandom(12).hex() if key else None),
            aud=aud or ("https://verifier.shomei.invalid" if key else None),
            iat=int(time.time()) if key else None,
        )
    except ValueError as e:
        _fail(str(e))
    except ShomeiError as e:
        _fail(e)
    if mode == "link":
        ref = qr.LinkRef.new(relay)
        blob_path = (out or "presentation") + ".blob"
        _write(blob_path, qr.seal(text, ref, evidence=evidence))
        payload = ref.to_url()
        click.echo(f"暗号化した提示データ / sealed blob: {blob_path} (upload to {relay})", err=True)
    else:
        payload = qr.encode_embedded(text, evidence)
        _write(out, text)
    if qr_path:
        image = qr.render_svg(payload) if qr_path.endswith(".svg") else qr.render_png(payload)
        _write(qr_path, image)
        click.echo(f"QR: {qr_path} (version {qr.qr_version(payload)})", err=True)
    elif mode == "link":
        click.echo(payload)


def _read_receipt(path: str) -> bytes:
    """The anchor evidence bytes of a receipt file written by ``shomei receipt``."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return anchor_evidence.encode_receipt(merkle.Receipt.from_json(doc["receipt"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        _fail(f"記録の証明 {path} を読めません / cannot read receipt {path}: {e}")
    except ShomeiError as e:
        _fail(e)
    raise AssertionError("unreachable")


def _describe(result: VerificationResult) -> str:
    marks = {"pass": "✔", "fail": "✘", "warn": "!", "skip": "-"}
    lines = [
        f"判定: {'有効' if result.valid else '無効'} ({result.verdict})",
    ]
    if result.document_type:
        lines.append(f"種類: {doctypes.get(result.document_type).title('ja')}")
    if result.issuer:
        lines.append(
            f"発行者: {result.issuer.name}（{result.issuer.municipality_code}） {result.issuer.id}"
        )
    if result.anchor:
        a = result.anchor
        lines.append(
            f"記録: ブロック {a['block']}、{a['timestamp']}、取引 {a['tx']}"
            f"（chain id {a['chain_id']}）"
        )
    lines.append("確認項目 / checks:")
    lines += [f"  {marks[c.status]} {c.id:<11} {c.ja}  ({c.en})" for c in result.checks]
    if result.disclosed:
        dt = doctypes.get(result.document_type) if result.document_type else None
        lines.append("開示された項目 / disclosed:")
        for name, value in result.disclosed.items():
            label = dt.label(name, "ja") if dt else name
            shown = _show(value)
            lines.append(f"  {label} ({name}): {shown}")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, str):
        try:
            return doctypes.format_date(value, "ja")
        except ValueError:
            return value
    return json.dumps(value, ensure_ascii=False)


@main.command()
@click.argument("source", required=False, metavar="[FILE|-]")
@click.option("--image", "image_path", help="a photo or screenshot of the QR code")
@click.option("--pdf", "pdf_path", help="the contract PDF to compare with document_sha256")
@click.option("--trust", "trust_path", help="TRUST.json (trusted issuers and keys)")
@click.option("--snapshot", "snapshot_path", help="a governance-signed registry snapshot")
@click.option("--governance", help="the governance address the snapshot must be signed by")
@click.option("--receipt", "receipt_path", help="anchor evidence for an SD-JWT given as text")
@click.option("--offline", is_flag=True, help="do not contact the chain or status lists")
@click.option("--data-dir", help="where chain.json is (default: SHOMEI_DATA_DIR or ./data)")
@click.option("--nonce", help="expected key-binding nonce")
@click.option("--aud", help="expected key-binding audience")
@click.option("--at", "at", help="verify as of this ISO 8601 time (default: now)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def verify(
    source: str | None,
    image_path: str | None,
    pdf_path: str | None,
    trust_path: str | None,
    snapshot_path: str | None,
    governance: str | None,
    receipt_path: str | None,
    offline: bool,
    data_dir: str | None,
    nonce: str | None,
    aud: str | None,
    at: str | None,
    as_json: bool,
) -> None:
    """Verify a credential, presentation, QR payload or QR image.

    Trust comes from the registry on the configured chain (chain.json or
    SHOMEI_RPC_URLS / SHOMEI_CHAIN_ID / SHOMEI_REGISTRY_ADDRESS), a trust file, or a
    registry snapshot. Exit status: 0 valid, 1 invalid, 2 unusable input.
    """
    data = _read_input(source, image_path)
    document = None
    if pdf_path:
        try:
            document = documents.read_pdf(Path(pdf_path).read_bytes())
        except OSError as e:
            _fail(f"{pdf_path} を読めません / cannot read: {e.strerror}")
        except documents.DocumentError as e:
            _fail(e)
    try:
        verifier = build_verifier(
            chain=None if offline else ChainConfig.load(config_data_dir(data_dir)),
            trust_file=trust_path,
            snapshot_file=snapshot_path,
            governance=governance,
            offline=offline,
        )
    except ShomeiError as e:
        _fail(e)
    now = time.time()
    if at:
        try:
            now = datetime.fromisoformat(at).timestamp()
        except ValueError:
            _fail(f"--at の日時が不正です / bad --at time: {at}")
    try:
        pres = inputs.from_bytes(data)
    except inputs.InputError as e:
        _fail(e)
        raise
    except InvalidCredential as e:
        result = VerificationResult.malformed(e)
    else:
        evidence = _read_receipt(receipt_path) if receipt_path else pres.evidence
        result = verifier.verify(
            pres.text,
            now=now,
            nonce=nonce,
            aud=aud,
            evidence=evidence,
            document=document.data if document else None,
            document_revisions=document.revisions if document else (),
            agreement_tokens=tokens_in(a.text() for a in document.attachments) if document else (),
        )
    click.echo(
        json.dumps(result.to_json(), ensure_ascii=False, indent=2) if as_json else _describe(result)
    )
    sys.exit(EXIT_VALID if result.valid else EXIT_INVALID)


def _read_input(source: str | None, image_path: str | None) -> bytes:
    if image_path:
        source = image_path
    if source is None or source == "-":
        return sys.stdin.buffer.read(inputs.MAX_INPUT + 1)
    try:
        return Path(source).read_bytes()
    except OSError as e:
        _fail(f"{source} を読めません / cannot read: {e.strerror}")
    raise AssertionError("unreachable")


@main.command()
@click.option("--data-dir", help="default: SHOMEI_DATA_DIR or ./data")
@click.option("--port", type=click.IntRange(1, 65535), help="local chain port (default 8545)")
@click.option(
    "--serve-port",
    type=click.IntRange(1, 65535),
    default=5000,
    show_default=True,
    help="the issuer service's port",
)
@click.option(
    "--verifier-port",
    type=click.IntRange(1, 65535),
    help="the verifier's port (default: the issuer's + 100)",
)
@click.option(
    "--wallet-port",
    type=click.IntRange(1, 65535),
    help="the wallet's port (default: the issuer's + 200)",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="bind address of the services (0.0.0.0: other devices on the LAN; a phone's "
    "wallet also needs https, see the README)",
)
@click.option("--serve/--no-serve", default=True, help="serve the services after the checks")
def demo(
    data_dir: str | None,
    port: int | None,
    serve_port: int,
    verifier_port: int | None,
    wallet_port: int | None,
    host: str,
    serve: bool,
) -> None:
    """Start a local chain, issue and anchor one credential of each type, present a
    住民票 as a QR code with its anchor evidence and verify it; then serve the issuer
    service (with its anchoring worker), the verifier and the wallet until Ctrl-C."""
    from shomei_demo import run_demo  # the demo alone needs the node tooling
    from shomei_demo import serve as serve_services

    directory = config_data_dir(data_dir)
    try:
        run_demo(directory, port=port, describe=_describe, serve_port=serve_port)
        if serve:
            sys.exit(
                serve_services(
                    directory,
                    host=host,
                    port=serve_port,
                    verifier_port=verifier_port,
                    wallet_port=wallet_port,
                )
            )
    except ShomeiError as e:
        _fail(e)


if __name__ == "__main__":
    main()
