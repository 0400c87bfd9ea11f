"""The widget's rate limit: N slots per window shared by every process, never blocking the event loop, and out of
the way (with a warning) when its cache is down. Real caches: the test's own, or a private redis-server."""
import asyncio
import logging
import os
import signal
import threading
import time

import pytest
from asgiref.sync import sync_to_async

from conversations import ratelimit
from conversations.tests.conftest import asks_for, message_with, new_id, start_session, widget_socket
from livechat import asgi  # noqa: F401  # django.setup() there configures logging: before caplog, not under it
from livechat.db import concurrent
from tests.faults.servers import Servers, missing_tools

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_limit_of_n_refuses_the_next_until_a_slot_expires():
    key = f"test:{new_id()}"
    assert all(ratelimit.hit(key, limit=3, window_s=1) is None for _ in range(3))
    wait = ratelimit.hit(key, limit=3, window_s=1)
    assert wait is not None and 0 < wait <= 1
    time.sleep(1.1)
    assert ratelimit.hit(key, limit=3, window_s=1) is None


@pytest.fixture
def private_redis_cache(settings):
    """The cache (and so the rate limit) on a redis-server of this test's own, which the test may stop."""
    if "redis-server" in missing_tools():
        pytest.skip("needs redis-server")
    servers, redis = Servers(prefix="ratelimit-"), None
    try:
        redis = servers.redis()
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                       "LOCATION": redis.url, "KEY_PREFIX": "ratelimit-test"}}
        yield redis
    finally:
        if redis is not None and redis.process is not None:
            os.kill(redis.process.pid, signal.SIGCONT)  # a frozen server would not stop
        servers.close()


async def test_sends_go_through_with_a_warning_while_the_cache_is_down(demo, private_redis_cache, caplog):
    # given a visitor on its socket, and the cache's Redis stopped
    session = await sync_to_async(start_session)()
    socket = await widget_socket(session["token"])
    await socket.wait_for(asks_for("PRENOM"))
    private_redis_cache.stop()

    # when the visitor sends
    client_id = new_id()
    with caplog.at_level(logging.WARNING, logger="conversations.consumers"):
        await socket.send({"type": "message", "client_id": client_id, "text": "Jean"})

        # then it is stored and acknowledged, and the unchecked limit is logged
        await socket.wait_for(message_with(lambda m: m["client_id"] == client_id))
    assert any("rate limit not checked" in record.getMessage() for record in caplog.records)
    await socket.disconnect()


async def test_a_stalled_cache_does_not_stall_the_other_sockets(demo, private_redis_cache):
    # given two visitors on their sockets, and the cache's Redis frozen (it accepts, never answers)
    stalled, other = await sync_to_async(start_session)(), await sync_to_async(start_session)()
    stalled_socket, other_socket = await widget_socket(stalled["token"]), await widget_socket(other["token"])
    await stalled_socket.wait_for(asks_for("PRENOM"))
    os.kill(private_redis_cache.process.pid, signal.SIGSTOP)
    thaw = threading.Timer(5, os.kill, (private_redis_cache.process.pid, signal.SIGCONT))  # if the loop is stuck
    thaw.start()
    try:
        # when the first visitor sends: its rate limit check waits on Redis
        client_id = new_id()
        await stalled_socket.send({"type": "message", "client_id": client_id, "text": "Jean"})

        # then the event loop keeps running meanwhile
        started = time.monotonic()
        await asyncio.sleep(0.2)
        assert time.monotonic() - started < 1, "the event loop waited for Redis"

        # and, with the database calls in their thread pool, the other socket is served at once (on SQLite every
        # frame's dispatch goes through Channels' one thread-sensitive thread, where the check waits)
        if concurrent():
            started = time.monotonic()
            await other_socket.send({"type": "ping"})
            await other_socket.wait_for(lambda f: f["type"] == "pong", timeout=6)
            assert time.monotonic() - started < 1, "the other socket waited for Redis"
    finally:
        os.kill(private_redis_cache.process.pid, signal.SIGCONT)
        thaw.cancel()

    # and once Redis answers again the send goes through
    await stalled_socket.wait_for(message_with(lambda m: m["client_id"] == client_id), timeout=10)
    await stalled_socket.disconnect()
    await other_socket.disconnect()
