"""OpenID4VP 1.0 (final) for the verifier: the authorization request and the answer.

A request (:class:`Params`, kept in the request pool) asks for one ``dc+sd-jwt``
住民票 with the claim paths of :mod:`verifier.dcql`, ``response_type=vp_token``,
``response_mode`` ``direct_post`` or ``direct_post.jwt`` (then ``client_metadata.jwks``
carries an ephemeral P-256 ``ECDH-ES`` key of this request, as HAIP asks), a fresh
``nonce`` and ``state``, and a ``response_uri`` of its own.

- Signed (``x509_san_dns:<dns name>``): the request object is a JWT (``typ``
  ``oauth-authz-req+jwt``, ES256, ``x5c``) served at the ``request_uri`` (GET, or POST
  with a ``wallet_nonce``); the QR code says only ``openid4vp://?client_id=…&request_uri=…``.
- Unsigned (``redirect_uri:<response_uri>``): JAR (RFC 9101) request objects are signed,
  and a ``redirect_uri`` client must not sign, so the parameters travel by value in the
  ``openid4vp://`` link itself (a larger QR code).

The answer (:func:`read_answer`) is form-encoded: ``vp_token`` (a JSON object keyed by
the credential query id, each value an array of presentations) with ``state``, or for
``direct_post.jwt`` ``response`` (a JWE, ``ECDH-ES`` with ``A128GCM``/``A256GCM``, to
the request's key), or an error (``error=access_denied``: the resident refused).
Pure: no Flask; time and randomness come from the caller or :mod:`secrets`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import quote, urlencode

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

import credentials.jws as jws
import verifier.dcql as dcql
from credentials.encoding import b64d, b64e, compact_json, loads_bounded
from credentials.errors import CodedError
from credentials.keys import public_jwk
from verifier.x509_identity import X509Identity

SCHEME: Final = "openid4vp://"
REQUEST_TYP: Final = "oauth-authz-req+jwt"
REQUEST_MEDIA_TYPE: Final = "application/oauth-authz-req+jwt"
MODES: Final = ("direct_post", "direct_post.jwt")
ENC_VALUES: Final = ("A128GCM", "A256GCM")
_KEY_BITS: Final = {"A128GCM": 128, "A256GCM": 256}
#: The audience of a request object under static discovery (OpenID4VP §5.8).
STATIC_AUD: Final = "https://self-issued.me/v2"
#: DC API protocols (OpenID4VP Annex A).
DC_API_UNSIGNED: Final = "openid4vp-v1-unsigned"
DC_API_SIGNED: Final = "openid4vp-v1-signed"
#: The largest encrypted answer or vp_token taken (characters).
MAX_ANSWER: Final = 512 * 1024
_HEADER_MEMBERS: Final = frozenset({"alg", "enc", "kid", "epk", "apu", "apv", "typ", "cty"})
VP_FORMATS: Final = {"dc+sd-jwt": {"sd-jwt_alg_values": ["ES256"], "kb-jwt_alg_values": ["ES256"]}}


class AnswerError(CodedError):
    """An answer the response endpoint refuses (400, the one JSON error document)."""


def _bad(ja: str, en: str, code: str = "invalid_response") -> AnswerError:
    return AnswerError(code, ja, en)


@dataclass(frozen=True, kw_only=True)
class Params:
    """One request's OpenID4VP parameters, as kept in the pool (``enc_key`` holds the
    private ``d`` of the ephemeral key: the pool file is 0600)."""

    state: str
    nonce: str
    client_id: str
    response_uri: str
    response_mode: str
    paths: tuple[dcql.Path, ...]
    vct_values: tuple[str, ...]
    signed: bool
    enc_key: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        doc = {k: v for k, v in vars(self).items()}
        doc["paths"] = [list(p) for p in self.paths]
        doc["vct_values"] = list(self.vct_values)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Params:
        return cls(
            **{
                **doc,
                "paths": tuple(tuple(p) for p in doc["paths"]),
                "vct_values": tuple(doc["vct_values"]),
            }
        )


def new(
    *,
    base_url: str,
    mode: str,
    paths: Sequence[dcql.Path],
    vct_values: Sequence[str],
    identity: X509Identity | None,
) -> Params:
    """A fresh request: random ``state`` (also its URLs' handle) and ``nonce``, and for
    ``direct_post.jwt`` a new P-256 key. Signed with ``identity`` when given.
    Raises :class:`ValueError` for an unknown mode."""
    if mode not in MODES:
        raise ValueError(f"unknown response_mode {mode!r}")
    state = secrets.token_urlsafe(16)
    response_uri = f"{base_url.rstrip('/')}/oid4vp/response/{state}"
    enc_key = None
    if mode == "direct_post.jwt":
        key = ec.generate_private_key(ec.SECP256R1())
        d = key.private_numbers().private_value.to_bytes(32, "big")
        enc_key = {
            **public_jwk(key.public_key()),
            "d": b64e(d),
            "kid": secrets.token_urlsafe(8),
            "use": "enc",
            "alg": "ECDH-ES",
        }
    return Params(
        state=state,
        nonce=secrets.token_urlsafe(16),
        client_id=identity.client_id if identity else f"redirect_uri:{response_uri}",
        response_uri=response_uri,
        response_mode=mode,
        paths=tuple(paths),
        vct_values=tuple(vct_values),
        signed=identity is not None,
        enc_key=enc_key,
    )


def request_uri(params: Params, base_url: str) -> str:
    """Where a wallet fetches the signed request object."""
    return f"{base_url.rstrip('/')}/oid4vp/request/{params.state}"


def client_metadata(params: Params) -> dict[str, Any]:
    """``vp_formats_supported``, and for ``direct_post.jwt`` the public encryption key
    (``use`` ``enc``, ``alg`` ``ECDH-ES``) with the ``enc`` values taken."""
    meta: dict[str, Any] = {"vp_formats_supported": VP_FORMATS}
    if params.enc_key is not None:
        public = {k: v for k, v in params.enc_key.items() if k != "d"}
        meta["jwks"] = {"keys": [public]}
        meta["encrypted_response_enc_values_supported"] = list(ENC_VALUES)
    return meta


def authorization_request(params: Params) -> dict[str, Any]:
    """The authorization request parameters (OpenID4VP §5)."""
    return {
        "response_type": "vp_token",
        "client_id": params.client_id,
        "response_uri": params.response_uri,
        "response_mode": params.response_mode,
        "nonce": params.nonce,
        "state": params.state,
        "dcql_query": dcql.query(params.paths, params.vct_values),
        "client_metadata": client_metadata(params),
    }


def request_object(
    params: Params,
    identity: X509Identity,
    *,
    now: float,
    expires_at: float,
    wallet_nonce: str | None = None,
) -> str:
    """The signed request object (JWS compact): header ``typ`` ``oauth-authz-req+jwt``,
    ES256, ``x5c``; ``aud`` the static-discovery audience; ``wallet_nonce`` echoed when
    the wallet sent one (``request_uri_method=post``)."""
    payload = authorization_request(params)
    payload.update({"aud": STATIC_AUD, "iat": int(now), "exp": int(expires_at)})
    if wallet_nonce is not None:
        payload["wallet_nonce"] = wallet_nonce
    header = jws.encode_header({"alg": jws.ALG, "typ": REQUEST_TYP, "x5c": identity.x5c})
    return jws.sign(header, payload, identity.key)


def link(params: Params, base_url: str) -> str:
    """The ``openid4vp://`` link of the QR code and the same-device button: by
    reference when signed, by value (URL parameters, objects as JSON) when not."""
    if params.signed:
        query = {"client_id": params.client_id, "request_uri": request_uri(params, base_url)}
    else:
        query = {
            k: v if isinstance(v, str) else compact_json(v).decode()
            for k, v in authorization_request(params).items()
        }
    # ":" "/" "," need no escaping in a query (RFC 3986 §3.4): a smaller QR code.
    return SCHEME + "?" + urlencode(query, quote_via=quote, safe=":/,")


def dc_api_request(
    params: Params, identity: X509Identity | None, *, origin: str, now: float, expires_at: float
) -> dict[str, Any]:
    """The request the page hands to ``navigator.credentials.get`` (Annex A): unsigned,
    the parameters by value without ``client_id``; signed, a request object with
    ``expected_origins``. The answer comes back through the page (``dc_api`` modes)."""
    mode = "dc_api.jwt" if params.enc_key is not None else "dc_api"
    data = authorization_request(replace(params, response_mode=mode))
    for name in ("client_id", "response_uri", "state"):
        data.pop(name)
    if identity is None:
        return {"protocol": DC_API_UNSIGNED, "data": data}
    data.update({"client_id": identity.client_id, "expected_origins": [origin]})
    data.update({"aud": STATIC_AUD, "iat": int(now), "exp": int(expires_at)})
    header = jws.encode_header({"alg": jws.ALG, "typ": REQUEST_TYP, "x5c": identity.x5c})
    return {"protocol": DC_API_SIGNED, "data": {"request": jws.sign(header, data, identity.key)}}


# ------------------------------------------------------------------ the answer


@dataclass(frozen=True)
class Presentation:
    """The one presentation of the answer's ``vp_token``."""

    text: str


@dataclass(frozen=True)
class Refusal:
    """An error answer: ``access_denied`` when the resident said no."""

    error: str
    description: str

    def result(self) -> dict[str, Any]:
        """The result kept for the company's page."""
        return {"verdict": "refused", "error": self.error, "error_description": self.description}


def read_answer(
    form: Mapping[str, Any], params: Params, *, dc_api: bool = False
) -> Presentation | Refusal:
    """The wallet's answer at ``response_uri`` (form fields, already decoded), or with
    ``dc_api`` the ``data`` the Digital Credentials API returned (no ``state`` there,
    ``vp_token`` an object). Raises
    :class:`AnswerError` for a malformed one, a wrong ``state``, an unencrypted
    ``vp_token`` where encryption was asked for, or a ``vp_token`` with other than one
    presentation for the one credential query."""
    fields: Mapping[str, Any] = form
    if "response" in form:
        if params.enc_key is None:
            raise _bad("暗号化した回答は依頼していません", "no encrypted response was asked for")
        fields = decrypt(str(form["response"]), params.enc_key)
    if "error" in fields:
        if not dc_api:
            _check_state(fields, params)
        return Refusal(_text(fields["error"], 64), _text(fields.get("error_description"), 300))
    if "vp_token" not in fields:
        raise _bad("vp_token がありません", "missing vp_token")
    if params.enc_key is not None and fields is form:
        raise _bad(
            "回答が暗号化されていません（direct_post.jwt）",
            "the response must be encrypted (direct_post.jwt)",
        )
    if not dc_api:
        _check_state(fields, params)
    return Presentation(_one_presentation(fields["vp_token"]))


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _check_state(fields: Mapping[str, Any], params: Params) -> None:
    if fields.get("state") != params.state:
        raise _bad("state が依頼と一致しません", "state does not match the request")


def _one_presentation(raw: Any) -> str:
    if isinstance(raw, str):
        if len(raw) > MAX_ANSWER:
            raise _bad("vp_token が大きすぎます", "vp_token too large", "too_large")
        try:
            raw = loads_bounded(raw)
        except ValueError:
            raise _bad("vp_token が JSON ではありません", "vp_token is not JSON") from None
    if not isinstance(raw, dict) or set(raw) != {dcql.CREDENTIAL_ID}:
        raise _bad(
            f"vp_token は {dcql.CREDENTIAL_ID} だけを持つオブジェクトにしてください",
            f"vp_token must be an object with the one key {dcql.CREDENTIAL_ID!r}",
        )
    entries = raw[dcql.CREDENTIAL_ID]
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], str):
        raise _bad(
            "提示は1件だけの配列にしてください",
            "the credential query's value must be an array of one presentation",
        )
    return str(entries[0])


def decrypt(token: str, key: Mapping[str, str]) -> dict[str, Any]:
    """The payload of a compact JWE with ``alg`` ``ECDH-ES`` (direct key agreement,
    RFC 7518 §4.6) and ``enc`` ``A128GCM``/``A256GCM`` to ``key`` (a private P-256
    JWK). Raises :class:`AnswerError` for anything else, a wrong ``kid`` or a failed
    decryption."""
    if not isinstance(token, str) or len(token) > MAX_ANSWER:
        raise _bad("暗号化した回答が大きすぎます", "encrypted response too large", "too_large")
    parts = token.split(".")
    if len(parts) != 5:
        raise _bad("暗号化した回答（JWE）の形式が不正です", "the response is not a compact JWE")
    protected, encrypted_key, iv_b64, ct_b64, tag_b64 = parts
    try:
        header = loads_bounded(b64d(protected))
        iv, ciphertext, tag = b64d(iv_b64), b64d(ct_b64), b64d(tag_b64)
    except ValueError:
        raise _bad("暗号化した回答（JWE）を読めません", "cannot decode the JWE") from None
    enc = _check_header(header, key, encrypted_key)
    if len(iv) != 12 or len(tag) != 16:
        raise _bad("JWE の iv・tag の長さが不正です", "bad JWE iv or tag length")
    cek = _agree(header, key, enc)
    try:
        plain = AESGCM(cek).decrypt(iv, ciphertext + tag, protected.encode("ascii"))
        payload = loads_bounded(plain)
    except (InvalidTag, ValueError):
        raise _bad("暗号化した回答を復号できません", "the response does not decrypt") from None
    if not isinstance(payload, dict):
        raise _bad(
            "復号した回答がオブジェクトではありません", "the decrypted response is not an object"
        )
    return payload


def _check_header(header: Any, key: Mapping[str, str], encrypted_key: str) -> str:
    """The header's ``enc``, after refusing another ``alg``/``enc``, unknown members
    (``zip``, ``crit``, ``jku``…), an encrypted key and another request's ``kid``."""
    if not isinstance(header, dict):
        raise _bad("JWE のヘッダーが不正です", "malformed JWE header")
    enc = header.get("enc")
    if header.get("alg") != "ECDH-ES" or enc not in _KEY_BITS:
        raise _bad(
            f"JWE のアルゴリズムを受け付けません（{header.get('alg')!s:.20}/{enc!s:.20}）",
            "the JWE must use alg ECDH-ES with enc A128GCM or A256GCM",
        )
    unknown = set(header) - _HEADER_MEMBERS
    if unknown or encrypted_key:
        raise _bad(
            "JWE に受け付けない項目があります",
            f"JWE carries {sorted(unknown) or 'an encrypted key'}",
        )
    if header.get("kid") != key["kid"]:
        raise _bad(
            "JWE の鍵（kid）がこの依頼のものではありません", "the JWE kid is not this request's"
        )
    return str(enc)


def _agree(header: Mapping[str, Any], key: Mapping[str, str], enc: str) -> bytes:
    epk = header.get("epk")
    if not isinstance(epk, dict) or epk.get("kty") != "EC" or epk.get("crv") != "P-256":
        raise _bad("JWE の一時鍵（epk）が P-256 ではありません", "the JWE epk must be a P-256 key")
    try:
        peer = ec.EllipticCurvePublicNumbers(
            int.from_bytes(_coordinate(epk.get("x")), "big"),
            int.from_bytes(_coordinate(epk.get("y")), "big"),
            ec.SECP256R1(),
        ).public_key()
        apu = b64d(header["apu"]) if "apu" in header else b""
        apv = b64d(header["apv"]) if "apv" in header else b""
    except (ValueError, TypeError):
        raise _bad("JWE の一時鍵（epk）が不正です", "malformed JWE epk, apu or apv") from None
    private = ec.derive_private_key(int.from_bytes(b64d(key["d"]), "big"), ec.SECP256R1())
    shared = private.exchange(ec.ECDH(), peer)
    bits = _KEY_BITS[enc]

    def counted(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data

    other = counted(enc.encode()) + counted(apu) + counted(apv) + bits.to_bytes(4, "big")
    return ConcatKDFHash(hashes.SHA256(), bits // 8, other).derive(shared)


def _coordinate(value: Any) -> bytes:
    raw = b64d(value) if isinstance(value, str) else b""
    if len(raw) != 32:
        raise ValueError("a P-256 coordinate has 32 bytes")
    return raw
