"""The Redis cache keeps one connection pool per process (livechat/cache.py): a cache object per thread and async
context, as Django makes them, must not mean a Redis connection per request."""
import threading

import pytest
import redis
from django.conf import settings
from django.core.cache import caches

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis cache needs REDIS_URL")


def _connections(server: redis.Redis) -> int:
    return len(server.client_list())


def _in_a_new_thread(work) -> None:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def test_cache_objects_of_many_threads_share_one_client():
    clients = []
    for n in range(10):  # a new thread each time: a new cache object, as each request under ASGI gets
        _in_a_new_thread(lambda n=n: clients.append(caches["default"]._cache.get_client(write=True)))

    assert len({id(client) for client in clients}) == 1


def test_reads_from_many_threads_open_at_most_one_connection():
    server = redis.Redis.from_url(settings.REDIS_URL)
    caches["default"].get("warm-up")  # the pool's first connection, shared from now on
    before = _connections(server)

    for n in range(10):
        _in_a_new_thread(lambda n=n: caches["default"].get(f"presence:{n}"))

    assert _connections(server) <= before + 1  # Django's own backend opened one per thread: before + 10
    server.close()
