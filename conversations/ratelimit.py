"""Sliding-window limits kept in the cache (Redis when REDIS_URL is set), so every process counts together.

A limit of N is N slots that expire `window_s` after they are taken; taking one is an atomic add (SET NX on
Redis), so concurrent requests and processes never get more than N between them.

`hit` makes blocking cache calls: call it from a thread, never on the event loop (the widget socket checks it in
the same database thread call that stores the send)."""
import math
import time

from django.core.cache import cache


def hit(key: str, *, limit: int, window_s: float) -> float | None:
    """Count one event; None when allowed, else the seconds to wait before the next one would be."""
    now = time.time()
    slots = [f"ratelimit:{key}:{n}" for n in range(limit)]
    taken = cache.get_many(slots)
    for slot in slots:
        if slot not in taken and cache.add(slot, now, timeout=max(1, math.ceil(window_s))):
            return None
    oldest = min(cache.get_many(slots).values(), default=now)
    return max(0.1, round(oldest + window_s - now, 1))
