"""The committed AnchorRegistry artifact is exactly what the pinned compiler makes of the
committed source, with the settings both backends need."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "anchor" / "contracts"
SOURCE = CONTRACTS / "AnchorRegistry.sol"
ARTIFACT = CONTRACTS / "AnchorRegistry.json"


def load_compiler() -> ModuleType:
    # compile.py is a script, not a package module: load it from its path.
    spec = importlib.util.spec_from_file_location(
        "anchor_registry_compile", CONTRACTS / "compile.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def artifact() -> dict:
    return json.loads(ARTIFACT.read_text(encoding="utf-8"))


def pinned(package: str) -> str:
    return json.loads((ROOT / "package.json").read_text())["devDependencies"][package]


def test_artifact_matches_the_source_hash():
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert artifact()["sourceSha256"] == digest, (
        "AnchorRegistry.sol changed after the artifact was built: "
        "run `python anchor/contracts/compile.py`"
    )


def test_artifact_records_the_pinned_compiler_and_settings():
    a = artifact()
    assert a["contractName"] == "AnchorRegistry"
    assert a["compiler"]["version"].startswith(pinned("solc") + "+commit.")
    settings = a["compiler"]["settings"]
    assert settings["optimizer"] == {"enabled": True, "runs": 200}
    assert settings["evmVersion"] == "cancun"
    pragma = re.search(r"pragma solidity ([^;]+);", SOURCE.read_text()).group(1)
    assert pragma == pinned("solc")
    assert a["bytecode"].startswith("0x60") and a["deployedBytecode"].startswith("0x60")


def test_artifact_is_what_the_compiler_makes_of_the_source():
    compiler = load_compiler()
    if not compiler.compiler_available() or shutil.which("node") is None:
        reason = "node_modules/solc or node is missing: run `npm ci` at the repository root"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    fresh = compiler.render(compiler.compile_source(SOURCE.read_text(encoding="utf-8")))
    assert fresh == ARTIFACT.read_text(encoding="utf-8"), (
        "anchor/contracts/AnchorRegistry.json is stale: run `python anchor/contracts/compile.py`"
    )
