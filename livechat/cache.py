"""Django's Redis cache, with one connection pool and one client per process and server.

`django.core.cache.caches` keeps a cache object per thread and async context. Under ASGI every HTTP request runs in
a thread of its own (asgiref's ThreadSensitiveContext) and every socket in a task of its own, so each got a new
RedisCacheClient, a new connection pool and a new TCP connection to Redis, opened for the first cache read of the
request (advisor presence, the language, the sign-in limits) and left behind after it. Opening one costs more than
the rest of a `GET /api/inbox/me`: redis-py also looks its own version up in the installed packages' metadata for
every new connection (CLIENT SETINFO). Pools here are kept per server URL and options for the whole process;
redis-py's clients and pools are safe to share between threads, and a pool notices a fork and starts afresh in the
child (ConnectionPool._checkpid).
"""
import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

_clients: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


class SharedPoolClient(RedisCacheClient):
    def get_client(self, key=None, *, write: bool = False):
        server = self._servers[self._get_connection_pool_index(write)]
        shared = (server, repr(sorted(self._pool_options.items())))
        client = _clients.get(shared)
        if client is None:
            with _lock:  # two threads must not each open a pool for the same server
                client = _clients.get(shared)
                if client is None:
                    pool = self._pool_class.from_url(server, **self._pool_options)
                    client = _clients[shared] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    """settings.CACHES' backend when REDIS_URL is set."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedPoolClient
