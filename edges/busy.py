"""Bounded concurrency for the expensive steps (image decodes, PDF renders): a few at
once per process, a short wait for a turn, and then a 503 with ``Retry-After`` instead
of a queue that grows with the flood. Pure: no web framework."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from credentials.errors import CodedError


class Busy(CodedError):
    """Every slot stayed taken for the whole wait: answer 503, ``Retry-After`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "busy",
            "ただいま混み合っています。少し待ってからやり直してください",
            "busy: too many images or PDFs are being read; try again shortly",
            status=503,
        )
        self.retry_after = retry_after


class Gate:
    """At most ``slots`` holders at once; a caller waits ``wait`` seconds for a turn
    at most. Thread-safe; one per process and kind of work."""

    def __init__(self, slots: int, *, wait: float) -> None:
        if slots < 1 or wait < 0:
            raise ValueError("slots must be >= 1 and wait >= 0")
        self.slots = slots
        self.wait = wait
        self._free = threading.BoundedSemaphore(slots)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold a slot for the ``with`` block. Raises :class:`Busy` after the wait."""
        if not self._free.acquire(timeout=self.wait):
            raise Busy(retry_after=max(1, math.ceil(self.wait)))
        try:
            yield
        finally:
            self._free.release()
