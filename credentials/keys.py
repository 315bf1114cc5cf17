"""P-256 keys: generation, JWK export, RFC 7638 thumbprints, encryption at rest.

Private keys leave this module only as encrypted PKCS#8 PEM. Nothing here logs or
prints key material; ``repr`` of a :class:`SigningKey` shows only the thumbprint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ._b64 import b64d, b64e
from .errors import InvalidCredential, KeyFileError

_CURVE_BYTES = 32
_P256 = ec.SECP256R1()


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """Return the public JWK (kty, crv, x, y) of a P-256 key."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("only P-256 keys are supported")
    nums = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64e(nums.x.to_bytes(_CURVE_BYTES, "big")),
        "y": b64e(nums.y.to_bytes(_CURVE_BYTES, "big")),
    }


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an EC public JWK."""
    try:
        members = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]}
    except KeyError as e:
        raise InvalidCredential(
            f"JWKに必要な項目がありません: {e.args[0]}", f"JWK lacks member {e.args[0]}"
        ) from None
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64e(hashlib.sha256(canonical.encode("ascii")).digest())


def public_key_from_jwk(jwk: Any) -> ec.EllipticCurvePublicKey:
    """Load a P-256 public key from a JWK, strictly.

    Raises :class:`InvalidCredential` for anything but an EC P-256 public key with
    well-formed coordinates on the curve, and for a JWK carrying private parts.
    """
    if not isinstance(jwk, dict):
        raise InvalidCredential("JWKがオブジェクトではありません", "JWK is not an object")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise InvalidCredential("P-256のEC鍵ではありません", "JWK is not an EC P-256 key")
    if "d" in jwk:
        raise InvalidCredential(
            "公開鍵に秘密鍵の成分が含まれています", "public JWK contains a private key"
        )
    try:
        x = b64d(jwk["x"])
        y = b64d(jwk["y"])
        if len(x) != _CURVE_BYTES or len(y) != _CURVE_BYTES:
            raise ValueError("coordinate length")
        # The uncompressed SEC 1 point: OpenSSL refuses coordinates outside the field
        # and points off the curve, as it does for EllipticCurvePublicNumbers.
        return ec.EllipticCurvePublicKey.from_encoded_point(_P256, b"\x04" + x + y)
    except (KeyError, TypeError, ValueError):
        raise InvalidCredential("JWKの座標が不正です", "JWK coordinates are invalid") from None


@dataclass(frozen=True, repr=False)
class SigningKey:
    """A P-256 private key with its public JWK and thumbprint (used as ``kid``)."""

    private_key: ec.EllipticCurvePrivateKey
    jwk: dict[str, str] = field(init=False)
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.private_key.curve, ec.SECP256R1):
            raise ValueError("only P-256 keys are supported")
        jwk = public_jwk(self.private_key.public_key())
        object.__setattr__(self, "jwk", jwk)
        object.__setattr__(self, "kid", jwk_thumbprint(jwk))

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh P-256 key from the operating system's CSPRNG."""
        return cls(private_key=ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def to_encrypted_pem(self, passphrase: str | bytes) -> bytes:
        """PKCS#8 PEM encrypted with the passphrase (AES-256-CBC, scrypt/PBKDF2 by
        cryptography's best available scheme). Raises ``ValueError`` on an empty one."""
        secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
        if not secret:
            raise ValueError("an empty passphrase would store the key in plain text")
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(secret),
        )

    @classmethod
    def from_encrypted_pem(cls, pem: bytes, passphrase: str | bytes) -> SigningKey:
        """Load an encrypted PKCS#8 PEM.

        Raises :class:`KeyFileError` for a wrong passphrase, an unencrypted file, or a
        key that is not P-256.
        """
        secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
        if b"ENCRYPTED" not in pem:
            raise KeyFileError("鍵ファイルが暗号化されていません", "the key file is not encrypted")
        try:
            key = serialization.load_pem_private_key(pem, password=secret)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise KeyFileError(
                "鍵ファイルを開けません（パスフレーズが違うか、形式が不正です）",
                "cannot open the key file (wrong passphrase or malformed file)",
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise KeyFileError("P-256の鍵ではありません", "the key is not a P-256 key")
        return cls(private_key=key)
