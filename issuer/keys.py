"""The city's signing key and issuer settings, kept in the data directory.

``shomei issuer init`` writes three files under ``<data dir>/issuer/``, each mode 0600:

- ``signing-key.pem``: the city's P-256 key, PKCS#8 encrypted with the passphrase from
  ``SHOMEI_KEY_PASSPHRASE`` (or a prompt);
- ``storage-key``: 32 random bytes (hex) that encrypt issued credentials at rest in the
  database (AES-256-GCM), so a database dump alone reveals no resident's data;
- ``issuer.json``: the issuer id (the ``iss`` URL), the city's name and its
  全国地方公共団体コード.

:func:`load` returns a :class:`City` or raises :class:`NotInitialised`; a wrong
passphrase raises :class:`~credentials.errors.KeyFileError`. Key material is never
logged or put into an error message. No Flask here.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from credentials.doctypes import is_valid_municipality_code
from credentials.errors import ShomeiError
from credentials.keys import SigningKey

PASSPHRASE_ENV = "SHOMEI_KEY_PASSPHRASE"
SUBDIR = "issuer"
KEY_FILE = "signing-key.pem"
STORAGE_KEY_FILE = "storage-key"
SETTINGS_FILE = "issuer.json"
_NONCE = 12


class NotInitialised(ShomeiError):
    """The issuer has no key or settings yet (or no passphrase to open the key)."""


@dataclass(frozen=True, kw_only=True)
class IssuerSettings:
    issuer_id: str  # the iss URL, no trailing slash
    name: str
    municipality_code: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer_id)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("the issuer id must be an http(s) URL")
        if parts.query or parts.fragment or self.issuer_id.endswith("/"):
            raise ValueError("the issuer id must not end with '/' or carry ?query or #fragment")
        if not self.name.strip():
            raise ValueError("the issuer name is empty")
        if not is_valid_municipality_code(self.municipality_code):
            raise ValueError("the municipality code is not a valid 6-digit code")

    def to_json(self) -> dict[str, str]:
        return {
            "issuer_id": self.issuer_id,
            "name": self.name,
            "municipality_code": self.municipality_code,
        }

    @classmethod
    def from_json(cls, data: Any) -> IssuerSettings:
        """Raises ValueError when ``data`` is not a settings object."""
        if not isinstance(data, dict):
            raise ValueError("issuer settings must be a JSON object")
        try:
            return cls(
                issuer_id=str(data["issuer_id"]),
                name=str(data["name"]),
                municipality_code=str(data["municipality_code"]),
            )
        except KeyError as e:
            raise ValueError(f"issuer settings lack {e.args[0]!r}") from None


@dataclass(frozen=True, kw_only=True, repr=False)
class City:
    """The loaded issuer: its settings, signing key and storage key."""

    settings: IssuerSettings
    key: SigningKey
    storage_key: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"City(issuer_id={self.settings.issuer_id!r}, kid={self.key.kid!r})"

    @property
    def issuer_id(self) -> str:
        return self.settings.issuer_id

    def status_uri(self, list_id: int) -> str:
        return f"{self.issuer_id}/status/{list_id}"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.key.jwk, "kid": self.key.kid, "use": "sig", "alg": "ES256"}]}

    def issuer_metadata(self) -> dict[str, Any]:
        """The ``/.well-known/jwt-vc-issuer`` document (SD-JWT VC §5)."""
        return {
            "issuer": self.issuer_id,
            "jwks": self.jwks(),
            "name": self.settings.name,
            "municipality_code": self.settings.municipality_code,
        }

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        """AES-256-GCM under the storage key; ``context`` (e.g. the row's public id) is
        authenticated, so a ciphertext copied to another row does not open."""
        nonce = secrets.token_bytes(_NONCE)
        return nonce + AESGCM(self.storage_key).encrypt(nonce, plaintext, context)

    def unseal(self, sealed: bytes, *, context: bytes) -> bytes:
        """Raises ``cryptography.exceptions.InvalidTag`` when ``sealed`` was altered or
        belongs to another context."""
        return AESGCM(self.storage_key).decrypt(sealed[:_NONCE], sealed[_NONCE:], context)


def issuer_dir(data_dir: Path) -> Path:
    return Path(data_dir) / SUBDIR


def is_initialised(data_dir: Path) -> bool:
    d = issuer_dir(data_dir)
    return all((d / name).exists() for name in (KEY_FILE, STORAGE_KEY_FILE, SETTINGS_FILE))


def init(
    data_dir: Path,
    settings: IssuerSettings,
    *,
    passphrase: str,
    key: SigningKey | None = None,
) -> City:
    """Create the key, storage key and settings files (mode 0600). Raises
    ``FileExistsError`` when a key is already there (never overwritten) and ValueError
    for an empty passphrase."""
    if not passphrase:
        raise ValueError("an empty passphrase would store the key in plain text")
    directory = issuer_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    for name in (KEY_FILE, STORAGE_KEY_FILE, SETTINGS_FILE):
        if (directory / name).exists():
            raise FileExistsError(f"{directory / name} exists: the issuer is initialised")
    key = key or SigningKey.generate()
    storage_key = secrets.token_bytes(32)
    _write_new(directory / KEY_FILE, key.to_encrypted_pem(passphrase))
    _write_new(directory / STORAGE_KEY_FILE, storage_key.hex().encode() + b"\n")
    text = json.dumps(settings.to_json(), ensure_ascii=False, indent=2) + "\n"
    _write_new(directory / SETTINGS_FILE, text.encode("utf-8"))
    return City(settings=settings, key=key, storage_key=storage_key)


def load(data_dir: Path, passphrase: str | None) -> City:
    """The city's issuer from ``data_dir``. Raises :class:`NotInitialised` when a file
    or the passphrase is missing, ``KeyFileError`` for a wrong passphrase."""
    directory = issuer_dir(data_dir)
    if not is_initialised(data_dir):
        raise NotInitialised(
            "発行者の初期設定がされていません。"
            "`shomei issuer init --issuer-id URL --name 市の名前 --municipality-code CODE` "
            "を実行してください",
            "the issuer is not initialised: run "
            "`shomei issuer init --issuer-id URL --name NAME --municipality-code CODE`",
        )
    if not passphrase:
        raise NotInitialised(
            f"署名鍵のパスフレーズがありません（{PASSPHRASE_ENV} を設定してください）",
            f"no passphrase for the signing key (set {PASSPHRASE_ENV})",
        )
    try:
        settings = IssuerSettings.from_json(
            json.loads((directory / SETTINGS_FILE).read_text(encoding="utf-8"))
        )
        storage_key = bytes.fromhex((directory / STORAGE_KEY_FILE).read_text("ascii").strip())
    except (OSError, ValueError) as e:
        raise NotInitialised(
            "発行者の設定ファイルを読み込めません", f"cannot read the issuer settings: {e}"
        ) from None
    if len(storage_key) != 32:
        raise NotInitialised("保管用の鍵が不正です", "the storage key is malformed")
    key = SigningKey.from_encrypted_pem((directory / KEY_FILE).read_bytes(), passphrase)
    return City(settings=settings, key=key, storage_key=storage_key)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
