"""Rate limits kept in the cache (Redis when REDIS_URL is set), so every process counts together.

The algorithm is GCRA (the generic cell rate algorithm): each key stores one number, its "theoretical arrival
time" (TAT), so a hit costs the same whatever the limit: one EVALSHA round trip on Redis, one locked read and
write on the local-memory cache. (The sliding slots it replaces read one key per slot: a limit of N cost N reads
on every hit, and at a limit of a million one new visitor took seconds.)

The exact semantics of `hit(key, limit=N, window_s=W)`, with the emission interval T = W / N:

- an event is allowed when, after it, TAT - now <= W, where TAT = max(TAT, now) + T; a refused event changes
  nothing (it does not push the allowed ones further away);
- so a burst of N events at once passes, the next one N + 1 is refused, and one more passes every T after that:
  over time the rate is N per W;
- in any window of W, at most 2N - 1 events pass (a burst of N right after an idle W, then N - 1 at the rate
  of one per T), and in any window of W that starts with the bucket full (after a burst), at most N;
  an exact "at most N in any W" needs N timestamps per key, which is the O(N) cost this replaces;
- a refused hit answers the seconds until the next event would be allowed: TAT + T - W - now, rounded to
  0.1 s (at least 0.1).

The Redis clock (TIME inside the script) is the one clock of every process, so they never disagree about now.
The local-memory cache lives in one process: its read-modify-write runs under a process lock.

`hit` makes blocking cache calls: call it from a thread, never on the event loop (the widget socket checks it in
the same database thread call that stores the send); `hit_on_loop` is the same step for the event loop. Errors of
the cache (redis.RedisError, OSError) reach the caller, which decides (the widget socket lets a send through, with a
warning, while Redis is down)."""
import functools
import hashlib
import math
import threading
import time
import weakref

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.exceptions import ResponseError

from livechat import loop_io, resp

# KEYS[1]: the key's TAT; ARGV: emission interval T and window W, in microseconds (integers: exact arithmetic).
# Returns 0 when allowed, else the wait in microseconds. Numbers are formatted by hand: Redis turns a Lua number
# argument into a string of 14 significant digits, which would round a TAT of 16. TIME is allowed before writes
# since Redis 5 (scripts replicate their effects), and the TTL lets an idle key vanish once it limits nothing.
_GCRA_LUA = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > window then
  return new_tat - window - now
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
           'PX', string.format('%.0f', math.ceil((new_tat - now) / 1000)))
return 0
"""

_GCRA_SHA = hashlib.sha1(_GCRA_LUA.encode()).hexdigest()
_MICRO = 1_000_000


@functools.cache
def _counts() -> BaseCache:
    """One cache client for the whole process. `django.core.cache.cache` is kept per async context, so every
    socket's task and every request got a client, a Redis connection pool and a new connection of its own:
    opening them was an eighth of a visitor message's time under load (py-spy), and left one idle Redis
    connection per socket. Redis clients and the local-memory cache are both safe to share between threads."""
    return caches.create_connection("default")


@functools.cache
def _script(counts: RedisCache):
    """The GCRA script registered on the cache's Redis client: redis-py sends EVALSHA, and EVAL again by itself
    if the server lost its script cache (a restart)."""
    return counts._cache.get_client(write=True).register_script(_GCRA_LUA)


@receiver(setting_changed)
def _forget_counts(setting: str, **kwargs) -> None:
    if setting == "CACHES":
        _counts.cache_clear()
        _script.cache_clear()


# The local-memory cache is per process: one lock makes its read-modify-write atomic between threads.
_local_lock = threading.Lock()


def hit(key: str, *, limit: int, window_s: float) -> float | None:
    """Count one event; None when allowed, else the seconds to wait before the next one would be."""
    if limit < 1:  # a limit of 0 (a setting turned off to the extreme) refuses everything, as the slots did
        return max(0.1, round(window_s, 1))
    counts, cache_key, interval_us, window_us = _step(key, limit, window_s)
    if isinstance(counts, RedisCache):
        wait_us = int(_script(counts)(keys=[counts.make_and_validate_key(cache_key)], args=[interval_us, window_us]))
    else:
        wait_us = _local_hit(counts, cache_key, interval_us, window_us)
    return _wait(wait_us)


async def hit_on_loop(key: str, *, limit: int, window_s: float) -> float | None:
    """`hit` for the event loop, the same step on the same key: the script awaited on the loop's own Redis client
    (livechat.loop_io), or the local-memory step in place (a process lock held for microseconds)."""
    if limit < 1:
        return max(0.1, round(window_s, 1))
    counts, cache_key, interval_us, window_us = _step(key, limit, window_s)
    if isinstance(counts, RedisCache):
        client = loop_io.redis_client()
        key, args = counts.make_key(cache_key), (interval_us, window_us)
        if isinstance(client, resp.PipelinedRedis):
            try:
                wait_us = await client.execute("EVALSHA", _GCRA_SHA, 1, key, *args)
            except ResponseError as error:
                if not str(error).startswith("NOSCRIPT"):
                    raise
                wait_us = await client.execute("EVAL", _GCRA_LUA, 1, key, *args)  # Redis lost its scripts
        else:
            script = _loop_scripts.get(client)
            if script is None:
                script = _loop_scripts[client] = client.register_script(_GCRA_LUA)
            wait_us = await script(keys=[key], args=list(args))
        wait_us = int(wait_us)
    else:
        wait_us = _local_hit(counts, cache_key, interval_us, window_us)
    return _wait(wait_us)


# The script registered on each loop's redis-py client (redis-py sends EVALSHA, and EVAL again if Redis lost it).
_loop_scripts: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _step(key: str, limit: int, window_s: float) -> tuple[BaseCache, str, int, int]:
    """The cache, the key and the GCRA step's interval and window, in microseconds."""
    interval_us = max(1, round(window_s * _MICRO / limit))
    return _counts(), f"ratelimit:{key}", interval_us, max(interval_us, round(window_s * _MICRO))


def _wait(wait_us: int) -> float | None:
    return None if wait_us <= 0 else max(0.1, round(wait_us / _MICRO, 1))


def _local_hit(counts: BaseCache, cache_key: str, interval_us: int, window_us: int) -> int:
    """The same GCRA step on an in-process cache (local memory), under the process lock: the wait in microseconds,
    or 0 when allowed. The monotonic clock: a wall clock set back would otherwise hold every key for that long."""
    with _local_lock:
        now = time.monotonic_ns() // 1000
        tat = max(counts.get(cache_key, 0), now)
        new_tat = tat + interval_us
        if new_tat - now > window_us:
            return new_tat - window_us - now
        counts.set(cache_key, new_tat, timeout=math.ceil((new_tat - now) / _MICRO))
        return 0
