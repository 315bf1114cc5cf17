"""Shared fixtures: the issuer's, the holder's and an attacker's P-256 keys."""

from __future__ import annotations

import pytest

from credentials.keys import SigningKey


@pytest.fixture(scope="session")
def issuer_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="session")
def holder_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="session")
def attacker_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(autouse=True, scope="session")
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep every test (and every `shomei` it starts) away from ./data, where an
    operator's local chain and database may live."""
    import os

    os.environ["SHOMEI_DATA_DIR"] = str(tmp_path_factory.mktemp("shomei-data"))
    for name in (
        "SHOMEI_RPC_URLS",
        "SHOMEI_CHAIN_ID",
        "SHOMEI_REGISTRY_ADDRESS",
        "SHOMEI_DATABASE_URL",
    ):
        os.environ.pop(name, None)
