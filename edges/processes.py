"""Child processes beside a server: forked, stopped gracefully, never left behind.

``shomei issuer serve`` runs its anchoring worker in a child beside gunicorn, and
``shomei demo`` runs the three services as children. A child is forked from a process
that has built its app but started no thread, asks the kernel for SIGTERM should its
parent die (Linux), and is stopped with SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Mapping

_PR_SET_PDEATHSIG = 1
_POLL = 0.1


def fork(target: Callable[[], int | None]) -> int:
    """Run ``target`` in a forked child and return the child's pid. The child exits
    with ``target``'s return value (None is 0), or 1 when it raises."""
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        # Not the parent's handlers (gunicorn's master queues signals for its loop).
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        _die_with(parent)
        code = target() or 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()  # the operator's log: this child stopped unexpectedly
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _die_with(parent: int) -> None:
    """SIGTERM to this process when ``parent`` dies, where the kernel offers it."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before the request above
        os._exit(1)


def exited(pid: int) -> bool:
    """Whether child ``pid`` has ended (reaping it; True also when another wait already
    reaped it, as gunicorn's master does for any child of its own)."""
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for child ``pid`` to end; whether it did."""
    deadline = time.monotonic() + timeout
    while not exited(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def stop(pids: list[int], *, grace: float) -> None:
    """SIGTERM to each child, SIGKILL to those still running after ``grace`` seconds."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid in pids:
        if not wait_exit(pid, max(0.0, deadline - time.monotonic())):
            _signal(pid, signal.SIGKILL)
            wait_exit(pid, 5.0)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def supervise(children: Mapping[str, int], *, grace: float) -> int:
    """Wait until SIGTERM or SIGINT arrives or a child ends, then stop every child.
    Returns 0 after a signal, 1 when a child ended by itself (its name is printed)."""
    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        ended = None
        while not stopping and ended is None:
            ended = next((name for name, pid in children.items() if exited(pid)), None)
            time.sleep(_POLL)
        if ended is not None:
            print(f"停止しました / stopped: {ended}", file=sys.stderr)
        stop(list(children.values()), grace=grace)
        return 0 if ended is None else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_listening(host: str, port: int, *, pid: int, timeout: float) -> bool:
    """Wait until something accepts connections on ``host:port`` while child ``pid``
    runs; whether it does within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exited(pid):
            return False
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(_POLL)
    return False
