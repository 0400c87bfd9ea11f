"""livechat.resp, the event loop's pipelined Redis connection, against a redis-server of these tests' own: every
reply reaches the command that asked for it, whatever fails or gives up around it, and a failure is one of
redis-py's errors (which the callers handle) followed by a fresh connection."""
import asyncio
import uuid

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from livechat import resp
from livechat.tests.test_layers import SlowAnswers
from tests.faults.servers import Servers, missing_tools


@pytest.fixture(scope="module")
def redis_url():
    if "redis-server" in missing_tools():
        pytest.skip("needs redis-server")
    servers = Servers(prefix="resp-")
    try:
        yield servers.redis().url
    finally:
        servers.close()


def _key() -> str:
    return f"resp-test:{uuid.uuid4().hex}"


async def test_concurrent_commands_get_their_own_replies_in_the_order_they_were_made(redis_url):
    connection = resp.for_url(redis_url, timeout=5)
    key = _key()
    replies = await asyncio.gather(*(connection.execute("INCR", key) for _ in range(300)))
    assert replies == list(range(1, 301))
    assert await connection.execute("GET", key) == b"300"
    connection.close()


async def test_the_database_of_the_url_is_the_one_written(redis_url):
    key = _key()
    connection = resp.for_url(redis_url.rsplit("/", 1)[0] + "/9")
    await connection.execute("SET", key, "nine")
    base = redis_url.rsplit("/", 1)[0]
    assert redis.Redis.from_url(f"{base}/9").get(key) == b"nine"
    assert redis.Redis.from_url(f"{base}/0").get(key) is None
    connection.close()


async def test_an_error_reply_raises_for_its_command_only(redis_url):
    connection = resp.for_url(redis_url)
    key = _key()
    await connection.execute("SET", key, "not a number")
    with pytest.raises(ResponseError):
        await connection.execute("INCR", key)
    assert await connection.execute("PING") == b"PONG"
    connection.close()


async def test_a_caller_that_gives_up_leaves_the_other_replies_where_they_belong(redis_url):
    async with SlowAnswers(redis_url) as slow_url:  # every answer 0.3 s late: the middle caller gives up first
        connection = resp.for_url(slow_url, timeout=5)
        first, middle, last = (asyncio.ensure_future(connection.execute("ECHO", word))
                               for word in ("first", "middle", "last"))
        await asyncio.sleep(0.1)
        middle.cancel()
        assert await first == b"first"
        assert await last == b"last"
        assert middle.cancelled()
        assert await connection.execute("ECHO", "after") == b"after"
        connection.close()


async def test_a_server_that_never_answers_times_out_every_waiting_command_and_is_left(redis_url):
    silent_connections = []

    async def never_answer(reader, writer):
        silent_connections.append(writer)
        await reader.read()  # takes the commands, answers nothing

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    connection = resp.for_url(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    try:
        waiting = [asyncio.ensure_future(connection.execute("PING")) for _ in range(3)]
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(result, RedisTimeoutError) for result in results), results
        # the next command does not queue behind the unanswered ones: it opens a connection of its own
        with pytest.raises(RedisTimeoutError):
            await connection.execute("PING")
        assert len(silent_connections) == 2
    finally:
        connection.close()
        silent.close()
        for writer in silent_connections:
            writer.close()


async def test_a_connection_the_server_closes_fails_what_waits_and_the_next_command_reconnects(redis_url):
    connection = resp.for_url(redis_url)
    client_id = await connection.execute("CLIENT", "ID")
    blocked = asyncio.ensure_future(connection.execute("BLPOP", _key(), 10))  # waits on the server's side
    await asyncio.sleep(0.1)

    redis.Redis.from_url(redis_url).client_kill_filter(_id=client_id)

    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(blocked, 5)
    assert await connection.execute("PING") == b"PONG"
    assert await connection.execute("CLIENT", "ID") != client_id
    connection.close()


async def test_a_refused_connection_is_a_connection_error(redis_url):
    probe = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    connection = resp.for_url(f"redis://127.0.0.1:{port}/0", connect_timeout=2)
    with pytest.raises(RedisConnectionError):
        await connection.execute("PING")


async def test_a_user_and_password_in_the_url_sign_in_before_any_command(redis_url):
    admin = redis.Redis.from_url(redis_url)
    user, password = f"resp-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], commands=["+ping", "+select"], keys=[])
    base = redis_url.removeprefix("redis://")
    try:
        signed_in = resp.for_url(f"redis://{user}:{password}@{base.rsplit('/', 1)[0]}/3")
        assert await signed_in.execute("PING") == b"PONG"
        with pytest.raises(ResponseError):  # what the user may not do is still refused
            await signed_in.execute("SET", _key(), "x")
        signed_in.close()

        wrong = resp.for_url(f"redis://{user}:wrong@{base}")
        with pytest.raises(ResponseError):
            await wrong.execute("PING")
    finally:
        admin.acl_deluser(user)


def test_an_address_it_does_not_take_is_left_to_redis_py():
    assert resp.for_url("rediss://127.0.0.1:6380/0") is None
    assert resp.subscriber_for_url("rediss://127.0.0.1:6380/0", print) is None
    assert resp.for_url("redis://127.0.0.1:6379/4").db == 4
    assert resp.for_url("unix:///run/redis.sock?db=2").path == "/run/redis.sock"


# ------------------------------------------------------------------------------ the subscriber


class Heard:
    """A Subscriber's callback that notes what it is handed."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, channel: str, data: bytes) -> None:
        self.messages.append((channel, data))

    async def until(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                await asyncio.sleep(0.01)


async def _published_until_heard(publisher, channel: str, heard: Heard, timeout: float = 5.0) -> None:
    """Publish on `channel` until the subscriber hears one: a subscription is written, never confirmed."""
    async with asyncio.timeout(timeout):
        while not any(name == channel for name, _ in heard.messages):
            publisher.publish(channel, b"ready?")
            await asyncio.sleep(0.02)


async def _listening(redis_url: str, heard: Heard, *channels: str, callback=None):
    """A Subscriber on `channels` (handing messages to `callback`, else `heard`) that has heard on each of them, and
    a publisher; `heard` is cleared."""
    subscriber = resp.subscriber_for_url(redis_url, callback or heard)
    await subscriber.subscribe(*channels)
    publisher = redis.Redis.from_url(redis_url)
    for channel in channels:
        await _published_until_heard(publisher, channel, heard)
    heard.messages.clear()
    return subscriber, publisher


async def test_every_message_pushed_reaches_the_callback_once_and_in_order(redis_url):
    heard = Heard()
    first, second = _key(), _key()
    subscriber, publisher = await _listening(redis_url, heard, first, second)

    sent = [((first, second)[n % 2], f"message {n}".encode()) for n in range(300)]
    pipeline = publisher.pipeline(transaction=False)
    for channel, data in sent:
        pipeline.publish(channel, data)
    pipeline.execute()

    await heard.until(len(sent))
    assert heard.messages == sent
    subscriber.close()


async def test_a_channel_unsubscribed_from_is_no_longer_heard(redis_url):
    heard = Heard()
    kept, left = _key(), _key()
    subscriber, publisher = await _listening(redis_url, heard, kept, left)

    await subscriber.unsubscribe(left)
    await asyncio.sleep(0.1)
    heard.messages.clear()
    publisher.publish(left, b"gone")
    publisher.publish(kept, b"still here")

    await heard.until(1)
    await asyncio.sleep(0.1)
    assert heard.messages == [(kept, b"still here")]
    assert publisher.pubsub_numsub(left, kept) == [(left.encode(), 0), (kept.encode(), 1)]
    subscriber.close()


async def test_a_callback_that_fails_on_one_message_leaves_the_next_ones_heard(redis_url):
    heard = Heard()

    def fussy(channel: str, data: bytes) -> None:
        if data == b"poison":
            raise ValueError("not this one")
        heard(channel, data)

    channel = _key()
    subscriber, publisher = await _listening(redis_url, heard, channel, callback=fussy)

    for data in (b"before", b"poison", b"after"):
        publisher.publish(channel, data)

    await heard.until(2)
    assert heard.messages == [(channel, b"before"), (channel, b"after")]
    subscriber.close()


async def test_a_lost_connection_is_reopened_with_every_channel_subscribed_again(redis_url):
    heard = Heard()
    subscriber = resp.subscriber_for_url(redis_url, heard)
    channels = [_key() for _ in range(3)]
    await subscriber.subscribe(*channels)
    await subscriber.unsubscribe(channels[2])
    publisher = redis.Redis.from_url(redis_url)
    for channel in channels[:2]:
        await _published_until_heard(publisher, channel, heard)

    # when Redis drops the subscriber's connection
    killed = publisher.client_kill_filter(_type="pubsub")
    assert killed >= 1

    # then it comes back by itself, subscribed to what it was (and not to what it left)
    heard.messages.clear()
    for channel in channels[:2]:
        await _published_until_heard(publisher, channel, heard)
    assert publisher.pubsub_numsub(*channels) == [(channels[0].encode(), 1), (channels[1].encode(), 1),
                                                  (channels[2].encode(), 0)]
    subscriber.close()


async def test_a_closed_subscriber_does_not_come_back(redis_url):
    heard = Heard()
    channel = _key()
    subscriber, publisher = await _listening(redis_url, heard, channel)

    subscriber.close()
    await asyncio.sleep(0.3)

    assert publisher.pubsub_numsub(channel) == [(channel.encode(), 0)]
