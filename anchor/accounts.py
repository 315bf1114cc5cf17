"""Ethereum accounts of issuers and of the governance: keys held locally, never by a node.

A :class:`ChainAccount` wraps an eth_account ``LocalAccount``: transactions are signed in
this process and sent raw, so any JSON-RPC endpoint (even an untrusted public one) can
carry them. Keys are stored as Ethereum keystore JSON (scrypt or PBKDF2 + AES-128-CTR);
the passphrase comes from the caller and is never logged or kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount

from credentials.errors import KeyFileError

#: The mnemonic every anvil, hardhat and foundry dev node funds its accounts from. Its
#: keys are public knowledge: only for local development chains.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_HD_PATH = "m/44'/60'/0'/0"


@dataclass(frozen=True)
class ChainAccount:
    """An account that signs transactions locally. ``repr`` shows only the address."""

    local: LocalAccount = field(repr=False)
    address: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", self.local.address)

    @classmethod
    def generate(cls) -> ChainAccount:
        """A fresh random account."""
        return cls(Account.create())

    @classmethod
    def from_key(cls, private_key: bytes | str) -> ChainAccount:
        """The account of a raw 32-byte private key (bytes or 0x hex).

        Raises ValueError when it is not a valid secp256k1 private key."""
        return cls(Account.from_key(private_key))

    @classmethod
    def dev(cls, index: int = 0) -> ChainAccount:
        """Account ``index`` of the well-known development mnemonic: funded on anvil and
        on :class:`~anchor.backends.EvmNode`. Never use it on a public network."""
        if not 0 <= index < 2**31:
            raise ValueError("index out of range")
        seed = seed_from_mnemonic(DEV_MNEMONIC, "")
        return cls(Account.from_key(key_from_seed(seed, f"{DEV_HD_PATH}/{index}")))

    @classmethod
    def from_keystore(
        cls, keystore: str | bytes | Path | dict[str, Any], passphrase: str
    ) -> ChainAccount:
        """Decrypt an Ethereum keystore (JSON text, a file path, or the parsed dict).

        Raises :class:`KeyFileError` for a wrong passphrase, an unreadable file or a file
        that is not a keystore."""
        try:
            if isinstance(keystore, Path):
                data: Any = json.loads(keystore.read_text(encoding="utf-8"))
            elif isinstance(keystore, str | bytes):
                data = json.loads(keystore)
            else:
                data = keystore
        except (OSError, ValueError) as e:
            raise KeyFileError(
                "鍵ストアを読み込めません", f"cannot read the keystore: {type(e).__name__}"
            ) from None
        try:
            key = Account.decrypt(data, passphrase)
        except ValueError:
            # eth_account says "MAC mismatch" for a wrong passphrase; other ValueErrors
            # mean a malformed keystore. Neither message may echo the passphrase.
            raise KeyFileError(
                "鍵ストアを復号できません（パスフレーズが違うか、形式が不正です）",
                "cannot decrypt the keystore (wrong passphrase or malformed file)",
            ) from None
        except (KeyError, TypeError):
            raise KeyFileError("鍵ストアの形式ではありません", "not a keystore") from None
        return cls(Account.from_key(key))

    def to_keystore(
        self,
        passphrase: str,
        *,
        kdf: Literal["scrypt", "pbkdf2"] = "scrypt",
        iterations: int | None = None,
    ) -> dict[str, Any]:
        """The encrypted keystore dict (write it with ``json.dumps``). ``iterations`` only
        lowers the work factor in tests; the defaults are eth_account's."""
        if not passphrase:
            raise ValueError("an empty passphrase would leave the key unprotected")
        return Account.encrypt(self.local.key, passphrase, kdf=kdf, iterations=iterations)
