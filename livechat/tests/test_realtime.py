"""Broadcasts from service threads: handed to the serving event loop without waiting, in order per group, and a
failing layer is logged, never raised. On real layers: in memory, and channels_redis (pub/sub and core) on REDIS_URL."""
import asyncio
import logging
import socket
import threading
import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from livechat import realtime

IN_MEMORY = "in_memory"
REDIS_LAYERS = {"redis_pubsub": "livechat.layers.BatchingRedisPubSubChannelLayer",
                "redis_core": "channels_redis.core.RedisChannelLayer"}


def _layer_settings(name: str, redis_url: str) -> dict:
    if name == IN_MEMORY:
        return {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 2000}}
    config = {"hosts": [redis_url], "prefix": f"test-realtime-{uuid.uuid4().hex[:12]}"}
    if name == "redis_core":
        config["capacity"] = 2000  # the default (100) would drop what the receiver has not read yet
    return {"BACKEND": REDIS_LAYERS[name], "CONFIG": config}


@pytest.fixture(params=[IN_MEMORY, *REDIS_LAYERS])
def layer_name(request, settings) -> str:
    if request.param != IN_MEMORY and not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    settings.CHANNEL_LAYERS = {"default": _layer_settings(request.param, settings.REDIS_URL)}
    return request.param


@pytest.fixture
def unreachable_redis_layer(settings) -> str:
    """A real pub/sub layer whose Redis is not there: every send fails with a connection error."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": REDIS_LAYERS["redis_pubsub"],
                                           "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}"]}}}
    return "group.unreachable"


async def _listen(group: str) -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def _receive_numbers(channel: str, count: int) -> list[int]:
    layer = get_channel_layer()

    async def receive_all():
        numbers = []
        while len(numbers) < count:  # a burst may arrive as batches (realtime.BATCH_TYPE): in order all the same
            numbers += [event["n"] for event in realtime.unbatched(await layer.receive(channel))]
        return numbers

    return await asyncio.wait_for(receive_all(), timeout=30)


def _send_numbers(group: str, count: int) -> None:
    for n in range(count):
        realtime.send_now(group, {"type": "test.number", "n": n})


# ------------------------------------------------------------------------------ under a running loop


async def test_a_thousand_events_from_a_worker_thread_reach_the_group_in_order(layer_name):
    # given a socket's channel in a group
    channel = await _listen("group.ordered")
    # when a service thread (not the thread-sensitive one) broadcasts 1,000 events to that group
    await sync_to_async(_send_numbers, thread_sensitive=False)("group.ordered", 1000)
    # then they all arrive, in the order they were sent
    assert await _receive_numbers(channel, 1000) == list(range(1000))


@pytest.mark.parametrize("thread_sensitive", [False, True], ids=["worker-thread", "thread-sensitive"])
async def test_the_sending_thread_returns_while_the_loop_has_not_sent_anything_yet(layer_name, thread_sensitive):
    # given a socket's channel in a group
    channel = await _listen("group.unblocked")
    returned = threading.Event()

    def service():
        _send_numbers("group.unblocked", 100)
        returned.set()

    # when a service thread broadcasts while the event loop is blocked (this test does not give it back)
    running = asyncio.ensure_future(sync_to_async(service, thread_sensitive=thread_sensitive)())
    await asyncio.sleep(0)  # the task hands the service to its thread, and the loop is ours again
    returned_while_blocked = returned.wait(timeout=10)  # a send that waited for the loop would never return

    await running  # (a thread that did wait gets its sends now: the test then fails rather than hangs)

    # then the thread was not held by the sends, which the loop made afterwards, in order
    assert returned_while_blocked
    assert await _receive_numbers(channel, 100) == list(range(100))


async def test_a_failing_layer_is_logged_not_raised_by_a_worker_thread(unreachable_redis_layer, caplog):
    # when a service thread broadcasts and the layer's Redis is not there
    await sync_to_async(realtime.send_now, thread_sensitive=False)(unreachable_redis_layer, {"type": "test.lost"})
    # then the service went on, and the failure is logged once the loop has tried
    for _ in range(1000):
        if any(r.getMessage() == f"broadcast to {unreachable_redis_layer} failed" for r in caplog.records):
            break
        await asyncio.sleep(0.01)
    failures = [r for r in caplog.records if r.getMessage() == f"broadcast to {unreachable_redis_layer} failed"]
    assert len(failures) == 1 and failures[0].levelno == logging.ERROR and failures[0].exc_info


# ------------------------------------------------------------------------------ without a loop


def test_without_a_loop_the_send_blocks_and_delivers(layer_name):
    if layer_name == IN_MEMORY:
        # given a channel in a group of the in-memory layer, which every loop of the process shares
        channel = async_to_sync(_listen)("group.no-loop")
        # when a thread with no event loop (a Celery task, a command) broadcasts
        _send_numbers("group.no-loop", 5)
        # then the events are in the channel already
        assert async_to_sync(_receive_numbers)(channel, 5) == list(range(5))
        return

    # given a socket's channel in a group, on a loop of its own (a Redis layer's connections belong to one loop)
    listening, received = threading.Event(), []

    async def socket_side():
        channel = await _listen("group.no-loop")
        listening.set()
        received.extend(await _receive_numbers(channel, 5))

    socket_thread = threading.Thread(target=asyncio.run, args=(socket_side(),))
    socket_thread.start()
    assert listening.wait(timeout=10)
    # when a thread with no event loop broadcasts
    _send_numbers("group.no-loop", 5)
    # then they arrive in order
    socket_thread.join(timeout=30)
    assert received == list(range(5))


def test_without_a_loop_a_failing_layer_is_logged_not_raised(unreachable_redis_layer, caplog):
    realtime.send_now(unreachable_redis_layer, {"type": "test.lost"})
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"broadcast to {unreachable_redis_layer} failed"]


async def test_a_burst_leaves_for_its_group_in_few_layer_messages_and_in_order(layer_name):
    """Events handed over while the loop was busy go together (realtime.BATCH_TYPE): one publish, and one wake-up
    per socket, for many events; the receiver unpacks them in the order they were sent."""
    layer = get_channel_layer()
    channel = await _listen("group.burst")
    # a service thread hands 300 events over while the loop is still busy with this test (nothing sent yet)
    sending = asyncio.ensure_future(sync_to_async(_send_numbers, thread_sensitive=False)("group.burst", 300))
    while not sending.done():
        await asyncio.sleep(0)
    messages, numbers = 0, []
    while len(numbers) < 300:
        message = await asyncio.wait_for(layer.receive(channel), timeout=30)
        messages += 1
        numbers += [event["n"] for event in realtime.unbatched(message)]
    assert numbers == list(range(300))
    assert messages < 300 // 2  # batched: far fewer layer messages than events
