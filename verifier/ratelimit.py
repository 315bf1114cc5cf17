"""A small in-memory, per-client token bucket (thread-safe, time as a parameter)."""

from __future__ import annotations

import threading
from collections import OrderedDict


class RateLimiter:
    """Allows ``per_minute`` requests per key, refilled continuously, bursts up to the
    same number. Keeps at most ``max_keys`` buckets (the least recently seen go first),
    so a flood of addresses cannot exhaust memory."""

    def __init__(self, per_minute: int, *, max_keys: int = 10_000) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str, *, now: float) -> bool:
        """Return whether one more request from ``key`` is allowed at time ``now``
        (and take its token)."""
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + max(0.0, now - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return allowed

    def retry_after(self) -> int:
        """Return the seconds after which one token is back (for ``Retry-After``)."""
        return max(1, round(1.0 / self.rate))
