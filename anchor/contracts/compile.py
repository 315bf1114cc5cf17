"""Compile AnchorRegistry.sol into the committed artifact AnchorRegistry.json.

Usage (from the repository root, after ``npm ci``)::

    python anchor/contracts/compile.py          # rewrite the artifact
    python anchor/contracts/compile.py --check  # exit 1 if the artifact is stale

The compiler is the npm package ``solc`` (pinned in package.json), run offline through
its JavaScript API with a standard-JSON request (the ``solcjs`` command prints a banner
before its JSON); the settings below are fixed so the same source always gives the same
bytes. Imports only the standard library.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SOURCE = HERE / "AnchorRegistry.sol"
ARTIFACT = HERE / "AnchorRegistry.json"
SOLC = ROOT / "node_modules" / "solc"
CONTRACT = "AnchorRegistry"

# "cancun" (PUSH0, MCOPY, TSTORE) runs on py-evm's default PragueVM in eth-tester, on
# anvil's default hardfork, and on Sepolia and mainnet; a newer target could emit
# opcodes some of those do not know yet.
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]},
    },
}


# Reads a standard-JSON request on stdin; writes {"version", "output"} on stdout.
_NODE_SCRIPT = """
const solc = require(process.argv[1]);
const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const output = JSON.parse(solc.compile(Buffer.concat(chunks).toString("utf8")));
  process.stdout.write(JSON.stringify({ version: solc.version(), output }));
});
"""


class CompileError(RuntimeError):
    """node or the solc package is missing, or the compiler reported errors."""


def compile_source(source: str) -> dict[str, Any]:
    """The artifact for ``source``: contractName, abi, bytecode, deployedBytecode,
    compiler (version, settings) and sourceSha256. Raises CompileError."""
    request = {
        "language": "Solidity",
        "sources": {SOURCE.name: {"content": source}},
        "settings": SETTINGS,
    }
    result = json.loads(_run(json.dumps(request)))
    output = result["output"]
    diagnostics = output.get("errors", [])
    for warning in (d for d in diagnostics if d.get("severity") != "error"):
        print(warning.get("formattedMessage", warning["message"]), file=sys.stderr)
    errors = [d for d in diagnostics if d.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(e.get("formattedMessage", e["message"]) for e in errors))
    contract = output["contracts"][SOURCE.name][CONTRACT]
    return {
        "contractName": CONTRACT,
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
        "compiler": {
            "version": result["version"].removesuffix(".Emscripten.clang"),
            "settings": SETTINGS,
        },
        "sourceSha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
    }


def render(artifact: dict[str, Any]) -> str:
    """The artifact as committed: stable key order, two-space indent, final newline."""
    return json.dumps(artifact, indent=2, ensure_ascii=False) + "\n"


def compiler_available() -> bool:
    """Whether the pinned compiler is installed (``npm ci`` was run)."""
    return (SOLC / "package.json").exists()


def _run(request: str) -> str:
    if not compiler_available():
        raise CompileError(f"{SOLC} not found: run `npm ci` in {ROOT}")
    try:
        proc = subprocess.run(
            ["node", "-e", _NODE_SCRIPT, str(SOLC)],
            input=request,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CompileError(f"node did not run: {e}") from e
    if proc.returncode != 0:
        raise CompileError(f"solc failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def main(argv: list[str]) -> int:
    check = "--check" in argv
    fresh = render(compile_source(SOURCE.read_text(encoding="utf-8")))
    current = ARTIFACT.read_text(encoding="utf-8") if ARTIFACT.exists() else ""
    if check:
        if fresh != current:
            print(f"{ARTIFACT.name} is stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    if fresh != current:
        ARTIFACT.write_text(fresh, encoding="utf-8")
        print(f"wrote {ARTIFACT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
