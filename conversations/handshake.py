"""What a socket handshake checks before anything else: where the inbox socket comes from, and how many widget
sockets one address holds open without having authenticated.

The inbox socket is same-origin: its `Host` must be one of ALLOWED_HOSTS (as Django checks it for HTTP, against
DNS rebinding), and a browser's `Origin` must be this server's own scheme and host, so a page on http:// cannot
open the socket of the https:// site, nor another site the socket of ours.

Not-yet-authenticated widget sockets cost a socket and a timer each for up to AUTH_TIMEOUT_S; they are counted per
client address in the shared cache (Redis when REDIS_URL is set), so every web process counts together. A count a
killed process leaves behind fades: the key expires a few auth timeouts after its last change.

The cache calls block: call `unauthenticated_socket_open` and `_closed` from a thread, never on the event loop.
"""
import functools
import logging
import threading

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
CACHE_DOWN = (RedisError, OSError, TimeoutError)  # what the cache raises while Redis is down


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")
    return None


def _secure(scope: dict) -> bool:
    """Whether the client reached us over TLS: the server says so (wss), or the TLS proxy does, through the header
    named by SECURE_PROXY_SSL_HEADER, exactly as Django's request.is_secure() reads it for HTTP."""
    if scope.get("scheme") == "wss":
        return True
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, expected = settings.SECURE_PROXY_SSL_HEADER
        name = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
        value = _header(scope, name)
        return value is not None and value.split(",", 1)[0].strip() == expected
    return False


def inbox_handshake_allowed(scope: dict) -> bool:
    """`Host` among ALLOWED_HOSTS, and a browser's `Origin` (if any) is this server's own scheme://host."""
    host = _header(scope, b"host")
    origin = _header(scope, b"origin")
    if host is None:
        return origin is None  # HTTP/1.1 clients send Host; only a non-browser test client omits both
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    if origin is None:
        return True  # not a browser: nothing to forge on a user's behalf
    own = f"{'https' if _secure(scope) else 'http'}://{host}".lower()
    return origin.rstrip("/").lower() == own


def client_address(scope: dict) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


@functools.cache
def _counts() -> BaseCache:
    # One client per process, shared by its threads: `django.core.cache.cache` makes one per async context (per
    # socket), each with a Redis connection pool of its own.
    return caches.create_connection("default")


@receiver(setting_changed)
def _forget_counts(setting: str, **kwargs) -> None:
    if setting == "CACHES":
        _counts.cache_clear()


def _key(address: str) -> str:
    return f"ws-unauthenticated:{address}"


def _ttl() -> int:
    return int(settings.LIVECHAT["AUTH_TIMEOUT_S"] * 3)


def unauthenticated_socket_open(address: str) -> bool:
    """Count one more widget socket of `address` waiting for its auth frame; False (and not counted) when the
    address already holds UNAUTHENTICATED_SOCKETS_PER_ADDRESS of them. If the cache is down, the socket is let in
    (the auth timeout still closes it): a cache outage must not lock every visitor out."""
    counts, key = _counts(), _key(address)
    try:
        counts.add(key, 0, timeout=_ttl())
        try:
            count = counts.incr(key)
        except ValueError:  # expired between add and incr
            counts.set(key, 1, timeout=_ttl())
            count = 1
        counts.touch(key, timeout=_ttl())
        if count > settings.LIVECHAT["UNAUTHENTICATED_SOCKETS_PER_ADDRESS"]:
            counts.decr(key)
            return False
        return True
    except CACHE_DOWN as error:
        logger.warning("unauthenticated sockets of %s not counted: %s: %s", address, type(error).__name__, error)
        return True


def unauthenticated_socket_closed(address: str) -> None:
    """The socket authenticated or went away: it no longer counts."""
    counts, key = _counts(), _key(address)
    try:
        if counts.decr(key) < 0:
            counts.set(key, 0, timeout=_ttl())
    except ValueError:  # expired meanwhile: nothing left to count down
        pass
    except CACHE_DOWN as error:
        logger.warning("unauthenticated socket of %s not counted down: %s: %s", address, type(error).__name__, error)


class WaitingPlace:
    """A socket's place among its address's unauthenticated ones (counted by unauthenticated_socket_open), given
    back once. Two may try: the token's check, in a database thread, when it finds the visitor, and the socket's
    end on the event loop, which may come while that check still runs (the auth deadline, a cancelled task)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._held = True
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        return self._held

    def give_back(self) -> None:
        """Blocks on the cache: from a thread."""
        with self._lock:
            held, self._held = self._held, False
        if held:
            unauthenticated_socket_closed(self.address)
