"""One anchoring worker process for the chaos test (test_chaos.py): the issuer's
``AnchorWorker`` around a ``Batcher`` with its lease, on a database and a node given on
the command line, signing as anvil's dev account 1.

It kills itself with SIGKILL at a crash point when the test asks: the test writes the
point's name into ``--kill-file``; the first worker to reach that point takes the file
(an atomic rename, so exactly one dies) and dies there, mid-step, as a crash would.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from anchor.accounts import ChainAccount  # noqa: E402
from anchor.backends import RpcChain  # noqa: E402
from anchor.batcher import Batcher, BatchPolicy  # noqa: E402
from anchor.lease import Lease  # noqa: E402
from anchor.store import create_schema, make_engine  # noqa: E402
from issuer.worker import AnchorWorker  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--rpc", required=True)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--kill-file", required=True)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--confirmations", type=int, default=2)
    ap.add_argument("--max-leaves", type=int, default=1024)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.name} %(name)s %(message)s")
    kill_file = Path(args.kill_file)

    def crash_hook(point: str) -> None:
        try:
            wanted = kill_file.read_text().strip()
        except OSError:
            return
        if wanted != point:
            return
        try:
            os.rename(kill_file, f"{kill_file}.{os.getpid()}")  # exactly one taker
        except OSError:
            return
        logging.getLogger("chaos").warning("killed at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)

    engine = make_engine(args.db)
    create_schema(engine)
    account = ChainAccount.dev(1)
    chain = RpcChain([args.rpc], 31337, args.registry, account, timeout=(1.0, 3.0))
    batcher = Batcher(
        engine=engine,
        chain=chain,
        issuer_address=account.address,
        policy=BatchPolicy(
            max_age=args.interval,
            max_leaves=args.max_leaves,
            confirmations=args.confirmations,
            backoff_max=2.0,
            rebroadcast_every=1.0,
            replace_after=30.0,
        ),
        crash_hook=crash_hook,
        lease=Lease(engine, holder=f"{args.name}:{os.getpid()}"),
    )
    worker = AnchorWorker(batcher, poll=0.1).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    worker.stop()
    engine.dispose()


if __name__ == "__main__":
    main()
