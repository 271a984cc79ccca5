"""Per-device rate limit of device→central messages: a token bucket per device id, pure (the clock is passed in).

A device may send ``rate_per_s`` messages per second on average and ``burst`` at once. Buckets that have refilled
completely carry no information and are pruned once more than ``max_devices`` are tracked; if a flood across many
device ids still exceeds that, the oldest buckets are forgotten (those devices start again with a full bucket).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class DeviceRateLimiter:
    def __init__(self, rate_per_s: float, burst: int, *, max_devices: int = 100_000) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self._rate = rate_per_s
        self._burst = float(burst)
        self._max = max_devices
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, device_id: str, now_s: float) -> bool:
        """Take one token from ``device_id``'s bucket; False when it is empty (the message is over the limit)."""
        bucket = self._buckets.get(device_id)
        if bucket is None:
            if len(self._buckets) >= self._max:
                self._prune(now_s)
            bucket = self._buckets[device_id] = _Bucket(self._burst, now_s)
        else:
            bucket.tokens = min(self._burst, bucket.tokens + (now_s - bucket.at) * self._rate)
            bucket.at = now_s
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _prune(self, now_s: float) -> None:
        full = [d for d, b in self._buckets.items() if b.tokens + (now_s - b.at) * self._rate >= self._burst]
        for d in full:
            del self._buckets[d]
        excess = len(self._buckets) - self._max + 1
        if excess > 0:
            for d in list(self._buckets)[:excess]:  # insertion order: the oldest first
                del self._buckets[d]
