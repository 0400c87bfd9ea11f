"""Sliding-window limits kept in the cache (Redis when REDIS_URL is set), so every process counts together.

A limit of N is N slots that expire `window_s` after they are taken; taking one is an atomic add (SET NX on
Redis), so concurrent requests and processes never get more than N between them.

`hit` makes blocking cache calls: call it from a thread, never on the event loop (the widget socket checks it in
the same database thread call that stores the send)."""
import functools
import math
import time

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import setting_changed
from django.dispatch import receiver


@functools.cache
def _counts() -> BaseCache:
    """One cache client for the whole process. `django.core.cache.cache` is kept per async context, so every
    socket's task and every request got a client, a Redis connection pool and a new connection of its own:
    opening them was an eighth of a visitor message's time under load (py-spy), and left one idle Redis
    connection per socket. Redis clients and the local-memory cache are both safe to share between threads."""
    return caches.create_connection("default")


@receiver(setting_changed)
def _forget_counts(setting: str, **kwargs) -> None:
    if setting == "CACHES":
        _counts.cache_clear()


def hit(key: str, *, limit: int, window_s: float) -> float | None:
    """Count one event; None when allowed, else the seconds to wait before the next one would be."""
    now = time.time()
    slots = [f"ratelimit:{key}:{n}" for n in range(limit)]
    counts = _counts()
    taken = counts.get_many(slots)
    for slot in slots:
        if slot not in taken and counts.add(slot, now, timeout=max(1, math.ceil(window_s))):
            return None
    oldest = min(counts.get_many(slots).values(), default=now)
    return max(0.1, round(oldest + window_s - now, 1))
