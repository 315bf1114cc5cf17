"""Benchmark: a Merkle batch of 100,000 credentials, and inclusion verification.

Prints ``name: value unit`` lines, each the median of several runs on one core:

- ``merkle_root_100k``: ``build()`` over 100,000 leaf hashes (input checks included);
- ``merkle_root_and_receipts_100k``: ``build()`` plus ``receipts()`` for every leaf;
- ``merkle_verify_inclusion``: ``verify_inclusion()`` calls per second in that tree.

When ``blockcerts-merkletools`` (the Merkle library under Blockcerts' cert-issuer) or
the original ``merkletools`` is installed, the same three numbers for it follow, on the
same leaves in the same run, and ``merkle_vs_merkletools_100k`` is its root-and-every-
proof time divided by ours. The peer takes hex strings; they are loaded into it before
timing, so its numbers cover only tree building and proofs.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import importlib.metadata
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as `python bench/merkle.py`, Python puts bench/ first on sys.path, where a
# bench script named after a package (bench/credentials.py) would stand in for it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from anchor.merkle import Receipt, build, leaf_from_digest, verify_inclusion  # noqa: E402

SIZE = 100_000
RUNS = 7
PEER_RUNS = 3
VERIFY_SAMPLE = 20_000


def median_seconds(action: Callable[[], object], runs: int) -> float:
    """Return the median wall time of ``runs`` calls of ``action``, each after a collection.

    The result is released after the clock stops: freeing 100,000 receipts is not part
    of making them.
    """
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
        del result
    return statistics.median(times)


def report(name: str, value: float, unit: str) -> None:
    text = f"{value:.0f}" if unit == "/s" else f"{value:.1f}"
    print(f"{name}: {text} {unit}", flush=True)


def sample_indices() -> list[int]:
    # A fixed stride that visits both halves of the tree and the promoted right edge.
    return [(i * 7_919) % SIZE for i in range(VERIFY_SAMPLE)]


def bench_ours(leaves: list[bytes]) -> float:
    """Print our lines; return the root-and-receipts time in seconds."""
    report("merkle_root_100k", 1000 * median_seconds(lambda: build(leaves), RUNS), "ms")
    both = median_seconds(lambda: build(leaves).receipts(batch_id=1), RUNS)
    report("merkle_root_and_receipts_100k", 1000 * both, "ms")

    batch = build(leaves)
    receipts = batch.receipts(batch_id=1)
    cases: list[tuple[bytes, Receipt]] = [(leaves[i], receipts[i]) for i in sample_indices()]

    def verify_all() -> None:
        for leaf, receipt in cases:
            verify_inclusion(leaf, receipt, batch.root)

    report("merkle_verify_inclusion", len(cases) / median_seconds(verify_all, RUNS), "/s")
    return both


def load_peer() -> tuple[Any, str] | None:
    """Return the peer's ``MerkleTools`` class and a label, or ``None`` if not installed."""
    for module, distribution in (
        ("blockcerts_merkletools", "blockcerts-merkletools"),
        ("merkletools", "merkletools"),
    ):
        try:
            tools = importlib.import_module(module).MerkleTools
        except ImportError:
            continue
        return tools, f"{distribution} {importlib.metadata.version(distribution)}"
    return None


def bench_peer(tools_class: Any, leaves: list[bytes]) -> float:
    """Print the peer's lines; return its root-and-every-proof time in seconds."""
    tools = tools_class(hash_type="sha256")
    tools.add_leaf([leaf.hex() for leaf in leaves])

    def root_and_proofs() -> list[Any]:
        tools.make_tree()
        return [tools.get_proof(i) for i in range(SIZE)]

    report("merkletools_root_100k", 1000 * median_seconds(tools.make_tree, PEER_RUNS), "ms")
    both = median_seconds(root_and_proofs, PEER_RUNS)
    report("merkletools_root_and_receipts_100k", 1000 * both, "ms")

    tools.make_tree()
    root = tools.get_merkle_root()
    cases = [(tools.get_proof(i), leaves[i].hex()) for i in sample_indices()]
    if not all(tools.validate_proof(proof, leaf, root) for proof, leaf in cases[:10]):
        raise SystemExit("peer proofs do not validate: the comparison would be meaningless")

    def verify_all() -> None:
        for proof, leaf in cases:
            tools.validate_proof(proof, leaf, root)

    report("merkletools_verify_inclusion", len(cases) / median_seconds(verify_all, RUNS), "/s")
    return both


def main() -> None:
    leaves = [leaf_from_digest(hashlib.sha256(b"jwt %d" % i).digest()) for i in range(SIZE)]
    ours = bench_ours(leaves)
    peer = load_peer()
    if peer is None:
        print("# peer merkletools not installed: skipped", file=sys.stderr)
        return
    tools_class, label = peer
    print(f"# peer: {label}", file=sys.stderr)
    theirs = bench_peer(tools_class, leaves)
    report("merkle_vs_merkletools_100k", theirs / ours, "x")


if __name__ == "__main__":
    main()
