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
