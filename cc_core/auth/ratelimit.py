"""Login rate limit per (client address, username), as upstream: a burst of 5, then one per 3 minutes.

Kept in process memory: with several replicas the effective limit is per replica, which still stops
password guessing at useful rates (a shared limiter would need the database on every login).
"""

from __future__ import annotations

import threading
import time


class LoginRateLimiter:
    def __init__(self, burst: int = 5, refill_seconds: float = 180.0, max_entries: int = 100_000) -> None:
        self.burst = burst
        self.refill = refill_seconds
        self.max_entries = max_entries
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, username: str, now: float | None = None) -> bool:
        """Take one token for this attempt; False when the bucket is empty."""
        t = time.monotonic() if now is None else now
        key = (client, username.lower())
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), t))
            tokens = min(float(self.burst), tokens + (t - last) / self.refill)
            if tokens < 1.0:
                self._buckets[key] = (tokens, t)
                return False
            self._buckets[key] = (tokens - 1.0, t)
            if len(self._buckets) > self.max_entries:
                self._evict(t)
            return True

    def _evict(self, now: float) -> None:
        full_after = self.burst * self.refill
        for key, (_, last) in list(self._buckets.items()):
            if now - last > full_after:
                del self._buckets[key]


def safe_redirect_target(target: str | None, default: str = "/") -> str:
    """Only same-site relative paths: no scheme, no host, no protocol-relative ``//host``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(c) < 0x20 for c in target):
        return default
    return target
