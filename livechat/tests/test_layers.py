"""The production channel layer (livechat.layers) on a real Redis: publishes do not wait for one another, a
subscription does not wait for a publish, and what each caller asked for is done, in order.

A Redis far away (or a busy loop coming back late to its replies) is played by a loopback proxy in front of the real
Redis that holds every answer for DELAY_S. channels_redis's own shard connection publishes one message per round
trip, under a lock its subscriptions share: there, 50 publishes take 50 delays and a subscription waits for them."""
import asyncio
import socket
import uuid
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from django.conf import settings
from django.utils.module_loading import import_string

from livechat.layers import BatchingRedisPubSubChannelLayer

DELAY_S = 0.3

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (CI runs with Redis)")


class SlowAnswers:
    """A TCP proxy to the real Redis that forwards requests at once and every answer DELAY_S later."""

    def __init__(self, target: str):
        parts = urlsplit(target)
        self.host, self.port, self.db = parts.hostname, parts.port or 6379, (parts.path or "/0").lstrip("/") or "0"
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/{self.db}"

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _serve(self, client_reader, client_writer) -> None:
        redis_reader, redis_writer = await asyncio.open_connection(self.host, self.port)
        for pump in (self._pump(client_reader, redis_writer, 0), self._pump(redis_reader, client_writer, DELAY_S)):
            task = asyncio.ensure_future(pump)
            self.tasks.add(task)

    async def _pump(self, reader, writer, delay: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await reader.read(65536):
                if delay:
                    loop.call_later(delay, writer.write, data)  # in order: call_later keeps equal delays' order
                else:
                    writer.write(data)
        finally:
            writer.close()


@pytest.fixture
def prefix() -> str:
    return f"test-layers-{uuid.uuid4().hex[:12]}"  # the layers of one test hear each other, and no other test


def _layer(url: str, prefix: str) -> BatchingRedisPubSubChannelLayer:
    return BatchingRedisPubSubChannelLayer(hosts=[url], prefix=prefix)


async def _listener(layer, group: str) -> str:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def test_fifty_publishes_at_once_take_one_round_trip_and_arrive_in_order(prefix):
    async with SlowAnswers(settings.REDIS_URL) as slow_url:
        sender, receiver = _layer(slow_url, prefix), _layer(settings.REDIS_URL, prefix)
        channel = await _listener(receiver, "group.burst")
        await sender.group_send("group.warm", {"type": "test.n", "n": -1})  # connected (its hello takes round trips)
        loop = asyncio.get_running_loop()
        started = loop.time()
        # when 50 tasks each publish one event, all in the same turn
        await asyncio.gather(*(sender.group_send("group.burst", {"type": "test.n", "n": n}) for n in range(50)))
        elapsed = loop.time() - started
        # then they all return after about one answer's delay, not fifty
        assert elapsed < 3 * DELAY_S, elapsed
        # and the listener hears every one, in the order they were made
        heard = [(await asyncio.wait_for(receiver.receive(channel), 5))["n"] for _ in range(50)]
        assert heard == list(range(50))
        await sender.flush()
        await receiver.flush()


async def test_a_subscription_does_not_wait_for_a_publish_on_its_way(prefix):
    async with SlowAnswers(settings.REDIS_URL) as slow_url:
        layer = _layer(slow_url, prefix)
        await _listener(layer, "group.warm")  # the connections are open
        loop = asyncio.get_running_loop()
        publishing = asyncio.ensure_future(layer.group_send("group.other", {"type": "test.n", "n": 1}))
        await asyncio.sleep(0)  # the publish is written and waits for its answer
        started = loop.time()
        # when a new socket subscribes while the publish waits for Redis's answer
        channel = await _listener(layer, "group.new")
        # then its subscription is written at once
        assert loop.time() - started < DELAY_S / 2
        assert not publishing.done()
        await publishing
        # and it is a real one: a publish to the group reaches the channel
        other = _layer(settings.REDIS_URL, prefix)
        await asyncio.sleep(DELAY_S + 0.1)
        await other.group_send("group.new", {"type": "test.n", "n": 2})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 2
        await layer.flush()
        await other.flush()


async def test_subscriptions_asked_in_one_turn_take_effect_in_the_order_asked(prefix):
    layer = _layer(settings.REDIS_URL, prefix)
    channel, gone = await layer.new_channel(), await layer.new_channel()
    shard = layer._get_layer()._shards[0]
    group = f"{prefix}__group__group.order"
    # when, in one turn, a channel joins a group, leaves it, and another channel's group is left and joined again
    await asyncio.gather(shard.subscribe(group), shard.unsubscribe(group), shard.subscribe(group),
                         shard.unsubscribe(f"{prefix}__group__group.left"))
    # then Redis has the group's subscription, once, and the shard knows what it holds
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        subscribed = {name.decode() for name in await client.pubsub_channels(f"{prefix}*")}
    finally:
        await client.aclose()
    assert subscribed == {group, channel, gone}
    assert shard._subscribed_to == subscribed
    await layer.flush()


async def test_a_publish_to_a_redis_that_is_not_there_fails_for_its_caller_and_the_next_one_still_goes(prefix):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        nowhere = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    layer = _layer(nowhere, prefix)
    with pytest.raises(Exception) as failed:
        await layer.group_send("group.nowhere", {"type": "test.n", "n": 1})
    assert "connect" in str(failed.value).lower()
    assert layer._get_layer()._shards[0]._publisher is None  # nothing left running that would hold later sends
    with pytest.raises(Exception):
        await layer.group_send("group.nowhere", {"type": "test.n", "n": 2})


async def test_a_channel_that_is_not_read_holds_a_bounded_backlog_then_one_overflow_and_nothing_more(prefix,
                                                                                                     monkeypatch):
    """channels_redis queues a busy socket's messages without limit. Here a channel holds at most
    CHANNEL_BACKLOG_MAX_BYTES unread; then it gets `layer.overflow` (its socket closes 4008 on it) and drops the rest,
    while another channel of the same group, read as it goes, gets everything."""
    from livechat import layers

    monkeypatch.setattr(layers, "CHANNEL_BACKLOG_MAX_BYTES", 64 * 1024)
    layer = _layer(settings.REDIS_URL, prefix)
    stalled, reading = await _listener(layer, "group.site"), await _listener(layer, "group.site")
    text = "x" * 4096
    heard_by_reader = []
    for n in range(50):  # 50 x 4 KB: past the 64 KB bound
        await layer.group_send("group.site", {"type": "test.n", "n": n, "text": text})
        heard_by_reader.append((await asyncio.wait_for(layer.receive(reading), 5))["n"])
    assert heard_by_reader == list(range(50))
    queue = layer._get_layer().channels[stalled]
    assert queue.bytes <= 64 * 1024 + 100
    held = []
    while not queue.empty():
        held.append(await layer.receive(stalled))
    assert [event["n"] for event in held[:-1]] == list(range(len(held) - 1)) and 10 < len(held) < 17
    assert held[-1] == {"type": "layer.overflow"} and queue.bytes == 0
    await layer.group_send("group.site", {"type": "test.n", "n": 99})  # dropped: the socket is closing
    assert (await asyncio.wait_for(layer.receive(reading), 5))["n"] == 99
    await asyncio.sleep(0.2)
    assert queue.empty()
    await layer.flush()


async def test_one_message_heavier_than_the_bound_reaches_a_socket_that_keeps_up(prefix, monkeypatch):
    """A burst's batch of long messages can weigh more than the bound by itself: a socket that takes each message
    as it comes gets every one, and a receive that is cancelled (the socket closing) leaves the count right."""
    from livechat import layers

    monkeypatch.setattr(layers, "CHANNEL_BACKLOG_MAX_BYTES", 16 * 1024)
    layer = _layer(settings.REDIS_URL, prefix)
    channel = await _listener(layer, "group.site")
    for n in range(3):
        await layer.group_send("group.site", {"type": "test.n", "n": n, "text": "x" * 64 * 1024})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == n
    queue = layer._get_layer().channels[channel]
    assert not queue.overflowed and queue.bytes == 0
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert queue.bytes == 0
    await layer.flush()



async def test_a_cancelled_receive_ends_at_once_its_unsubscribe_left_to_the_layer(prefix):
    # given a socket's receive waiting on its channel, subscribed, on the real Redis
    layer = _layer(settings.REDIS_URL, prefix)
    channel = await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.3)
    assert not receiving.done()
    shard = layer._get_layer()._shards[0]

    # when it is cancelled (its socket closes, or the process shuts down) while the layer's writer of subscriptions
    # cannot run (busy with another batch here; at a loop's shutdown, a writer that nothing will ever run)
    async with shard._lock:
        receiving.cancel()

        # then it ends now: its way out (channels_redis unsubscribes the channel) does not wait for the writer,
        # which held a test's event loop on its close for good (the layer watch's probe, cancelled mid-receive)
        done, _ = await asyncio.wait({receiving}, timeout=2)
        assert receiving in done and receiving.cancelled()

    # and the unsubscribe still goes once the writer is free
    for _ in range(50):
        if channel not in shard._subscribed_to:
            break
        await asyncio.sleep(0.05)
    assert channel not in shard._subscribed_to
    await layer.flush()


async def test_a_groups_members_in_the_publishing_process_hear_it_at_once_and_once(prefix):
    """Members in the process that publishes hear a group's message when it is published, not after Redis's round
    trip; Redis's copy is dropped when it comes back; other processes hear it through Redis, as before."""
    async with SlowAnswers(settings.REDIS_URL) as slow_url:
        # given a process whose Redis answers late (DELAY_S) with a member of a group, and another process's member
        here, elsewhere = _layer(slow_url, prefix), _layer(settings.REDIS_URL, prefix)
        local, remote = await _listener(here, "group.site"), await _listener(elsewhere, "group.site")
        await asyncio.sleep(DELAY_S * 2)  # both subscriptions in effect
        loop = asyncio.get_running_loop()

        # when the first process publishes
        started = loop.time()
        sending = asyncio.ensure_future(here.group_send("group.site", {"type": "test.n", "n": 1}))
        heard_here = await asyncio.wait_for(here.receive(local), 5)
        heard_here_after = loop.time() - started
        await sending

        # then its member heard it at once, the other process's through Redis
        assert heard_here == {"type": "test.n", "n": 1} and heard_here_after < DELAY_S / 2
        assert await asyncio.wait_for(elsewhere.receive(remote), 5) == {"type": "test.n", "n": 1}
        # and Redis's copy, back a round trip later, is not heard a second time
        await asyncio.sleep(DELAY_S * 2)
        shard = here._get_layer()._shards[0]
        assert here._get_layer().channels[local].empty() and not shard._echoes

        # and the same bytes published by the other process meanwhile are heard: one copy each, whichever is dropped
        await here.group_send("group.site", {"type": "test.n", "n": 2})
        await elsewhere.group_send("group.site", {"type": "test.n", "n": 2})
        heard = [await asyncio.wait_for(here.receive(local), 5) for _ in range(2)]
        await asyncio.sleep(DELAY_S * 2)
        assert heard == [{"type": "test.n", "n": 2}] * 2 and here._get_layer().channels[local].empty()
        assert not shard._echoes
        await here.flush()
        await elsewhere.flush()


async def test_a_copy_redis_never_sends_back_is_forgotten(prefix, monkeypatch):
    """A message delivered here before Redis took the process's subscription has no copy coming back: it is
    forgotten after ECHO_WAIT_S, while the copies still on their way are kept (and dropped when they come)."""
    from livechat import layers

    monkeypatch.setattr(layers, "ECHO_WAIT_S", 0.2)
    layer = _layer(settings.REDIS_URL, prefix)
    loop_layer = layer._get_layer()
    shard = loop_layer._shards[0]
    channel = await layer.new_channel()
    # given a member of the group here whose subscription Redis has not taken yet
    loop_layer.groups[loop_layer._get_group_channel_name("group.site")] = {channel}
    await layer.group_send("group.site", {"type": "test.n", "n": 1})
    assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "test.n", "n": 1}
    assert shard._echoes_waiting == 1
    # when the subscription is in effect and a message comes after ECHO_WAIT_S
    await layer.group_add("group.site", channel)
    await asyncio.sleep(0.3)
    await layer.group_send("group.site", {"type": "test.n", "n": 2})
    # then the copy that never came is forgotten, the new one is dropped when Redis sends it back: heard once
    assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "test.n", "n": 2}
    await asyncio.sleep(0.2)
    assert loop_layer.channels[channel].empty() and shard._echoes == {} and shard._echoes_waiting == 0
    await layer.flush()


@pytest.mark.parametrize("backend", ["livechat.layers.BatchingRedisPubSubChannelLayer",
                                     "channels_redis.core.RedisChannelLayer"])
async def test_a_burst_of_more_commands_than_redis_pys_default_pool_holds_is_served_on_either_layer(backend, prefix):
    # given the layer as the settings configure it (CHANNEL_LAYER_BACKEND may name channels_redis's core layer)
    layer_class = import_string(backend)
    config = dict(settings.CHANNEL_LAYERS["default"]["CONFIG"], prefix=prefix)
    layer = layer_class(**config)
    try:
        # when 300 sockets join a group at once and a message is sent to it (a thousand visitors coming back after a
        # restart: the core layer takes a pooled connection per command, and redis-py's pool holds 100 by default)
        channels = [await layer.new_channel() for _ in range(300)]
        await asyncio.gather(*(layer.group_add("burst", channel) for channel in channels))
        await layer.group_send("burst", {"type": "inbox.message", "text": "hello"})

        # then every one of them hears it: none was refused a connection
        heard = await asyncio.wait_for(asyncio.gather(*(layer.receive(channel) for channel in channels)), 10)
        assert [message["text"] for message in heard] == ["hello"] * 300
    finally:
        await layer.flush()
