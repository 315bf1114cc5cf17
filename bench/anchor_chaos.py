"""Benchmark: anchoring with several workers on one database (DESIGN §6, issue → anchored
"also with two workers and the leader killed").

Runs the chaos scenario of ``tests/anchor/test_chaos.py`` (real worker processes with
their lease, anvil mining a block a second, ``max_age`` 2 s, 2 confirmations, four clerk
threads) on SQLite and prints ``name: value unit`` lines:

- ``lag_{quiet,chaos}_{full,paced}_{p50,p95,max}``: seconds from a leaf's commit to its
  batch's receipts being stored, with two workers; *quiet* kills nothing, *chaos* kills
  the leader at its crash points and restarts the node; *full* is the clerks at the
  database's full rate (hundreds a second), *paced* about 60 a second (four clerks at
  the HTTP issuer's measured rate);
- ``takeover_{p50,max}``: seconds from the leader's SIGKILL to another process leading.

Run: ``.venv/bin/python bench/anchor_chaos.py`` (anvil from ``npm ci``), about 4 minutes.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "anchor")]

from test_chaos import run_chaos  # noqa: E402

from anchor.accounts import ChainAccount  # noqa: E402

PACED = 4 / 60  # each of four clerks: one credential every 67 ms, about 60 a second


def main() -> None:
    people = SimpleNamespace(governance=ChainAccount.dev(0))
    takeovers: list[float] = []
    for chaos in (False, True):
        for rate, pause in (("full", 0.002), ("paced", PACED)):
            with tempfile.TemporaryDirectory() as tmp:
                d = Path(tmp)
                figures = run_chaos(
                    "sqlite", 2, f"sqlite:///{d / 'shomei.db'}", d, people,
                    seed=11, clerk_pause=pause, chaos=chaos,
                )  # fmt: skip
            name = f"lag_{'chaos' if chaos else 'quiet'}_{rate}"
            print(f"{name}_issued: {figures['issued']} credentials")
            print(f"{name}_rate: {figures['issue_rate_per_s']} /s")
            for q in ("p50", "p95", "max"):
                print(f"{name}_{q}: {figures[f'lag_{q}_s']} s")
            takeovers += figures["takeover_s"]
    if takeovers:
        print(f"takeover_p50: {statistics.median(takeovers):.2f} s")
        print(f"takeover_max: {max(takeovers):.2f} s")


if __name__ == "__main__":
    main()
