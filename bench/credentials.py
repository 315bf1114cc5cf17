"""Credential-core throughput, side by side with the IETF reference implementation.

Prints ``name: value unit`` lines (medians of several rounds on one core), then the
ratios the goals in DESIGN §6 are stated in. Run: ``.venv/bin/python bench/credentials.py``.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its own name would
# shadow the ``credentials`` package.
if sys.path and sys.path[0] == str(Path(__file__).resolve().parent):
    sys.path.pop(0)

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from credentials import doctypes, qr, sdjwt
from credentials.keys import SigningKey
from credentials.trust import TrustList
from verifier.policy import Verifier

ISS = "https://city.iizuka.example"
ROUNDS = 9
ROUND_SECONDS = 0.25


def rates(fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median operations per second of each function over ROUNDS rounds.

    The rounds are interleaved (A, B, C, A, B, C, …) so that a change in machine load
    affects every peer alike and the ratios stay meaningful on a noisy machine.
    """
    for fn in fns.values():
        fn()
    results: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(ROUNDS):
        for name, fn in fns.items():
            n, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < ROUND_SECONDS:
                for _ in range(10):
                    fn()
                n += 10
            results[name].append(n / elapsed)
    return {name: statistics.median(r) for name, r in results.items()}


def out(name: str, value: float, unit: str) -> None:
    print(f"{name}: {value:,.0f} {unit}" if unit != "x" else f"{name}: {value:.2f} {unit}")


def main() -> None:
    claims = doctypes.validate_claims("juminhyo", doctypes.SAMPLES["juminhyo"])
    assert len(claims) == 12, len(claims)
    key, holder = SigningKey.generate(), SigningKey.generate()
    now = int(time.time())
    vct = doctypes.get("juminhyo").vct_for(ISS)
    queue: list[bytes] = []

    def ours_issue() -> None:
        cred = sdjwt.issue(
            claims, key=key, issuer=ISS, vct=vct, iat=now, exp=now + 86400, holder_jwk=holder.jwk
        )
        # Queued for anchoring: the Merkle leaf of the issuer-signed JWT.
        queue.append(hashlib.sha256(b"\x00" + hashlib.sha256(cred.jwt.encode()).digest()).digest())
        if len(queue) > 10000:
            queue.clear()

    cred = sdjwt.issue(
        claims, key=key, issuer=ISS, vct=vct, iat=now, exp=now + 86400, holder_jwk=holder.jwk
    )
    trust = TrustList.from_json(
        TrustList.document(ISS, name="飯塚市", municipality_code="402052", jwks=[key.jwk])
    )
    verifier = Verifier(trust=trust)
    # The credential as the holder received it, one string built once, as the
    # reference's side verifies the string its issuer returned.
    issued = cred.sd_jwt
    result = verifier.verify(issued, now=now)
    assert result.verdict == "valid", result.to_json()

    def ours_verify() -> None:
        verifier.verify(issued, now=now)

    def ours_core_verify() -> None:
        sdjwt.verify(issued, resolve_key=trust.resolve_key, now=now)

    def ours_present_kb_verify() -> None:
        p = sdjwt.present(
            issued, disclose=claims, holder_key=holder, nonce="n-123", aud="https://v", iat=now
        )
        sdjwt.verify(p, resolve_key=trust.resolve_key, now=now, nonce="n-123", aud="https://v")

    data = b"x" * 600
    algo = ec.ECDSA(hashes.SHA256())
    sig = key.private_key.sign(data, algo)
    # Built once, as the verifier's trust list holds its keys (SigningKey.public_key
    # derives a new object on every call, which is not part of a signature check).
    public_key = key.public_key
    fns: dict[str, Callable[[], object]] = {
        "issue": ours_issue,
        "verify": ours_verify,
        "core_verify": ours_core_verify,
        "present_kb_verify": ours_present_kb_verify,
        "bare_sign": lambda: key.private_key.sign(data, algo),
        "bare_verify": lambda: public_key.verify(sig, data, algo),
    }
    ref = reference_functions(claims, key, holder, now)
    figures = rates({**fns, **ref})

    out("shomei_issue_juminhyo12", figures["issue"], "/s")
    out("shomei_verify_juminhyo12", figures["verify"], "/s")
    out("shomei_core_verify_juminhyo12", figures["core_verify"], "/s")
    out("shomei_present_kb_verify", figures["present_kb_verify"], "/s")
    out("bare_es256_sign", figures["bare_sign"], "/s")
    out("bare_es256_verify", figures["bare_verify"], "/s")
    if ref:
        out("reference_issue_juminhyo12", figures["ref_issue"], "/s")
        out("reference_verify_juminhyo12", figures["ref_verify"], "/s")
        out("reference_present_kb_verify", figures["ref_present_kb_verify"], "/s")
        out("ratio_issue_vs_reference", figures["issue"] / figures["ref_issue"], "x")
        out("ratio_verify_vs_reference", figures["verify"] / figures["ref_verify"], "x")
        out(
            "ratio_present_kb_verify_vs_reference",
            figures["present_kb_verify"] / figures["ref_present_kb_verify"],
            "x",
        )
    out("ratio_verify_vs_bare_es256_verify", figures["verify"] / figures["bare_verify"], "x")
    out("ratio_issue_vs_bare_es256_sign", figures["issue"] / figures["bare_sign"], "x")

    four = sdjwt.present(issued, disclose=["family_name", "given_name", "birthdate", "address"])
    payload = qr.encode_embedded(four)
    print(f"qr_embedded_juminhyo_4_claims_version: {qr.qr_version(payload)} version")
    print(f"qr_embedded_juminhyo_4_claims_chars: {len(payload)} chars")
    link = qr.LinkRef.new("https://wallet.city.example/r").to_url()
    print(f"qr_link_version: {qr.qr_version(link)} version")


def reference_functions(
    claims: dict[str, object], key: SigningKey, holder: SigningKey, now: int
) -> dict[str, Callable[[], object]]:
    """The same operations with the IETF reference implementation (PyPI ``sd-jwt``)."""
    try:
        from jwcrypto.jwk import JWK
        from sd_jwt.common import SDObj
        from sd_jwt.holder import SDJWTHolder
        from sd_jwt.issuer import SDJWTIssuer
        from sd_jwt.verifier import SDJWTVerifier
    except ImportError:
        print("reference: not installed (pip install sd-jwt==0.10.4)", file=sys.stderr)
        return {}
    issuer_jwk = JWK.from_pyca(key.private_key)
    issuer_pub = JWK.from_json(json.dumps(key.jwk))
    holder_jwk = JWK.from_pyca(holder.private_key)
    user_claims = {
        "iss": ISS,
        "iat": now,
        "exp": now + 86400,
        "vct": doctypes.get("juminhyo").vct_for(ISS),
        **{SDObj(k): v for k, v in claims.items()},
    }
    header = {"typ": "dc+sd-jwt", "kid": key.kid}

    def ref_issue() -> str:
        return SDJWTIssuer(
            user_claims, issuer_jwk, holder_key=holder_jwk, extra_header_parameters=header
        ).sd_jwt_issuance

    issued = ref_issue()

    def ref_verify() -> None:
        SDJWTVerifier(issued, lambda iss, hdr: issuer_pub).get_verified_payload()

    def ref_present_kb_verify() -> None:
        h = SDJWTHolder(issued)
        h.create_presentation({k: True for k in claims}, "n-123", "https://v", holder_jwk)
        SDJWTVerifier(
            h.sd_jwt_presentation, lambda iss, hdr: issuer_pub, "https://v", "n-123"
        ).get_verified_payload()

    return {
        "ref_issue": ref_issue,
        "ref_verify": ref_verify,
        "ref_present_kb_verify": ref_present_kb_verify,
    }


if __name__ == "__main__":
    main()
