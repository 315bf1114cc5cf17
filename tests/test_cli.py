"""``shomei`` end to end, as a clerk and a company would run it (subprocesses)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from credentials import doctypes, sdjwt
from credentials.keys import jwk_thumbprint
from credentials.trust import TrustList

SHOMEI = Path(sys.executable).with_name("shomei")
ISSUER = "https://city.iizuka.example"
PASSPHRASE = "correct horse battery 証明"
NONCE = "cli-nonce-5d1e"
AUD = "https://company.example.jp"


def shomei(
    *args: str | Path, passphrase: str | None = PASSPHRASE, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed command; the passphrase only ever travels in the environment."""
    env = {k: v for k, v in os.environ.items() if k != "SHOMEI_KEY_PASSPHRASE"}
    env["PYTHONWARNINGS"] = "error"
    if passphrase is not None:
        env["SHOMEI_KEY_PASSPHRASE"] = passphrase
    run = subprocess.run(
        [str(SHOMEI), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert "Traceback" not in out, out
    if passphrase:
        assert passphrase not in out, "the passphrase is never printed"
    return run


@dataclass(frozen=True)
class Setup:
    dir: Path
    key: Path
    kid: str
    wallet: Path
    wallet_jwk: Path
    trust: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    d = tmp_path_factory.mktemp("cli")
    run = shomei("keygen", "--out", d / "issuer.pem", "--public-out", d / "issuer.jwk.json")
    assert run.returncode == 0, run.stderr
    kid = run.stdout.strip()
    wallet = shomei("keygen", "--out", d / "wallet.pem", "--public-out", d / "wallet.jwk.json")
    assert wallet.returncode == 0, wallet.stderr
    jwk = json.loads((d / "issuer.jwk.json").read_text())
    trust = TrustList.document(ISSUER, name="飯塚市", municipality_code="402052", jwks=[jwk])
    (d / "TRUST.json").write_text(json.dumps(trust, ensure_ascii=False), encoding="utf-8")
    return Setup(
        d, d / "issuer.pem", kid, d / "wallet.pem", d / "wallet.jwk.json", d / "TRUST.json"
    )


def write_claims(path: Path, claims: Any) -> Path:
    path.write_text(json.dumps(claims, ensure_ascii=False), encoding="utf-8")
    return path


def verify_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    run = shomei("verify", *args, "--json")
    return run.returncode, json.loads(run.stdout)


def check(result: dict[str, Any], check_id: str) -> dict[str, str]:
    return next(c for c in result["checks"] if c["id"] == check_id)


# --------------------------------------------------------------------------- keygen


def test_keygen_writes_an_encrypted_key_and_prints_its_thumbprint(setup):
    pem = setup.key.read_text()
    assert "-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem
    assert PASSPHRASE not in pem and PASSPHRASE.encode() not in setup.key.read_bytes()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", setup.kid), "stdout is only the thumbprint"
    jwk = json.loads((setup.dir / "issuer.jwk.json").read_text())
    assert "d" not in jwk, "the public JWK file has no private part"
    assert jwk_thumbprint(jwk) == setup.kid
    assert setup.key.stat().st_mode & 0o077 == 0, "the key file is private to its owner"


def test_keygen_never_overwrites(setup):
    before = setup.key.read_bytes()
    run = shomei("keygen", "--out", setup.key)
    assert run.returncode == 2
    assert "上書きしません" in run.stderr
    assert setup.key.read_bytes() == before


def test_keygen_without_passphrase_and_no_terminal_fails_clearly(tmp_path):
    run = shomei("keygen", "--out", tmp_path / "k.pem", passphrase=None)
    assert run.returncode == 2
    assert "SHOMEI_KEY_PASSPHRASE" in run.stderr
    assert not (tmp_path / "k.pem").exists()


# --------------------------------------------------------------------------- issue


@pytest.mark.parametrize("doc_type", sorted(doctypes.DOCUMENT_TYPES))
def test_issue_each_type_from_sample_data(setup, doc_type, tmp_path):
    data = write_claims(tmp_path / "CLAIMS.json", doctypes.SAMPLES[doc_type])
    out = tmp_path / f"{doc_type}.sd-jwt"
    run = shomei(
        "issue",
        doc_type,
        "--data",
        data,
        "--key",
        setup.key,
        "--issuer",
        ISSUER,
        "--holder-jwk",
        setup.wallet_jwk,
        "--out",
        out,
    )
    assert run.returncode == 0, run.stderr
    text = out.read_text().strip()
    trust = TrustList.load(setup.trust)
    v = sdjwt.verify(text, resolve_key=trust.resolve_key, now=time.time())
    dt = doctypes.get(doc_type)
    assert v.vct == dt.vct_for(ISSUER)
    assert v.kid == setup.kid
    assert v.disclosed == doctypes.validate_claims(doc_type, doctypes.SAMPLES[doc_type])
    assert v.payload["cnf"]["jwk"] == json.loads(setup.wallet_jwk.read_text())
    for name in dt.never_disclosable:
        assert name in v.payload, f"{name} is issued in the clear"
    code, result = verify_json(out, "--trust", setup.trust)
    assert code == 0, result
    assert result["verdict"] == "valid"
    assert result["document_type"] == doc_type
    assert result["issuer"] == {"id": ISSUER, "name": "飯塚市", "municipality_code": "402052"}


def test_issue_with_invalid_claims_names_each_field_in_japanese(setup, tmp_path):
    claims = {**doctypes.SAMPLES["juminhyo"], "sex": "不明", "birthdate": "1980-02-30"}
    del claims["family_name"]
    data = write_claims(tmp_path / "CLAIMS.json", claims)
    out = tmp_path / "never.sd-jwt"
    run = shomei(
        "issue", "juminhyo", "--data", data, "--key", setup.key, "--issuer", ISSUER, "--out", out
    )
    assert run.returncode == 2
    assert not out.exists(), "nothing is written for invalid claims"
    lines = run.stderr.splitlines()
    for field, label in (("family_name", "氏"), ("sex", "性別"), ("birthdate", "生年月日")):
        assert any(line.strip().startswith(f"{field}: {label}") for line in lines), run.stderr
    assert "入力内容に誤りがあります" in run.stderr


def test_issue_with_wrong_passphrase_fails_clearly(setup, tmp_path):
    data = write_claims(tmp_path / "CLAIMS.json", doctypes.SAMPLES["juminhyo"])
    run = shomei(
        "issue",
        "juminhyo",
        "--data",
        data,
        "--key",
        setup.key,
        "--issuer",
        ISSUER,
        passphrase="not the passphrase",
    )
    assert run.returncode == 2
    assert "パスフレーズが違う" in run.stderr and "wrong passphrase" in run.stderr
    assert run.stdout == ""


def test_issue_with_missing_data_file_fails_clearly(setup, tmp_path):
    run = shomei(
        "issue",
        "juminhyo",
        "--data",
        tmp_path / "nope.json",
        "--key",
        setup.key,
        "--issuer",
        ISSUER,
    )
    assert run.returncode == 2
    assert "nope.json" in run.stderr


# --------------------------------------------------------------------------- present, verify


@pytest.fixture(scope="module")
def juminhyo(setup: Setup) -> Path:
    data = write_claims(setup.dir / "juminhyo.json", doctypes.SAMPLES["juminhyo"])
    out = setup.dir / "juminhyo.sd-jwt"
    run = shomei(
        "issue",
        "juminhyo",
        "--data",
        data,
        "--key",
        setup.key,
        "--issuer",
        ISSUER,
        "--holder-jwk",
        setup.wallet_jwk,
        "--out",
        out,
    )
    assert run.returncode == 0, run.stderr
    return out


def test_present_qr_and_verify_image(setup, juminhyo, tmp_path):
    shown = ["family_name", "given_name", "birthdate", "address"]
    png = tmp_path / "qr.png"
    out = tmp_path / "presentation.txt"
    run = shomei("present", juminhyo, "--disclose", ",".join(shown), "--qr", png, "--out", out)
    assert run.returncode == 0, run.stderr
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert out.read_text().strip().count("~") == len(shown) + 1
    code, result = verify_json("--image", png, "--trust", setup.trust)
    assert code == 0, result
    assert result["verdict"] == "valid"
    sample = doctypes.SAMPLES["juminhyo"]
    assert result["disclosed"] == {n: sample[n] for n in shown}, "exactly the chosen claims"
    anchor = check(result, "anchor")
    assert anchor["status"] == "skip"
    assert anchor["message_ja"] and anchor["message_en"], "a skip says why"
    assert check(result, "holder")["status"] == "warn", "no key binding on a screen QR"


def test_present_with_key_binding_and_verify_nonce(setup, juminhyo, tmp_path):
    out = tmp_path / "kb.txt"
    run = shomei(
        "present",
        juminhyo,
        "--disclose",
        "address",
        "--holder-key",
        setup.wallet,
        "--nonce",
        NONCE,
        "--aud",
        AUD,
        "--out",
        out,
    )
    assert run.returncode == 0, run.stderr
    code, result = verify_json(out, "--trust", setup.trust, "--nonce", NONCE, "--aud", AUD)
    assert code == 0, result
    assert check(result, "holder")["status"] == "pass"
    assert result["disclosed"] == {"address": doctypes.SAMPLES["juminhyo"]["address"]}
    code, result = verify_json(out, "--trust", setup.trust, "--nonce", "another", "--aud", AUD)
    assert code == 1
    assert "nonce" in check(result, "holder")["message_en"]


def test_present_unknown_claim_fails_clearly(juminhyo):
    run = shomei("present", juminhyo, "--disclose", "family_name,nickname")
    assert run.returncode == 2
    assert "この証明書にない項目です: nickname" in run.stderr


def test_verify_far_in_the_future_is_expired(setup, juminhyo):
    code, result = verify_json(
        juminhyo, "--trust", setup.trust, "--at", "2100-01-01T00:00:00+09:00"
    )
    assert code == 1
    assert result["verdict"] == "invalid"
    validity = check(result, "validity")
    assert validity["status"] == "fail"
    assert "有効期限が切れています" in validity["message_ja"]


def test_verify_without_trust_says_untrusted_issuer(juminhyo):
    code, result = verify_json(juminhyo)
    assert code == 1
    assert check(result, "issuer")["status"] == "fail"
    assert "信頼された発行者ではありません" in check(result, "issuer")["message_ja"]


def test_verify_human_output_is_japanese_first(setup, juminhyo):
    run = shomei("verify", juminhyo, "--trust", setup.trust)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("判定: 有効 (valid)")
    assert "住所 (address): " in run.stdout


def test_verify_reads_standard_input(setup, juminhyo):
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    run = subprocess.run(
        [str(SHOMEI), "verify", "-", "--trust", str(setup.trust), "--json"],
        input=juminhyo.read_text(),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["verdict"] == "valid"


def test_verify_bad_at_time_is_unusable(setup, juminhyo):
    run = shomei("verify", juminhyo, "--trust", setup.trust, "--at", "next tuesday")
    assert run.returncode == 2
    assert "--at" in run.stderr
