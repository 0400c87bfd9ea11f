"""The rate limit: GCRA (a burst of N, then N per window), one round trip per hit whatever N, shared by every
thread and process, never blocking the event loop, and out of the way (with a warning) when its cache is down.
Real caches: the local-memory cache, or a private redis-server."""
import asyncio
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

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


@pytest.fixture(params=["locmem", "redis"])
def cache_backend(request, settings):
    """Each rate limit test on both caches: the embedded local-memory default, and a real Redis."""
    if request.param == "redis":
        return request.getfixturevalue("private_redis_cache")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"ratelimit-{new_id()}"}}
    return None


def test_a_burst_of_n_passes_then_one_more_every_window_over_n(cache_backend):
    key = f"test:{new_id()}"
    assert all(ratelimit.hit(key, limit=4, window_s=2) is None for _ in range(4))

    # the next one waits about window / limit (0.5 s), and a refused hit does not push the next one further
    waits = [ratelimit.hit(key, limit=4, window_s=2) for _ in range(3)]
    assert all(wait is not None and 0.3 <= wait <= 0.5 for wait in waits), waits

    time.sleep(0.55)
    assert ratelimit.hit(key, limit=4, window_s=2) is None
    assert ratelimit.hit(key, limit=4, window_s=2) is not None


def test_keys_are_limited_apart(cache_backend):
    one, other = f"test:{new_id()}", f"test:{new_id()}"
    assert ratelimit.hit(one, limit=1, window_s=60) is None
    assert ratelimit.hit(one, limit=1, window_s=60) is not None
    assert ratelimit.hit(other, limit=1, window_s=60) is None


def test_a_limit_of_zero_refuses_everything(cache_backend):
    assert ratelimit.hit(f"test:{new_id()}", limit=0, window_s=60) == 60


def test_threads_never_get_more_than_the_limit_between_them(cache_backend):
    # given 8 threads starting together and hitting one key 1,600 times in all, against a limit of 500 an hour
    key, limit, threads = f"test:{new_id()}", 500, 8
    ratelimit.hit(f"test:{new_id()}", limit=1, window_s=1)  # the shared client and script, before the race
    start = threading.Barrier(threads)

    def hits(_):
        start.wait()
        return sum(ratelimit.hit(key, limit=limit, window_s=3600) is None for _ in range(200))

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between any two bytecodes: a read-modify-write race shows up
    try:
        with ThreadPoolExecutor(threads) as pool:
            allowed = sum(pool.map(hits, range(threads)))
    finally:
        sys.setswitchinterval(switch_interval)

    # then exactly the limit went through (no refill meanwhile: one more every 7.2 s, the test takes less)
    assert allowed == limit


def test_a_hit_costs_the_same_whatever_the_limit(cache_backend):
    # a limit of N used to read N keys per hit: at a million, one hit took seconds
    for limit in (20, 1_000_000):
        key = f"test:{new_id()}"
        ratelimit.hit(key, limit=limit, window_s=60)
        started = time.perf_counter()
        for _ in range(10):
            assert ratelimit.hit(key, limit=limit, window_s=60) is None
        assert (time.perf_counter() - started) / 10 < 0.01, f"limit {limit}"


def test_a_hit_is_one_redis_command_whatever_the_limit(private_redis_cache):
    import redis

    server = redis.Redis.from_url(private_redis_cache.url)
    for limit in (20, 60, 10_000):
        key = f"test:{new_id()}"
        ratelimit.hit(key, limit=limit, window_s=60)  # the first one may load the script
        before = server.info("commandstats")
        ratelimit.hit(key, limit=limit, window_s=60)
        after = server.info("commandstats")
        # one round trip (EVALSHA) whose script reads the clock and the key and writes it; the INFO call is ours
        calls = {name: after[name]["calls"] - before.get(name, {"calls": 0})["calls"] for name in after}
        assert {name.removeprefix("cmdstat_"): n for name, n in calls.items() if n and name != "cmdstat_info"} == {
            "evalsha": 1, "time": 1, "get": 1, "set": 1}, f"limit {limit}"


def test_the_limit_survives_the_redis_script_cache_being_flushed(private_redis_cache):
    import redis

    key = f"test:{new_id()}"
    assert ratelimit.hit(key, limit=2, window_s=60) is None
    redis.Redis.from_url(private_redis_cache.url).script_flush()  # as after a restart
    assert ratelimit.hit(key, limit=2, window_s=60) is None
    assert ratelimit.hit(key, limit=2, window_s=60) is not None


async def test_the_loops_limit_is_one_command_and_survives_the_script_cache_being_flushed(private_redis_cache):
    import redis

    server, key = redis.Redis.from_url(private_redis_cache.url), f"test:{new_id()}"
    assert await ratelimit.hit_on_loop(key, limit=3, window_s=60) is None  # the first one may load the script
    before = server.info("commandstats")
    assert await ratelimit.hit_on_loop(key, limit=3, window_s=60) is None
    after = server.info("commandstats")
    calls = {name: after[name]["calls"] - before.get(name, {"calls": 0})["calls"] for name in after}
    assert {name.removeprefix("cmdstat_"): n for name, n in calls.items() if n and name != "cmdstat_info"} == {
        "evalsha": 1, "time": 1, "get": 1, "set": 1}

    server.script_flush()  # as after a restart: the script is sent again, and the count goes on
    assert await ratelimit.hit_on_loop(key, limit=3, window_s=60) is None
    assert await ratelimit.hit_on_loop(key, limit=3, window_s=60) is not None
    assert ratelimit.hit(key, limit=3, window_s=60) is not None  # the threads' hit sees the same count


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
