"""Guessing passwords: the one rule for every door that checks one (the login page, the admin's login, and
`POST /api/auth/token`).

Failures are counted per username and per client address in the shared cache (Redis when REDIS_URL is set), so
every web process counts together. A count lives for LOGIN_FAILURE_WINDOW_S from its first failure. Past
LOGIN_SLOW_AFTER failures for a username, each attempt must wait longer after the last failure (1, 2, 4 … s, at
most 60): a person who mistyped hardly notices, a script is slowed to a crawl. At LOGIN_FAILURES_PER_USERNAME (or
LOGIN_FAILURES_PER_ADDRESS from one address, whatever the usernames) the doors refuse until the window ends.
Attempts on other usernames from other addresses never block a sign-in. A door calls `login_attempt_check` before
checking the password (a refused attempt checks nothing and counts nothing), then `login_attempt_failed` or
`login_attempt_succeeded`.

The client address is REMOTE_ADDR: a proxy in front must pass the client's address there (uvicorn's
--proxy-headers, daphne's --proxy-headers), never a header a client could set itself.
"""
import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

SLOW_MAX_S = 60
CACHE_FAILURES = (RedisError, OSError)  # what the cache raises while Redis is down


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _counters(*, username: str, address: str) -> list[tuple[str, int, bool]]:
    """(cache key, limit, slows) for each count an attempt belongs to. Usernames are hashed: any text fits a key."""
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [(f"login-failures:user:{name}", settings.LOGIN_FAILURES_PER_USERNAME, True),
            (f"login-failures:address:{address}", settings.LOGIN_FAILURES_PER_ADDRESS, False)]


def login_attempt_check(*, username: str, address: str) -> float | None:
    """None when this attempt may check a password now; else the seconds to wait before the next one may."""
    counters = _counters(username=username, address=address)
    try:
        found = cache.get_many([f"{key}:{part}" for key, _, _ in counters for part in ("n", "first", "last")])
    except CACHE_FAILURES as error:  # the cache down must not lock every advisor out; logged loudly
        logger.error("login attempts not checked (the cache failed): %s: %s", type(error).__name__, error)
        return None
    now = time.time()
    waits = []
    for key, limit, slows in counters:
        failures = found.get(f"{key}:n") or 0
        if failures >= limit:
            waits.append(found.get(f"{key}:first", now) + settings.LOGIN_FAILURE_WINDOW_S - now)
        elif slows and failures >= settings.LOGIN_SLOW_AFTER:
            delay = min(SLOW_MAX_S, 2 ** (failures - settings.LOGIN_SLOW_AFTER))
            waits.append(found.get(f"{key}:last", now) + delay - now)
    wait = max(waits, default=0)
    return max(1, math.ceil(wait)) if wait > 0 else None


def login_attempt_failed(*, username: str, address: str) -> None:
    """Count one wrong password (or unknown username) for the username and for the address."""
    now = time.time()
    window = settings.LOGIN_FAILURE_WINDOW_S
    counts = []
    try:
        for key, _, _ in _counters(username=username, address=address):
            cache.add(f"{key}:first", now, timeout=window)  # the window starts at the first failure
            if cache.add(f"{key}:n", 1, timeout=window):
                failures = 1
            else:
                try:
                    failures = cache.incr(f"{key}:n")  # atomic on Redis: concurrent guesses all count
                except ValueError:  # expired between the two calls: a new window
                    cache.set(f"{key}:n", 1, timeout=window)
                    failures = 1
            cache.set(f"{key}:last", now, timeout=window)
            counts.append(failures)
    except CACHE_FAILURES as error:  # as above: logged, the answer stays "wrong password"
        logger.error("login failure not counted (the cache failed): %s: %s", type(error).__name__, error)
        return
    logger.warning("wrong password for %r from %s (%d for this username, %d from this address)",
                   username[:150], address, *counts)


def login_attempt_succeeded(*, username: str) -> None:
    """A right password clears its username's count (the address's stays: one known account must not let an
    address guess others' passwords for free)."""
    key = _counters(username=username, address="")[0][0]
    try:
        cache.delete_many([f"{key}:n", f"{key}:first", f"{key}:last"])
    except CACHE_FAILURES as error:
        logger.error("login failures not cleared (the cache failed): %s: %s", type(error).__name__, error)
