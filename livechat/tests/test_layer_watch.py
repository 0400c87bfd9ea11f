"""The layer watch tells a process's sockets to catch up after a real outage of the channel layer, and only then:
a probe that comes back late because the process is busy is not an outage (closing every socket then made a
saturated process collapse: every client reconnected at once)."""
import asyncio
import uuid

import pytest
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from redis import asyncio as aioredis

from livechat import health


async def _late(probe, timeout: float) -> None:
    """A probe that comes back after the watch stopped waiting: the process was busy for longer than that. (A real
    round trip cannot be made late reliably: its answer is often read in the same turn of the loop as the
    timeout.)"""
    await asyncio.sleep(timeout)
    raise TimeoutError


class Socket:
    def __init__(self):
        self.told = 0

    async def layer_recovered(self) -> None:
        self.told += 1


@pytest.fixture
def redis_layer():
    url = health._layer_redis_url()
    if url is None or "Redis" not in settings.CHANNEL_LAYERS["default"]["BACKEND"]:
        pytest.skip("the Redis layer is what this watches (CI runs with REDIS_URL)")
    return url


async def test_a_late_probe_while_redis_answers_leaves_the_sockets_alone(redis_layer, monkeypatch):
    watch, socket = health.LayerWatch(), Socket()
    watch.sockets.add(socket)
    redis = aioredis.Redis.from_url(redis_layer)
    try:
        await watch._check(redis)  # a first, healthy look
        with monkeypatch.context() as busy:
            busy.setattr(health._Probe, "round_trip", _late)
            busy.setattr(health, "WATCH_TIMEOUT_S", 0.05)
            await watch._check(redis)
        await watch._check(redis)
    finally:
        await redis.aclose()
    assert not watch.failing and socket.told == 0


async def test_a_late_probe_while_redis_does_not_answer_is_an_outage_and_the_sockets_catch_up_after(redis_layer,
                                                                                                  monkeypatch):
    watch, socket = health.LayerWatch(), Socket()
    watch.sockets.add(socket)
    redis = aioredis.Redis.from_url(redis_layer)
    nothing_listens = aioredis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1)
    try:
        with monkeypatch.context() as busy:
            busy.setattr(health._Probe, "round_trip", _late)
            busy.setattr(health, "WATCH_TIMEOUT_S", 0.05)
            await watch._check(nothing_listens)
        assert watch.failing and socket.told == 0
        await watch._check(redis)  # back: whatever the layer carried meanwhile may be lost
    finally:
        await redis.aclose()
        await nothing_listens.aclose()
    assert not watch.failing and socket.told == 1


async def test_a_probe_the_layer_cancels_under_the_watch_is_an_outage_not_the_end_of_the_watch(monkeypatch):
    """channels_redis cancels the receives waiting on its reader when Redis drops the connection: the probe then
    ends in a CancelledError that is not the watch's own. The watch keeps watching and tells the sockets once the
    layer answers again."""
    outage = True

    async def probe(self, timeout: float) -> None:
        if outage:
            cancelled = asyncio.get_running_loop().create_future()
            cancelled.cancel()  # someone else's cancellation, as the layer's reader does
            await cancelled

    monkeypatch.setattr(health._Probe, "round_trip", probe)
    monkeypatch.setattr(health, "WATCH_INTERVAL_S", 0.01)
    monkeypatch.setattr(health, "_layer_redis_url", lambda: None)
    watch, socket = health.LayerWatch(), Socket()
    watch.add(socket)
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if watch.failing:
                break
        assert watch.failing and not watch.task.done() and socket.told == 0
        outage = False
        for _ in range(200):
            await asyncio.sleep(0.01)
            if socket.told:
                break
        assert socket.told == 1 and not watch.failing and not watch.task.done()
    finally:
        watch.discard(socket)
    await asyncio.sleep(0)


async def test_the_watch_looks_at_redis_as_soon_as_it_starts(redis_layer, monkeypatch):
    # A first look only after the interval would take a Redis restarted meanwhile for the one the sockets subscribed
    # on, and never tell them (the fault test restarts Redis within a second of the sockets' arrival).
    monkeypatch.setattr(health, "WATCH_INTERVAL_S", 30.0)
    watch, socket = health.LayerWatch(), Socket()
    watch.add(socket)
    try:
        async with asyncio.timeout(10):
            while watch.run_id is None:
                await asyncio.sleep(0.01)
    finally:
        watch.discard(socket)
    assert not watch.failing and socket.told == 0


async def test_a_probe_refused_because_this_process_reads_behind_is_not_an_outage(redis_layer, settings):
    """channels_redis's core layer keeps every channel of a process in one list in Redis: while the process is
    behind on reading it (a burst), a send to any of its channels, the probe's too, is refused as full."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [redis_layer], "capacity": 3,
                                                      "prefix": f"test-watch-{uuid.uuid4().hex[:12]}"}}}
    layer = get_channel_layer()
    watch, socket = health.LayerWatch(), Socket()
    watch.sockets.add(socket)
    redis = aioredis.Redis.from_url(redis_layer)
    try:
        # given a process whose channels hold as much as the layer takes, unread
        behind = await layer.new_channel()
        for n in range(3):
            await layer.send(behind, {"type": "inbox.message", "n": n})
        with pytest.raises(ChannelFull):
            await layer.send(await layer.new_channel(), {"type": "healthz.probe"})

        # when the watch probes, and probes again once the process has caught up
        await watch._check(redis)
        failing_while_behind = watch.failing
        for _ in range(3):
            await layer.receive(behind)
        await watch._check(redis)
    finally:
        await redis.aclose()
        await layer.flush()

    # then nothing failed, and no socket was told to catch up
    assert not failing_while_behind
    assert not watch.failing and socket.told == 0
