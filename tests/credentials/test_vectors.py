"""Every SD-JWT test vector in ``tests/vectors/sd_jwt/`` through ``sdjwt.verify``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from credentials import errors, sdjwt
from credentials.keys import public_key_from_jwk
from credentials.trust import TrustList

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
VALID = sorted((VECTORS / "sd_jwt" / "valid").glob("*.json"))
INVALID = sorted((VECTORS / "sd_jwt" / "invalid").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def trust_for(vector: dict[str, Any]) -> TrustList:
    public = {k: v for k, v in vector["issuer_key"].items() if k != "d"}
    return TrustList.from_json(
        TrustList.document(vector["issuer"], name="test", municipality_code="000000", jwks=[public])
    )


def run(vector: dict[str, Any]) -> sdjwt.VerifiedCredential:
    return sdjwt.verify(
        vector["presentation"],
        resolve_key=trust_for(vector).resolve_key,
        now=vector["now"],
        **vector["options"],
    )


def test_there_are_vectors_of_both_kinds():
    assert len(VALID) >= 10, "valid vectors are missing"
    assert len(INVALID) >= 25, "invalid vectors are missing"


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_valid_vector(path: Path):
    vector = load(path)
    expected = vector["expected"]
    assert expected["valid"] is True, f"{path.name} sits under valid/"
    result = run(vector)
    assert result.disclosed == expected["disclosed"], vector["description"]
    assert result.key_bound is expected["key_bound"]
    assert result.issuer == vector["issuer"]


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_invalid_vector(path: Path):
    vector = load(path)
    expected = vector["expected"]
    assert expected["valid"] is False, f"{path.name} sits under invalid/"
    error = getattr(errors, expected["error"])
    with pytest.raises(error, match=expected["message"]) as info:
        run(vector)
    assert type(info.value) is error, f"{vector['description']}: got {type(info.value)}"


@pytest.mark.parametrize("path", VALID + INVALID, ids=[p.name for p in VALID + INVALID])
def test_vector_key_is_a_p256_key_pair(path: Path):
    jwk = load(path)["issuer_key"]
    assert set(jwk) == {"kty", "crv", "x", "y", "d"}
    public_key_from_jwk({k: v for k, v in jwk.items() if k != "d"})


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS / "make_vectors.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_vectors_are_what_the_generator_writes():
    """Signatures are RFC 6979 deterministic, so the generator reproduces every byte."""
    gen = _generator()
    built = gen.build()
    on_disk = {p.relative_to(VECTORS / "sd_jwt").as_posix() for p in VALID + INVALID}
    assert set(built) == on_disk, "run tests/vectors/make_vectors.py"
    for rel, vector in built.items():
        text = (VECTORS / "sd_jwt" / rel).read_text(encoding="utf-8")
        assert text == gen.render(vector), f"{rel} is stale: run tests/vectors/make_vectors.py"
