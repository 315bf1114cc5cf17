"""The city's signing key and issuer settings, kept in the data directory.

``shomei issuer init`` writes three files under ``<data dir>/issuer/``, each mode 0600:

- ``signing-key.pem``: the city's P-256 key, PKCS#8 encrypted with the passphrase from
  ``SHOMEI_KEY_PASSPHRASE`` (or a prompt);
- ``storage-key``: 32 random bytes (hex) that encrypt issued credentials at rest in the
  database (AES-256-GCM), so a database dump alone reveals no resident's data;
- ``issuer.json``: the issuer id (the ``iss`` URL), the city's name and its
  全国地方公共団体コード.

After the first key rotation a fourth file, ``key-history.json``, records since when
the current key signs and the *public* JWKs of the retired keys (their private parts
are dropped: a retired key never signs again). ``/.well-known/jwt-vc-issuer`` keeps
publishing retired keys that are not marked compromised, so credentials already
issued with them still verify. A directory without the file (made by :func:`init`) has
no retired keys.

:func:`switch_key` replaces the current key crash-safely: every file is written to a
temporary file and moved into place with ``os.replace``, the history (which only adds
the old key's public JWK) before the new private key, and :func:`load` trusts
``signing-key.pem`` for which key is current. A crash between the two leaves the old
key current and usable, listed once.

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

from anchor import files
from credentials.doctypes import is_valid_municipality_code
from credentials.errors import ShomeiError
from credentials.keys import SigningKey, jwk_thumbprint, public_key_from_jwk

PASSPHRASE_ENV = "SHOMEI_KEY_PASSPHRASE"
SUBDIR = "issuer"
KEY_FILE = "signing-key.pem"
STORAGE_KEY_FILE = "storage-key"
SETTINGS_FILE = "issuer.json"
HISTORY_FILE = "key-history.json"
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


@dataclass(frozen=True, kw_only=True)
class RetiredKey:
    """A signing key that no longer signs: its public JWK only, for verifiers."""

    kid: str
    jwk: dict[str, str]  # public: kty, crv, x, y
    since: float | None  # when it became the current key (None: unknown)
    retired_at: float  # when the city stopped signing with it
    compromised: bool = False  # True: no longer published

    def to_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "jwk": self.jwk,
            "since": self.since,
            "retired_at": self.retired_at,
            "compromised": self.compromised,
        }

    @classmethod
    def from_json(cls, data: Any) -> RetiredKey:
        """Raises ValueError unless ``data`` is a retired key with a public P-256 JWK
        whose thumbprint is its kid."""
        if not isinstance(data, dict):
            raise ValueError("a retired key must be a JSON object")
        try:
            jwk = {k: str(data["jwk"][k]) for k in ("kty", "crv", "x", "y")}
            public_key_from_jwk(jwk)
            kid = str(data["kid"])
            since = data.get("since")
            key = cls(
                kid=kid,
                jwk=jwk,
                since=None if since is None else float(since),
                retired_at=float(data["retired_at"]),
                compromised=bool(data.get("compromised", False)),
            )
        except (KeyError, TypeError, ShomeiError) as e:
            raise ValueError(f"a retired key is malformed: {e}") from None
        if jwk_thumbprint(jwk) != kid:
            raise ValueError("a retired key's kid is not its JWK thumbprint")
        return key


@dataclass(frozen=True, kw_only=True, repr=False)
class City:
    """The loaded issuer: its settings, signing key and storage key, and the retired
    keys (public parts only) it still publishes."""

    settings: IssuerSettings
    key: SigningKey
    storage_key: bytes = field(repr=False)
    key_since: float | None = None  # when the current key started signing (None: unknown)
    retired: tuple[RetiredKey, ...] = ()

    def __repr__(self) -> str:
        return f"City(issuer_id={self.settings.issuer_id!r}, kid={self.key.kid!r})"

    @property
    def issuer_id(self) -> str:
        return self.settings.issuer_id

    def status_uri(self, list_id: int) -> str:
        return f"{self.issuer_id}/status/{list_id}"

    def jwks(self) -> dict[str, Any]:
        """The current key first (the only one that signs), then the retired keys that
        are not compromised: credentials issued with them still verify."""
        keys = [{**self.key.jwk, "kid": self.key.kid, "use": "sig", "alg": "ES256"}]
        keys += [
            {**r.jwk, "kid": r.kid, "use": "sig", "alg": "ES256"}
            for r in self.retired
            if not r.compromised
        ]
        return {"keys": keys}

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
    directory = files.make_private_dir(issuer_dir(data_dir))
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
    except (OSError, ValueError) as e:
        raise NotInitialised(
            "発行者の設定ファイルを読み込めません", f"cannot read the issuer settings: {e}"
        ) from None
    storage_key = read_storage_key(data_dir)
    if storage_key is None:
        raise NotInitialised("保管用の鍵がありません", "the storage key is missing")
    key = SigningKey.from_encrypted_pem((directory / KEY_FILE).read_bytes(), passphrase)
    since, retired = _read_history(directory, key.kid)
    return City(
        settings=settings, key=key, storage_key=storage_key, key_since=since, retired=retired
    )


def read_storage_key(data_dir: Path) -> bytes | None:
    """The storage key alone (it needs no passphrase: database migrations that seal
    existing rows read it), None when the issuer has none yet. Raises
    :class:`NotInitialised` when the file is there but unreadable or malformed."""
    path = issuer_dir(data_dir) / STORAGE_KEY_FILE
    try:
        storage_key = bytes.fromhex(path.read_text("ascii").strip())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise NotInitialised(
            "保管用の鍵を読み込めません", f"cannot read the storage key: {e}"
        ) from None
    if len(storage_key) != 32:
        raise NotInitialised("保管用の鍵が不正です", "the storage key is malformed")
    return storage_key


def switch_key(
    data_dir: Path, city: City, new_key: SigningKey, *, passphrase: str, now: float
) -> City:
    """Make ``new_key`` the current signing key and retire ``city.key`` (its public JWK
    kept in the history, its private part dropped). Returns the new :class:`City`.

    Crash-safe: first the history (adding the old key as retired, naming the new one),
    then the new encrypted PEM, each written to a temporary file and moved into place.
    Raises ValueError for an empty passphrase or when ``signing-key.pem`` no longer
    holds ``city.key`` (another rotation came first), OSError when a write fails (the
    key in place then still works)."""
    if not passphrase:
        raise ValueError("an empty passphrase would store the key in plain text")
    if new_key.kid == city.key.kid:
        raise ValueError("the new key is the current key")
    directory = issuer_dir(data_dir)
    on_disk = SigningKey.from_encrypted_pem((directory / KEY_FILE).read_bytes(), passphrase)
    if on_disk.kid != city.key.kid:
        raise ValueError("the signing key changed on disk: reload the issuer first")
    old = RetiredKey(kid=city.key.kid, jwk=dict(city.key.jwk), since=city.key_since, retired_at=now)
    retired = (*(r for r in city.retired if r.kid not in (old.kid, new_key.kid)), old)
    history = {
        "version": 1,
        "current": {"kid": new_key.kid, "since": now},
        "retired": [r.to_json() for r in retired],
    }
    text = json.dumps(history, ensure_ascii=False, indent=2) + "\n"
    write_atomic(directory / HISTORY_FILE, text.encode("utf-8"))
    write_atomic(directory / KEY_FILE, new_key.to_encrypted_pem(passphrase))
    return City(
        settings=city.settings,
        key=new_key,
        storage_key=city.storage_key,
        key_since=now,
        retired=retired,
    )


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (mode 0600) so that a reader, or the process after
    a crash, sees either the old content or the new one, never a part: a temporary file
    in the same directory, flushed to disk, then ``os.replace``. Raises OSError."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _read_history(directory: Path, current_kid: str) -> tuple[float | None, tuple[RetiredKey, ...]]:
    """(since when the current key signs, the retired keys other than the current one)
    from ``key-history.json``; (None, ()) without the file. Raises NotInitialised when
    it is malformed (never silently: it lists keys verifiers still need)."""
    path = directory / HISTORY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, ()
    except (OSError, ValueError) as e:
        raise NotInitialised(
            "署名鍵の履歴ファイルを読み込めません", f"cannot read the key history: {e}"
        ) from None
    try:
        current = data.get("current") or {}
        retired = tuple(RetiredKey.from_json(r) for r in data.get("retired", []))
        since = current.get("since") if current.get("kid") == current_kid else None
        since = None if since is None else float(since)
    except (AttributeError, TypeError, ValueError) as e:
        raise NotInitialised(
            "署名鍵の履歴ファイルが不正です", f"the key history is malformed: {e}"
        ) from None
    # After a crash between the two writes of switch_key the history already lists the
    # key still in signing-key.pem as retired: it is the current key.
    return since, tuple(r for r in retired if r.kid != current_kid)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
