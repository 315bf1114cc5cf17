"""Tamper corpus: mutations of one valid 住民票 presentation, each rejected by the
verifier policy and by ``shomei verify`` (exit 1, JSON result, no traceback)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from PIL import Image

from credentials import doctypes, sdjwt
from credentials.keys import SigningKey
from credentials.trust import TrustList
from shomei_cli import main
from verifier.policy import Verifier

ISSUER = "https://city.iizuka.example"
NEIGHBOR = "https://city.kama.example"
T0 = 1_760_000_000  # 2025-10-09T08:53:20Z: iat of the credential
NOW = T0 + 3600
NOW_ISO = datetime.fromtimestamp(NOW, UTC).isoformat()
DAY = 86_400
NONCE = "tamper-nonce-7f3a"
AUD = "https://verifier.example.jp"
SHOWN = ("family_name", "given_name", "birthdate", "address")
SHOMEI = Path(sys.executable).with_name("shomei")


# --------------------------------------------------------------------------- helpers


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def enc(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())


def dec(part: str) -> Any:
    return json.loads(unb64(part))


def es256(signing_input: str, key: SigningKey) -> str:
    der = key.private_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def jws(header: dict[str, Any], payload: dict[str, Any], key: SigningKey) -> str:
    signing_input = f"{enc(header)}.{enc(payload)}"
    return f"{signing_input}.{es256(signing_input, key)}"


def digest(disclosure: str) -> str:
    return b64(hashlib.sha256(disclosure.encode("ascii")).digest())


@dataclass(frozen=True)
class Parts:
    """A presentation split into issuer JWT, disclosures and key-binding JWT."""

    jwt: str
    disclosures: tuple[str, ...]
    kb: str

    @classmethod
    def of(cls, text: str) -> Parts:
        parts = text.split("~")
        return cls(parts[0], tuple(parts[1:-1]), parts[-1])

    @property
    def header(self) -> dict[str, Any]:
        return dec(self.jwt.split(".")[0])

    @property
    def payload(self) -> dict[str, Any]:
        return dec(self.jwt.split(".")[1])

    @property
    def signature(self) -> str:
        return self.jwt.split(".")[2]

    def text(
        self,
        *,
        jwt: str | None = None,
        disclosures: tuple[str, ...] | None = None,
        kb: str | None = None,
    ) -> str:
        d = self.disclosures if disclosures is None else disclosures
        return "~".join([jwt or self.jwt, *d]) + "~" + (self.kb if kb is None else kb)

    def with_jwt(self, header: dict[str, Any], payload: dict[str, Any], sig: str) -> str:
        return self.text(jwt=f"{enc(header)}.{enc(payload)}.{sig}")


def kb_jwt(prefix: str, key: SigningKey, *, nonce: str = NONCE, iat: int = NOW - 5) -> str:
    """A key-binding JWT over ``prefix`` (everything up to and including the last '~')."""
    payload = {"aud": AUD, "iat": iat, "nonce": nonce, "sd_hash": digest(prefix)}
    return jws({"alg": "ES256", "typ": "kb+jwt"}, payload, key)


def rebind(text: str, key: SigningKey) -> str:
    """Replace the key-binding JWT by a fresh one over the (altered) presentation."""
    prefix = text.rpartition("~")[0] + "~"
    return prefix + kb_jwt(prefix, key)


@dataclass(frozen=True)
class Ctx:
    issuer_key: SigningKey
    holder_key: SigningKey
    attacker_key: SigningKey
    neighbor_key: SigningKey
    credential: str  # the full SD-JWT VC as the wallet holds it
    other_credential: str  # a second 住民票 for the same holder
    presentation: str  # the valid presentation every case mutates

    @property
    def parts(self) -> Parts:
        return Parts.of(self.presentation)

    def issue(self, **times: int) -> str:
        """A fresh 住民票 with other times, presented with a valid key binding."""
        args: dict[str, Any] = {"iat": T0, "exp": T0 + 92 * DAY, **times}
        cred = sdjwt.issue(
            doctypes.sample("juminhyo"),
            key=self.issuer_key,
            issuer=ISSUER,
            vct=doctypes.get("juminhyo").vct_for(ISSUER),
            holder_jwk=self.holder_key.jwk,
            **args,
        )
        return present(cred.sd_jwt, self.holder_key)


def present(credential: str, key: SigningKey, shown: tuple[str, ...] = SHOWN) -> str:
    return sdjwt.present(
        credential, disclose=shown, holder_key=key, nonce=NONCE, aud=AUD, iat=NOW - 5
    )


#: name -> (build the tampered text, {failing check id: message regex})
Builder = Callable[[Ctx], str]
CASES: dict[str, tuple[Builder, dict[str, str]]] = {}


def case(name: str, **fails: str) -> Callable[[Builder], Builder]:
    def register(build: Builder) -> Builder:
        assert name not in CASES, f"duplicate case {name}"
        CASES[name] = (build, fails)
        return build

    return register


# --------------------------------------------------------------------------- header


def _header_edit(c: Ctx, **changes: Any) -> str:
    p = c.parts
    header = {k: v for k, v in {**p.header, **changes}.items() if v is not None}
    return p.with_jwt(header, p.payload, p.signature)


@case("alg_none", signature=r"algorithm 'none' is not accepted \(ES256 only\)")
def _(c: Ctx) -> str:
    p = c.parts
    return p.with_jwt({**p.header, "alg": "none"}, p.payload, "")


@case("alg_hs256_public_key_as_hmac_secret", signature="algorithm 'HS256' is not accepted")
def _(c: Ctx) -> str:
    p = c.parts
    secret = c.issuer_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{enc({**p.header, 'alg': 'HS256'})}.{enc(p.payload)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return p.text(jwt=f"{signing_input}.{b64(mac)}")


@case("alg_rs256", signature="algorithm 'RS256' is not accepted")
def _(c: Ctx) -> str:
    return _header_edit(c, alg="RS256")


@case("typ_missing", signature=r"typ is None, expected dc\+sd-jwt")
def _(c: Ctx) -> str:
    return _header_edit(c, typ=None)


@case("typ_jwt", signature=r"typ is 'JWT', expected dc\+sd-jwt")
def _(c: Ctx) -> str:
    return _header_edit(c, typ="JWT")


@case("typ_vc_sd_jwt", signature=r"typ is 'vc\+sd-jwt', expected dc\+sd-jwt")
def _(c: Ctx) -> str:
    return _header_edit(c, typ="vc+sd-jwt")


@case("kid_changed", signature=r"key [\w-]+ is not registered for issuer 飯塚市")
def _(c: Ctx) -> str:
    return _header_edit(c, kid=c.attacker_key.kid)


@case("kid_removed", signature=r"no key id \(kid\)")
def _(c: Ctx) -> str:
    return _header_edit(c, kid=None)


@case("crit_added", signature="critical extensions this verifier does not understand")
def _(c: Ctx) -> str:
    return _header_edit(c, crit=["status"], status="must-understand")


@case("jwk_header_injection", signature=r"key [\w-]+ is not registered for issuer")
def _(c: Ctx) -> str:
    p = c.parts
    header = {**p.header, "jwk": c.attacker_key.jwk, "kid": c.attacker_key.kid}
    return p.text(jwt=jws(header, p.payload, c.attacker_key))


@case("jwk_header_injection_with_issuer_kid", signature="signature does not match")
def _(c: Ctx) -> str:
    p = c.parts
    return p.text(jwt=jws({**p.header, "jwk": c.attacker_key.jwk}, p.payload, c.attacker_key))


# --------------------------------------------------------------------------- payload


def _payload_edit(c: Ctx, **changes: Any) -> str:
    p = c.parts
    return p.with_jwt(p.header, {**p.payload, **changes}, p.signature)


@case("iss_changed", format=r"unsupported credential type")
def _(c: Ctx) -> str:
    return _payload_edit(c, iss="https://evil.example")


@case("iss_and_vct_of_untrusted_issuer", issuer=r"not a trusted issuer \(https://evil\.example\)")
def _(c: Ctx) -> str:
    evil = "https://evil.example"
    return _payload_edit(c, iss=evil, vct=doctypes.get("juminhyo").vct_for(evil))


@case("iss_and_vct_of_another_trusted_issuer", signature="is not registered for issuer 嘉麻市")
def _(c: Ctx) -> str:
    return _payload_edit(c, iss=NEIGHBOR, vct=doctypes.get("juminhyo").vct_for(NEIGHBOR))


@case("vct_changed_to_partnership", signature="signature does not match")
def _(c: Ctx) -> str:
    return _payload_edit(c, vct=doctypes.get("partnership").vct_for(ISSUER))


@case("exp_extended", signature="signature does not match")
def _(c: Ctx) -> str:
    return _payload_edit(c, exp=c.parts.payload["exp"] + 3650 * DAY)


@case("sd_digest_replaced", signature="signature does not match")
def _(c: Ctx) -> str:
    p = c.parts
    original = p.disclosures[0]
    salt, name, _ = dec(original)
    forged = enc([salt, name, "田中"])
    sd = [digest(forged) if d == digest(original) else d for d in p.payload["_sd"]]
    text = p.text(
        jwt=f"{enc(p.header)}.{enc({**p.payload, '_sd': sd})}.{p.signature}",
        disclosures=(forged, *p.disclosures[1:]),
    )
    return rebind(text, c.holder_key)


@case("sd_alg_changed", signature="signature does not match")
def _(c: Ctx) -> str:
    return _payload_edit(c, _sd_alg="sha-512")


@case("cnf_replaced", signature="signature does not match")
def _(c: Ctx) -> str:
    return rebind(_payload_edit(c, cnf={"jwk": c.attacker_key.jwk}), c.attacker_key)


@case("payload_reencoded_with_spaces", signature="signature does not match")
def _(c: Ctx) -> str:
    p = c.parts
    spaced = b64(json.dumps(p.payload).encode())
    return p.text(jwt=f"{enc(p.header)}.{spaced}.{p.signature}")


# --------------------------------------------------------------------------- signature


@case("signature_bit_flipped", signature="signature does not match")
def _(c: Ctx) -> str:
    p = c.parts
    sig = bytearray(unb64(p.signature))
    sig[10] ^= 0x01
    return p.with_jwt(p.header, p.payload, b64(bytes(sig)))


@case("signature_truncated", signature="signature has the wrong length")
def _(c: Ctx) -> str:
    p = c.parts
    return p.with_jwt(p.header, p.payload, p.signature[:-2])  # 84 chars: 63 bytes


@case("signature_empty", signature="signature has the wrong length")
def _(c: Ctx) -> str:
    p = c.parts
    return p.with_jwt(p.header, p.payload, "")


@case("signature_from_another_credential", signature="signature does not match")
def _(c: Ctx) -> str:
    p = c.parts
    return p.with_jwt(p.header, p.payload, Parts.of(c.other_credential).signature)


# --------------------------------------------------------------------------- disclosures


@case("foreign_disclosure", disclosures="not referenced by the signed payload")
def _(c: Ctx) -> str:
    p = c.parts
    foreign = Parts.of(c.other_credential).disclosures[0]  # the other family_name
    return rebind(p.text(disclosures=(foreign, *p.disclosures[1:])), c.holder_key)


@case(
    "foreign_disclosure_keeping_kb",
    disclosures="not referenced by the signed payload",
    holder=r"does not cover this presentation \(sd_hash\)",
)
def _(c: Ctx) -> str:
    p = c.parts
    foreign = Parts.of(c.other_credential).disclosures[0]
    return p.text(disclosures=(foreign, *p.disclosures[1:]))


@case("disclosure_duplicated", disclosures="the same disclosure is included twice")
def _(c: Ctx) -> str:
    p = c.parts
    return rebind(p.text(disclosures=(*p.disclosures, p.disclosures[0])), c.holder_key)


@case("disclosure_reencoded_with_space", disclosures="not referenced by the signed payload")
def _(c: Ctx) -> str:
    p = c.parts
    spaced = b64(json.dumps(dec(p.disclosures[0]), ensure_ascii=False).encode())
    return rebind(p.text(disclosures=(spaced, *p.disclosures[1:])), c.holder_key)


@case("disclosure_reencoded_with_padding", disclosures="a disclosure cannot be parsed")
def _(c: Ctx) -> str:
    p = c.parts
    padded = next(d for d in p.disclosures if len(d) % 4)
    padded += "=" * (-len(padded) % 4)
    changed = tuple(padded if d.rstrip("=") == padded.rstrip("=") else d for d in p.disclosures)
    return rebind(p.text(disclosures=changed), c.holder_key)


@case("disclosure_value_edited", disclosures="not referenced by the signed payload")
def _(c: Ctx) -> str:
    p = c.parts
    salt, name, _ = dec(p.disclosures[0])
    return rebind(p.text(disclosures=(enc([salt, name, "田中"]), *p.disclosures[1:])), c.holder_key)


@case("disclosure_name_edited", disclosures="not referenced by the signed payload")
def _(c: Ctx) -> str:
    p = c.parts
    salt, _, value = dec(p.disclosures[0])
    return rebind(
        p.text(disclosures=(enc([salt, "head_of_household", value]), *p.disclosures[1:])),
        c.holder_key,
    )


# --------------------------------------------------------------------------- whole string


@case("truncated_in_disclosures", holder="key-binding JWT is not a compact JWS")
def _(c: Ctx) -> str:
    p = c.parts
    return c.presentation[: len(p.jwt) + 1 + len(p.disclosures[0]) // 2]


@case("truncated_in_kb_signature", holder="key-binding JWT signature has the wrong length")
def _(c: Ctx) -> str:
    return c.presentation[:-22]  # 64 of 86 characters: 48 bytes


@case(
    "trailing_garbage_segment",
    disclosures="a disclosure cannot be parsed",
    holder="key-binding JWT is not a compact JWS",
)
def _(c: Ctx) -> str:
    return c.presentation + "~AAAAgarbage"


@case("trailing_garbage_on_kb", holder=r"key-binding JWT is not a compact JWS")
def _(c: Ctx) -> str:
    return c.presentation + ".Zm9v"


# --------------------------------------------------------------------------- key binding


@case("kb_removed_when_required", holder="no key-binding JWT")
def _(c: Ctx) -> str:
    return c.parts.text(kb="")


@case("kb_from_another_presentation", holder=r"does not cover this presentation \(sd_hash\)")
def _(c: Ctx) -> str:
    other = present(c.credential, c.holder_key, ("family_name", "sex"))
    return c.parts.text(kb=Parts.of(other).kb)


@case("kb_signed_by_attacker", holder="key-binding JWT signature does not match")
def _(c: Ctx) -> str:
    return rebind(c.presentation, c.attacker_key)


@case("kb_replayed_with_old_nonce", holder="key-binding JWT nonce does not match")
def _(c: Ctx) -> str:
    prefix = c.parts.text(kb="")
    return prefix + kb_jwt(prefix, c.holder_key, nonce="yesterdays-nonce")


@case("kb_stale", holder="stale or from the future")
def _(c: Ctx) -> str:
    prefix = c.parts.text(kb="")
    return prefix + kb_jwt(prefix, c.holder_key, iat=NOW - DAY)


@case("disclosure_removed_after_kb", holder=r"does not cover this presentation \(sd_hash\)")
def _(c: Ctx) -> str:
    p = c.parts
    return p.text(disclosures=p.disclosures[1:])


# --------------------------------------------------------------------------- validity


@case("expired", validity=r"the credential has expired \(exp\)")
def _(c: Ctx) -> str:
    return c.issue(iat=T0 - 100 * DAY, exp=T0 - 8 * DAY)


@case("not_yet_valid", validity=r"the credential is not yet valid \(nbf\)")
def _(c: Ctx) -> str:
    return c.issue(nbf=NOW + DAY)


@case("issued_in_the_future", validity=r"issued in the future \(iat\)")
def _(c: Ctx) -> str:
    return c.issue(iat=NOW + 3600)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def neighbor_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def trust_doc(issuer_key: SigningKey, neighbor_key: SigningKey) -> dict[str, Any]:
    doc = TrustList.document(
        ISSUER, name="飯塚市", municipality_code="402052", jwks=[issuer_key.jwk]
    )
    doc["issuers"].update(
        TrustList.document(
            NEIGHBOR, name="嘉麻市", municipality_code="402281", jwks=[neighbor_key.jwk]
        )["issuers"]
    )
    return doc


@pytest.fixture(scope="module")
def trust_file(tmp_path_factory: pytest.TempPathFactory, trust_doc: dict[str, Any]) -> Path:
    path = tmp_path_factory.mktemp("trust") / "TRUST.json"
    path.write_text(json.dumps(trust_doc, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def verifier(trust_doc: dict[str, Any]) -> Verifier:
    return Verifier(trust=TrustList.from_json(trust_doc))


@pytest.fixture(scope="module")
def ctx(issuer_key, holder_key, attacker_key, neighbor_key) -> Ctx:
    dt = doctypes.get("juminhyo")
    claims = doctypes.validate_claims("juminhyo", doctypes.sample("juminhyo"))

    def issue() -> str:
        return sdjwt.issue(
            claims,
            key=issuer_key,
            issuer=ISSUER,
            vct=dt.vct_for(ISSUER),
            iat=T0,
            exp=T0 + dt.default_validity_days * DAY,
            holder_jwk=holder_key.jwk,
        ).sd_jwt

    credential = issue()
    return Ctx(
        issuer_key=issuer_key,
        holder_key=holder_key,
        attacker_key=attacker_key,
        neighbor_key=neighbor_key,
        credential=credential,
        other_credential=issue(),
        presentation=present(credential, holder_key),
    )


@pytest.fixture(scope="module")
def tampered(ctx: Ctx) -> dict[str, str]:
    return {name: build(ctx) for name, (build, _) in CASES.items()}


def cli_args(path: Path, trust_file: Path) -> list[str]:
    return [
        "verify",
        str(path),
        "--trust",
        str(trust_file),
        "--json",
        "--at",
        NOW_ISO,
        "--nonce",
        NONCE,
        "--aud",
        AUD,
    ]


def failures(result: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["message"] for c in result["checks"] if c["status"] == "fail"}


# --------------------------------------------------------------------------- tests


def test_corpus_has_at_least_25_distinct_mutations(ctx, tampered):
    assert len(CASES) >= 25
    texts = list(tampered.values())
    assert len(set(texts)) == len(texts), "every case is a different string"
    assert ctx.presentation not in texts, "no case is the untampered presentation"


def test_untampered_presentation_is_valid(ctx, verifier, trust_file, tmp_path):
    result = verifier.verify(ctx.presentation, now=NOW, nonce=NONCE, aud=AUD)
    assert result.verdict == "valid", failures(result.to_json())
    assert result.check("holder").status == "pass"
    assert set(result.disclosed) == set(SHOWN)
    path = tmp_path / "ok.txt"
    path.write_text(ctx.presentation)
    run = CliRunner().invoke(main, cli_args(path, trust_file))
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["verdict"] == "valid"


@pytest.mark.parametrize("name", list(CASES))
def test_policy_rejects(name, tampered, verifier):
    expected = CASES[name][1]
    result = verifier.verify(tampered[name], now=NOW, nonce=NONCE, aud=AUD)
    assert result.verdict == "invalid"
    failed = failures(result.to_json())
    assert set(failed) == set(expected), f"{name}: failing checks {failed}"
    for check_id, pattern in expected.items():
        assert re.search(pattern, failed[check_id]), (
            f"{name}: {check_id} says {failed[check_id]!r}, expected /{pattern}/"
        )
    assert result.disclosed == {} or "disclosures" not in expected


@pytest.mark.parametrize("name", CASES)
def test_cli_rejects(name, tampered, trust_file, tmp_path):
    path = tmp_path / f"{name}.txt"
    path.write_text(tampered[name], encoding="utf-8")
    run = CliRunner().invoke(main, cli_args(path, trust_file))
    assert run.exit_code == 1, f"{name}: exit {run.exit_code}\n{run.output}{run.stderr}"
    assert "Traceback" not in run.stdout + run.stderr
    result = json.loads(run.stdout)
    assert result["verdict"] == "invalid"
    assert set(failures(result)) == set(CASES[name][1])


SUBPROCESS_CASES = [
    "alg_hs256_public_key_as_hmac_secret",
    "jwk_header_injection",
    "foreign_disclosure",
    "kb_removed_when_required",
    "expired",
]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_installed_command_rejects(name, tampered, trust_file, tmp_path):
    path = tmp_path / f"{name}.txt"
    path.write_text(tampered[name] + "\n", encoding="utf-8")
    run = subprocess.run(
        [str(SHOMEI), *cli_args(path, trust_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    result = json.loads(run.stdout)
    assert result["verdict"] == "invalid"
    assert set(failures(result)) == set(CASES[name][1])
    assert all(c["message_ja"] and c["message_en"] for c in result["checks"])


# --------------------------------------------------------------------------- unusable input


def _png_without_qr() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(out, format="PNG")
    return out.getvalue()


UNUSABLE: dict[str, bytes | None] = {
    "random_text": "これは証明書ではありません。Lorem ipsum dolor sit amet.\n".encode(),
    "empty_file": b"",
    "nonexistent_file": None,
    "binary_file": bytes(range(256)) * 8,
    "zip_file": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + os.urandom(200),
    "png_without_qr": _png_without_qr(),
}


@pytest.mark.parametrize("name", list(UNUSABLE))
def test_unusable_input_exits_2(name, trust_file, tmp_path):
    path = tmp_path / name
    data = UNUSABLE[name]
    if data is not None:
        path.write_bytes(data)
    run = subprocess.run(
        [str(SHOMEI), *cli_args(path, trust_file)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert run.stderr.startswith("エラー: "), run.stderr
