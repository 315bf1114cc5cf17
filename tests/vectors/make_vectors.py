"""Write the SD-JWT test vectors in ``tests/vectors/sd_jwt/{valid,invalid}/``.

Run from the repository root: ``.venv/bin/python tests/vectors/make_vectors.py``.

The output is deterministic: keys are derived from fixed labels, salts come from a
fixed ``salt_source``, times are fixed, and every JWS is signed again with RFC 6979
deterministic ECDSA, so running the script twice writes the same bytes (a test checks
that the committed files are current). The keys are test-only.

Each vector: ``description``, ``issuer``, ``issuer_key`` (a P-256 JWK with ``d``),
``now``, ``options`` (extra keyword arguments of ``sdjwt.verify``), ``presentation``
and ``expected``: ``{"valid": true, "disclosed": {…}, "key_bound": …}`` or
``{"valid": false, "error": "<class name>", "message": "<regex>"}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from credentials import sdjwt
from credentials.keys import SigningKey

OUT = Path(__file__).resolve().parent / "sd_jwt"
ISSUER = "https://city.iizuka.example"
VCT = f"{ISSUER}/vct/juminhyo/1"
NOW = 1_760_000_000  # 2025-10-09T08:53:20Z
IAT = NOW - 3600
EXP = IAT + 92 * 86_400
NONCE = "vector-nonce-0001"
AUD = "https://verifier.example.jp"

CLAIMS: dict[str, Any] = {
    "family_name": "山田",
    "given_name": "太郎",
    "family_name_kana": "ヤマダ",
    "given_name_kana": "タロウ",
    "birthdate": "1980-04-01",
    "sex": "男",
    "address": "福岡県飯塚市立岩1234番地5",
    "resident_since": "2015-04-01",
}

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def key_from_label(label: str) -> SigningKey:
    """A fixed test-only key: the scalar is SHA-256(label) reduced into the group."""
    scalar = int.from_bytes(hashlib.sha256(label.encode()).digest(), "big") % _P256_ORDER
    return SigningKey(private_key=ec.derive_private_key(scalar, ec.SECP256R1()))


def private_jwk(key: SigningKey) -> dict[str, str]:
    d = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    return {**key.jwk, "d": b64(d)}


ISSUER_KEY = key_from_label("shomei test vectors: issuer")
HOLDER_KEY = key_from_label("shomei test vectors: holder")
OTHER_KEY = key_from_label("shomei test vectors: somebody else")


def fixed_salts(label: str) -> Callable[[int], bytes]:
    """A salt source that returns SHA-256(label || counter) stretched to n bytes."""
    counter = 0

    def source(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
            counter += 1
        return out[:n]

    return source


def salt(label: str) -> str:
    return b64(hashlib.sha256(f"salt/{label}".encode()).digest()[:16])


def disclosure(*parts: Any, raw: bytes | None = None) -> tuple[str, str]:
    """An encoded disclosure (compact JSON unless ``raw`` is given) and its digest."""
    encoded = b64(raw if raw is not None else compact(list(parts)))
    return encoded, b64(hashlib.sha256(encoded.encode("ascii")).digest())


def es256(signing_input: str, key: SigningKey) -> str:
    der = key.private_key.sign(
        signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
    )
    r, s = decode_dss_signature(der)
    return b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def sign(
    payload: dict[str, Any] | bytes,
    *,
    key: SigningKey = ISSUER_KEY,
    header: dict[str, Any] | None = None,
) -> str:
    """A compact JWS; ``payload`` as bytes is signed exactly as given."""
    if header is None:
        header = {"alg": "ES256", "kid": ISSUER_KEY.kid, "typ": "dc+sd-jwt"}
    raw = payload if isinstance(payload, bytes) else compact(payload)
    signing_input = f"{b64(compact(header))}.{b64(raw)}"
    return f"{signing_input}.{es256(signing_input, key)}"


def resign(jwt: str, key: SigningKey) -> str:
    """The same header and payload bytes, signed deterministically."""
    signing_input = jwt.rsplit(".", 1)[0]
    return f"{signing_input}.{es256(signing_input, key)}"


def base_payload(digests: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "iat": IAT,
        "exp": EXP,
        "vct": VCT,
        "_sd_alg": "sha-256",
        "_sd": sorted(digests),
        **extra,
    }


def sd_jwt(jwt: str, *disclosures: str, kb: str = "") -> str:
    return "~".join([jwt, *disclosures]) + "~" + kb


def issued(label: str, claims: dict[str, Any] | None = None, **kwargs: Any) -> str:
    """A credential from ``sdjwt.issue`` with fixed salts, re-signed deterministically."""
    args: dict[str, Any] = {"iat": IAT, "exp": EXP, **kwargs}
    cred = sdjwt.issue(
        claims or CLAIMS,
        key=ISSUER_KEY,
        issuer=ISSUER,
        vct=VCT,
        salt_source=fixed_salts(label),
        **args,
    )
    return sd_jwt(resign(cred.jwt, ISSUER_KEY), *(d.encoded for d in cred.disclosures))


def kb_jwt(presentation: str, *, nonce: str = NONCE, aud: str = AUD, iat: int = NOW - 30) -> str:
    sd_hash = b64(hashlib.sha256(presentation.encode("ascii")).digest())
    payload = {"aud": aud, "iat": iat, "nonce": nonce, "sd_hash": sd_hash}
    return sign(payload, key=HOLDER_KEY, header={"alg": "ES256", "typ": "kb+jwt"})


def valid(description: str, presentation: str, disclosed: dict[str, Any], **opts: Any) -> dict:
    return {
        "description": description,
        "presentation": presentation,
        "options": opts,
        "expected": {
            "valid": True,
            "disclosed": disclosed,
            "key_bound": not presentation.endswith("~"),
        },
    }


def invalid(
    description: str, presentation: str, error: str, message: str, **opts: Any
) -> dict[str, Any]:
    return {
        "description": description,
        "presentation": presentation,
        "options": opts,
        "expected": {"valid": False, "error": error, "message": message},
    }


# --------------------------------------------------------------------------- valid


def valid_vectors() -> dict[str, dict[str, Any]]:
    v: dict[str, dict[str, Any]] = {}
    full = issued("all")
    v["all_disclosures"] = valid("The issued SD-JWT VC with every disclosure.", full, CLAIMS)
    chosen = ["family_name", "given_name", "address"]
    v["selected_disclosures"] = valid(
        "A presentation revealing three of eight claims.",
        sdjwt.present(full, disclose=chosen),
        {n: CLAIMS[n] for n in chosen},
    )
    v["no_disclosures"] = valid(
        "A presentation revealing no claim at all: only the signed JWT and '~'.",
        sdjwt.present(full, disclose=[]),
        {},
    )
    v["decoys"] = valid(
        "Five decoy digests among the real ones are ignored.",
        issued("decoys", decoys=5),
        CLAIMS,
    )
    plain = {**CLAIMS, "recognized_by": ["402052", "401307"]}
    v["always_plain_claim"] = valid(
        "A claim issued in the clear sits next to the selectively disclosable ones.",
        issued("plain", plain, always_plain=["recognized_by"]),
        plain,
    )
    v["no_expiry"] = valid(
        "A credential without exp never expires.", issued("noexp", exp=None), CLAIMS
    )
    v["exp_within_skew"] = valid(
        "exp 30 seconds ago is inside the default 60 s clock skew.",
        issued("skew", exp=NOW - 30),
        CLAIMS,
    )
    bound = issued("bound", holder_jwk=HOLDER_KEY.jwk)
    pres = sdjwt.present(bound, disclose=["birthdate", "address"])
    v["key_binding"] = valid(
        "A presentation with a key-binding JWT over nonce, aud and sd_hash.",
        pres + kb_jwt(pres),
        {"birthdate": CLAIMS["birthdate"], "address": CLAIMS["address"]},
        require_key_binding=True,
        nonce=NONCE,
        aud=AUD,
    )

    city, city_d = disclosure(salt("city"), "locality", "飯塚市")
    street, street_d = disclosure(salt("street"), "street_address", "立岩1234番地5")
    addr, addr_d = disclosure(
        salt("addr"),
        "address",
        {"region": "福岡県", "_sd": sorted([city_d, street_d, b64(b"\x01" * 32)])},
    )
    jwt = sign(base_payload([addr_d]))
    v["nested_object"] = valid(
        "address is an object with its own _sd (two sub-claims and a decoy).",
        sd_jwt(jwt, addr, city, street),
        {"address": {"region": "福岡県", "locality": "飯塚市", "street_address": "立岩1234番地5"}},
    )
    v["nested_object_partial"] = valid(
        "Only the parent and one nested disclosure: the other sub-claim stays hidden.",
        sd_jwt(jwt, addr, street),
        {"address": {"region": "福岡県", "street_address": "立岩1234番地5"}},
    )

    e1, e1_d = disclosure(salt("e1"), "402052")
    e2, e2_d = disclosure(salt("e2"), {"code": "401307", "name": "福岡市"})
    decoy = b64(hashlib.sha256(b"array decoy").digest())
    payload = base_payload(
        [], recognized_by=["401005", {"...": e1_d}, {"...": decoy}, {"...": e2_d}]
    )
    payload.pop("_sd")
    jwt = sign(payload)
    v["array_elements"] = valid(
        "Array elements disclosed by {'...': digest}; a decoy element is dropped.",
        sd_jwt(jwt, e1, e2),
        {"recognized_by": ["401005", "402052", {"code": "401307", "name": "福岡市"}]},
    )
    v["array_elements_partial"] = valid(
        "An undisclosed array element is removed from the array.",
        sd_jwt(jwt, e2),
        {"recognized_by": ["401005", {"code": "401307", "name": "福岡市"}]},
    )

    c1, c1_d = disclosure(salt("c1"), "given_name", "陽向")
    child, child_d = disclosure(
        salt("child"), {"family_name": "鈴木", "_sd": [c1_d], "birthdate": "2018-08-20"}
    )
    kids, kids_d = disclosure(salt("kids"), "children", [{"...": child_d}])
    jwt = sign(base_payload([kids_d]))
    v["recursive"] = valid(
        "A property disclosure holding an array element disclosure holding an object "
        "property disclosure.",
        sd_jwt(jwt, kids, child, c1),
        {"children": [{"family_name": "鈴木", "given_name": "陽向", "birthdate": "2018-08-20"}]},
    )

    name_sp, name_sp_d = disclosure(raw=json.dumps([salt("sp"), "family_name", "山田"]).encode())
    spaced = json.dumps(base_payload([name_sp_d])).encode()  # spaces, \\u escapes
    v["json_with_spaces"] = valid(
        "Payload and disclosure serialized with spaces and \\u escapes (as Python's json "
        "default, and the reference implementation, do).",
        sd_jwt(sign(spaced), name_sp),
        {"family_name": "山田"},
    )
    return v


# --------------------------------------------------------------------------- invalid


def invalid_vectors() -> dict[str, dict[str, Any]]:
    v: dict[str, dict[str, Any]] = {}
    ve, ic = "VerificationError", "InvalidCredential"
    name, name_d = disclosure(salt("name"), "family_name", "山田")
    elem, elem_d = disclosure(salt("elem"), "402052")

    v["array_disclosure_as_property"] = invalid(
        "A two-element (array item) disclosure referenced from _sd.",
        sd_jwt(sign(base_payload([elem_d])), elem),
        ve,
        "an array-element disclosure is referenced as an object property",
    )
    payload = base_payload([], recognized_by=[{"...": name_d}])
    v["property_disclosure_in_array"] = invalid(
        "A three-element (property) disclosure referenced as an array element.",
        sd_jwt(sign(payload), name),
        ve,
        "an object-property disclosure is referenced as an array element",
    )
    payload = base_payload([], recognized_by=[{"...": elem_d, "note": "x"}])
    v["dots_with_extra_members"] = invalid(
        "An array element reference {'...': digest} with an extra member.",
        sd_jwt(sign(payload), elem),
        ve,
        "an array-element reference has extra members",
    )
    payload = base_payload([], address={"...": name_d})
    v["dots_as_object_key"] = invalid(
        "'...' used as a claim name in an object outside an array.",
        sd_jwt(sign(payload)),
        ve,
        "'\\.\\.\\.' is not a claim name",
    )
    payload = base_payload([])
    payload["_sd"] = name_d
    v["sd_not_array"] = invalid(
        "_sd is a string, not an array.", sd_jwt(sign(payload), name), ve, "_sd is not an array"
    )
    payload = base_payload([name_d])
    payload["_sd"].append(12345)
    v["digest_not_string"] = invalid(
        "_sd holds a number.", sd_jwt(sign(payload), name), ve, "a digest is not a string"
    )
    payload = base_payload([name_d], address={"_sd": [name_d]})
    v["digest_reused_in_two_places"] = invalid(
        "One digest in the top-level _sd and in a nested object's _sd.",
        sd_jwt(sign(payload), name),
        ve,
        "a digest appears more than once",
    )
    payload = base_payload([], recognized_by=[{"...": elem_d}, {"...": elem_d}])
    v["digest_reused_in_array"] = invalid(
        "One array element digest used twice.",
        sd_jwt(sign(payload), elem),
        ve,
        "a digest appears more than once",
    )
    other, _ = disclosure(salt("other"), "given_name", "太郎")
    v["unreferenced_disclosure"] = invalid(
        "A disclosure whose digest the signed payload does not contain.",
        sd_jwt(sign(base_payload([name_d])), name, other),
        ve,
        "a disclosure is not referenced by the signed payload",
    )
    inner, inner_d = disclosure(salt("inner"), "locality", "飯塚市")
    _, outer_d = disclosure(salt("outer"), "address", {"_sd": [inner_d]})
    v["nested_disclosure_without_parent"] = invalid(
        "A nested disclosure sent without the parent disclosure that references it.",
        sd_jwt(sign(base_payload([outer_d])), inner),
        ve,
        "a disclosure is not referenced by the signed payload",
    )
    v["duplicate_disclosure"] = invalid(
        "The same disclosure twice.",
        sd_jwt(sign(base_payload([name_d])), name, name),
        ve,
        "the same disclosure is included twice",
    )
    for reserved, label in (("_sd", "sd"), ("...", "dots")):
        bad, bad_d = disclosure(salt(label), reserved, ["x"])
        v[f"reserved_name_{label}_in_disclosure"] = invalid(
            f"A disclosure with the reserved claim name {reserved!r}.",
            sd_jwt(sign(base_payload([bad_d])), bad),
            ve,
            f"a disclosure uses the reserved claim name '{reserved.replace('.', '[.]')}'",
        )
    dup, dup_d = disclosure(salt("dup"), "recognized_by", ["999999"])
    payload = base_payload([dup_d], recognized_by=["402052"])
    v["disclosure_overwrites_plain_claim"] = invalid(
        "A disclosed claim with the name of a claim already in the clear.",
        sd_jwt(sign(payload), dup),
        ve,
        "disclosed claim 'recognized_by' would overwrite an existing claim",
    )
    v["sd_alg_sha512"] = invalid(
        "_sd_alg other than sha-256.",
        sd_jwt(sign(base_payload([name_d], _sd_alg="sha-512")), name),
        ve,
        "_sd_alg 'sha-512' is not accepted",
    )
    jwt = sign(base_payload([name_d]))
    v["empty_disclosure"] = invalid(
        "Two tildes in a row: an empty disclosure.",
        f"{jwt}~~{name}~",
        ic,
        "the SD-JWT has an empty disclosure",
    )
    # 'g' and 'h' decode to the same 6 high bits; 'h' sets a spare bit.
    odd, odd_d = disclosure(salt("odd"), "sex", "男")
    assert len(odd) % 4 in (2, 3)
    tweaked = odd[:-1] + _spare_bit_variant(odd[-1], len(odd) % 4)
    v["noncanonical_base64_disclosure"] = invalid(
        "A disclosure whose last base64url character has non-zero unused bits.",
        sd_jwt(sign(base_payload([odd_d])), tweaked),
        ic,
        "a disclosure cannot be parsed",
    )
    padded = name + "=" * (-len(name) % 4)
    v["padded_base64_disclosure"] = invalid(
        "A disclosure encoded with '=' padding.",
        sd_jwt(sign(base_payload([name_d])), padded),
        ic,
        "a disclosure cannot be parsed",
    )
    jwt = sign(base_payload([name_d]))
    sig = jwt.rsplit(".", 1)[1]
    v["noncanonical_base64_signature"] = invalid(
        "The signature's last character has a spare bit set: the same bytes to a lenient "
        "decoder, rejected here.",
        sd_jwt(jwt[:-1] + _spare_bit_variant(sig[-1], len(sig) % 4), name),
        ic,
        "issuer-signed JWT cannot be parsed \\(bad base64url or JSON\\)",
    )
    base = compact(base_payload([name_d]))
    dup_payload = base[:-1] + b',"iss":"https://evil.example"}'
    v["duplicate_member_in_payload"] = invalid(
        "The signed payload has two 'iss' members (parsers disagree which wins).",
        sd_jwt(sign(dup_payload), name),
        ic,
        "issuer-signed JWT cannot be parsed",
    )
    dup_disc, dup_disc_d = disclosure(
        raw=b'["' + salt("dupd").encode() + b'","address",{"city":"A","city":"B"}]'
    )
    v["duplicate_member_in_disclosure"] = invalid(
        "A disclosure value with a duplicate member name.",
        sd_jwt(sign(base_payload([dup_disc_d])), dup_disc),
        ic,
        "a disclosure cannot be parsed",
    )
    nan, nan_d = disclosure(raw=b'["' + salt("nan").encode() + b'","amount_jpy",NaN]')
    v["nan_in_disclosure"] = invalid(
        "NaN is not JSON.",
        sd_jwt(sign(base_payload([nan_d])), nan),
        ic,
        "a disclosure cannot be parsed",
    )
    four, four_d = disclosure(salt("four"), "sex", "男", "extra")
    v["disclosure_with_four_elements"] = invalid(
        "A disclosure array of four elements.",
        sd_jwt(sign(base_payload([four_d])), four),
        ic,
        "a disclosure is not \\[salt, name, value\\]",
    )
    num, num_d = disclosure(salt("num"), 42, "男")
    v["disclosure_name_not_string"] = invalid(
        "A disclosure whose claim name is a number.",
        sd_jwt(sign(base_payload([num_d])), num),
        ic,
        "a disclosure's claim name is not a string",
    )
    v["expired"] = invalid(
        "exp two minutes ago, beyond the 60 s skew.",
        issued("expired", exp=NOW - 120),
        ve,
        "the credential has expired \\(exp\\)",
    )
    v["not_yet_valid"] = invalid(
        "nbf ten minutes ahead.",
        issued("nbf", nbf=NOW + 600),
        ve,
        "the credential is not yet valid \\(nbf\\)",
    )
    v["alg_none"] = invalid(
        "An unsigned token (alg none, empty signature).",
        _alg_none(issued("none")),
        ve,
        "algorithm 'none' is not accepted",
    )
    v["signed_by_another_key"] = invalid(
        "Signed by another key under the issuer's kid.",
        sd_jwt(sign(base_payload([name_d]), key=OTHER_KEY), name),
        ve,
        "issuer-signed JWT signature does not match",
    )
    bound = issued("kb", holder_jwk=HOLDER_KEY.jwk)
    pres = sdjwt.present(bound, disclose=["family_name", "address"])
    v["kb_wrong_nonce"] = invalid(
        "The key-binding JWT answers another nonce.",
        pres + kb_jwt(pres, nonce="an-old-nonce"),
        ve,
        "key-binding JWT nonce does not match",
        nonce=NONCE,
        aud=AUD,
    )
    fewer = sdjwt.present(bound, disclose=["family_name"])
    v["kb_sd_hash_after_removing_disclosure"] = invalid(
        "A disclosure removed after the key-binding JWT was made.",
        fewer + kb_jwt(pres),
        ve,
        "the key-binding JWT does not cover this presentation \\(sd_hash\\)",
        nonce=NONCE,
        aud=AUD,
    )
    v["kb_required_but_missing"] = invalid(
        "The verifier requires key binding; the presentation has none.",
        pres,
        ve,
        "no key-binding JWT",
        require_key_binding=True,
    )
    return v


def _spare_bit_variant(char: str, rem: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare = {2: 0x0F, 3: 0x03}[rem]
    i = alphabet.index(char)
    assert i & spare == 0, "a canonical encoding has clear spare bits"
    return alphabet[i | 1]


def _alg_none(text: str) -> str:
    jwt, _, rest = text.partition("~")
    _, payload, _ = jwt.split(".")
    header = b64(compact({"alg": "none", "kid": ISSUER_KEY.kid, "typ": "dc+sd-jwt"}))
    return f"{header}.{payload}.~{rest}"


# --------------------------------------------------------------------------- output


def build() -> dict[str, dict[str, Any]]:
    """Every vector, keyed by its path under ``sd_jwt/``."""
    common = {"issuer": ISSUER, "issuer_key": private_jwk(ISSUER_KEY), "now": NOW}
    out = {}
    for kind, vectors in (("valid", valid_vectors()), ("invalid", invalid_vectors())):
        for name, vector in vectors.items():
            out[f"{kind}/{name}.json"] = {
                "description": vector["description"],
                **common,
                "options": vector["options"],
                "presentation": vector["presentation"],
                "expected": vector["expected"],
            }
    return out


def render(vector: dict[str, Any]) -> str:
    return json.dumps(vector, ensure_ascii=False, indent=2) + "\n"


def main(out: Path = OUT) -> None:
    vectors = build()
    for rel, vector in vectors.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(vector), encoding="utf-8")
    print(f"wrote {len(vectors)} vectors under {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
