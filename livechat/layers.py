"""The production channel layer: channels_redis's pub/sub layer, with publishes and subscriptions batched.

channels_redis's shard connection takes one asyncio lock for every publish, subscribe and unsubscribe, and holds it
across each publish's round trip to Redis. A process therefore published one message per round trip, each waiting
for the event loop to come back to its reply, and a subscription waited for the lock behind them: under load, a
turn of a busy loop per publish and per subscription, one after the other. In the bench's mixed profile (1,000 new
visitors a minute, 20 inbox sockets) an escalation reached the inbox up to 38 s late and each of a new widget
socket's three subscriptions waited 1.6 s on average, with the process at 80% of a core.

Here nothing waits for another command's round trip:

- Publishes are written at once on one pipelined connection (livechat.resp: no pool, no lock, the publishes of one
  turn of the loop in one write, the replies matched by order). Each caller returns once Redis has taken its
  message, or raises what failed. A group's order holds: the realtime sender awaits a group's publish before its
  next one, and one connection keeps its commands' order. (For an address livechat.resp does not take, TLS, the
  publishes made while a batch is on its way leave together as one redis-py pipeline, in the same order.)
- Subscriptions and unsubscriptions queue in the order they were asked for and are written by one task, each run of
  the same kind as one command. Each caller returns once its command is written (as before: a subscription was
  never confirmed by a reply). The shard's lock now only guards that writing against a flush.
- They are written on livechat.resp's Subscriber connection, which hands each message Redis pushes to the channels'
  queues as it reads it, and subscribes again to every channel after it reconnects: channels_redis's receiving
  task took one turn of the loop per message through redis-py's PubSub (a process hears every message it publishes
  come back, two per visitor's text): 22.5-23 against 5.6-7.2 us of CPU a message read, in one process. (For an
  address livechat.resp does not take, TLS, channels_redis's task and redis-py's PubSub, as before.)

And a channel's backlog is bounded. channels_redis queues a socket's messages without limit while the socket is
busy (its client stopped reading: the send waits up to SLOW_CONSUMER_S before the socket closes 4008), so the
memory a stalled socket holds grew with the senders' speed: 5,000 replies of 16 KB sent as fast as the reply
statement allows piled 42 MB on two stalled sockets in 5 s. Past CHANNEL_BACKLOG_MAX_BYTES the channel gets one
`layer.overflow` and nothing more: the socket closes 4008 on it (conversations.consumers.JsonSocket), and its
client comes back with `after` (the widget) or `resume` (the inbox), as from any slow-consumer close.

And a group's members in this process hear its messages at once, not after Redis's round trip (as Phoenix.PubSub
delivers to its own node and forwards to the others). A visitor's message waited for its publish to reach Redis
and come back to the process that published it before any of its inbox sockets could hear it: 0.4-0.8 ms of a
visitor-to-advisor delivery of 3.6-6 ms at 25 messages/s (stamped at every stage, bench runs of session 14). The
message is offered to the local members' queues when it is published, as the copy Redis sends back would have been
(the same bytes, the same bounded backlog), and that copy is then dropped on its arrival. Other processes hear it
through Redis as before. The copy is recognised by its channel and bytes: a message another process publishes with
the very same bytes is the same event, so dropping either of the two leaves the count and the content right.
"""
import asyncio
import collections
import functools
import logging
import time
from collections.abc import Awaitable, Callable

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close

from livechat import resp

# At most this many publishes in one pipeline; more wait for the next (a bound on one write and one reply).
PIPELINE_MAX = 500
# What one channel (one socket) may hold unread, in serialized bytes: thousands of ordinary events (0.5-2 KB), tens
# of seconds of a busy site for an inbox socket that is resuming; past it, the socket is closed as a slow consumer.
# One message is always taken into an empty queue, whatever its size: a burst's batch (livechat.realtime, up to
# BATCH_MAX events) of long messages can weigh more than this alone, and a socket that keeps up takes each batch
# before the next arrives.
CHANNEL_BACKLOG_MAX_BYTES = 8 * 2**20
OVERFLOW_TYPE = "layer.overflow"
# How long a message delivered here waits for its copy from Redis: a copy that never comes (published before
# Redis took this process's subscription, or lost with a connection) is forgotten then. Redis sends it back within
# milliseconds; one later than this would be heard twice (clients take an item once by its seq). And how many may
# wait at once, past which the oldest are forgotten.
ECHO_WAIT_S = 30.0
ECHOES_MAX = 10_000

logger = logging.getLogger(__name__)

SUBSCRIBE, UNSUBSCRIBE = "subscribe", "unsubscribe"
_UNKNOWN = object()

Waiting = list[tuple[str, object, asyncio.Future]]  # (channel or kind, message or channel, the caller's future)


class _Backlog(asyncio.Queue):
    """A channel's queue that counts the bytes it holds; once told it overflowed, it takes nothing more.

    Its socket may also name a `taker`: a function that handles a message in place, synchronously, or answers False
    having done nothing. A message that finds the queue empty and its reader waiting on it (the socket idle: nothing
    before it unhandled) is offered to the taker first, which spares the reader's wake-up, and every step between
    it and the socket's write, for each socket of a group (an inbox socket hears every message of its sites)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.overflowed = False
        self.reading = False  # the reader waits in get() on an empty queue
        self.taker: Callable[[bytes], bool] | None = None

    async def get(self):
        if not self.empty():
            return self.get_nowait()
        self.reading = True
        try:
            return await super().get()
        finally:
            self.reading = False

    def offer(self, data: bytes, overflow: bytes) -> None:
        if self.overflowed:
            return  # dropped: the socket was told, and closes; its client catches up from the database
        if self.reading and self.taker is not None and self.empty() and self.taker(data):
            return
        if self.bytes and self.bytes + len(data) > CHANNEL_BACKLOG_MAX_BYTES:
            self.overflowed = True
            data = overflow
        self.bytes += len(data)
        self.put_nowait(data)

    def get_nowait(self):
        data = super().get_nowait()
        self.bytes -= len(data)
        return data


class BatchingShardConnection(RedisSingleShardConnection):
    def __init__(self, host, channel_layer):
        super().__init__(host, channel_layer)
        self._outbox: Waiting = []  # (channel, message, future)
        self._publisher: asyncio.Task | None = None
        self._subscriptions: Waiting = []  # (SUBSCRIBE or UNSUBSCRIBE, channel, future)
        self._subscriber: asyncio.Task | None = None
        # (channel, bytes) of messages delivered here -> when each copy was, oldest first: Redis's copies to drop
        self._echoes: dict[tuple[str, bytes], collections.deque[float]] = {}
        self._echoes_waiting = 0
        self._echoes_swept_at = time.monotonic()
        self._pipelined: resp.PipelinedRedis | None | object = _UNKNOWN  # the publishes' connection
        self._listener: resp.Subscriber | None | object = _UNKNOWN  # the subscriptions' connection

    def _address(self) -> str | None:
        address = self.host.get("address") if isinstance(self.host, dict) else None
        return address if isinstance(address, str) else None

    def _listening(self) -> "resp.Subscriber | None":
        """The connection the subscriptions are made on and the messages read from (livechat.resp.Subscriber), or
        None for an address it does not take (TLS): channels_redis's receiving task on redis-py's PubSub then."""
        if self._listener is _UNKNOWN:
            address = self._address()
            timeout = self.host.get("socket_connect_timeout") if isinstance(self.host, dict) else None
            self._listener = (resp.subscriber_for_url(address, self._heard, connect_timeout=timeout or 5.0)
                              if address else None)
        return self._listener

    def _receive_message(self, message):
        """What channels_redis's receiving task reads (redis-py's PubSub, for an address livechat.resp does not
        take), to _heard."""
        if message is None:
            return
        name = message["channel"]
        self._heard(name.decode() if isinstance(name, bytes) else name, message["data"])

    def _heard(self, name: str, data: bytes) -> None:
        """A message from Redis: channels_redis's handling, with each channel's backlog bounded (_Backlog), and
        Redis's copy of a message already delivered here (deliver_here) dropped."""
        if self._echoes and (waiting := self._echoes.get((name, data))) is not None:
            waiting.popleft()
            self._echoes_waiting -= 1
            if not waiting:
                del self._echoes[(name, data)]
            return
        self._offer(name, data)

    def deliver_here(self, channel: str, data: bytes) -> None:
        """A group's message, on its way to Redis, to this process's members now; Redis's copy is dropped."""
        self._offer(channel, data)
        now = time.monotonic()
        self._echoes.setdefault((channel, data), collections.deque()).append(now)
        self._echoes_waiting += 1
        if self._echoes_waiting > ECHOES_MAX or now - self._echoes_swept_at > ECHO_WAIT_S:
            self._forget_echoes(now)

    def _forget_echoes(self, now: float) -> None:
        """Forget the copies waited for too long, then, past ECHOES_MAX, the oldest (rare: copies come back within
        milliseconds, so only the few Redis never sent wait here)."""
        self._echoes_swept_at = now
        entries = sorted((when, key) for key, waiting in self._echoes.items() for when in waiting)
        keep = [(when, key) for when, key in entries if now - when <= ECHO_WAIT_S][-ECHOES_MAX // 2:]
        if len(entries) - len(keep) > 100:
            logger.warning("channel layer: %d messages delivered here never came back from Redis",
                           len(entries) - len(keep))
        self._echoes = {}
        for when, key in keep:
            self._echoes.setdefault(key, collections.deque()).append(when)
        self._echoes_waiting = len(keep)

    def _offer(self, name: str, data: bytes) -> None:
        layer = self.channel_layer  # this loop's layer: its channels' queues and its groups
        targets = [name] if name in layer.channels else layer.groups.get(name, ())
        for channel in targets:
            queue = layer.channels.get(channel)
            if queue is None:
                continue
            if isinstance(queue, _Backlog):
                queue.offer(data, layer.overflow_message)
            else:
                queue.put_nowait(data)

    # publishes -------------------------------------------------------------------------------------------------

    async def publish(self, channel, message):
        if self._pipelined is _UNKNOWN:
            address = self._address()
            self._pipelined = resp.for_url(address) if address else None
        if self._pipelined is not None:  # written at once, this turn's publishes in one write (livechat.resp)
            await self._pipelined.execute("PUBLISH", channel, message)
            return
        future = asyncio.get_running_loop().create_future()
        self._outbox.append((channel, message, future))
        if self._publisher is None:
            self._publisher = asyncio.ensure_future(self._publish_outbox())
        await future

    async def _publish_outbox(self) -> None:
        try:
            while self._outbox:
                batch, self._outbox = self._outbox[:PIPELINE_MAX], self._outbox[PIPELINE_MAX:]
                batch = [entry for entry in batch if not entry[2].done()]  # callers cancelled meanwhile
                if not batch:
                    continue
                await _on_behalf_of(batch, functools.partial(self._pipeline, batch))
        finally:
            self._publisher = None
            _settle(self._outbox, asyncio.CancelledError())  # cancelled with more queued: nothing will send them
            self._outbox = []

    async def _pipeline(self, batch: Waiting) -> None:
        self._ensure_redis()
        pipeline = self._redis.pipeline(transaction=False)
        for channel, message, _ in batch:
            pipeline.publish(channel, message)
        await pipeline.execute()

    # subscriptions ---------------------------------------------------------------------------------------------

    async def subscribe(self, channel):
        await self._queue_subscription(SUBSCRIBE, channel)

    async def unsubscribe(self, channel):
        await self._queue_subscription(UNSUBSCRIBE, channel)

    async def _queue_subscription(self, kind: str, channel: str) -> None:
        future = asyncio.get_running_loop().create_future()
        self._subscriptions.append((kind, channel, future))
        if self._subscriber is None:
            self._subscriber = asyncio.ensure_future(self._write_subscriptions())
        task = asyncio.current_task()
        if kind == UNSUBSCRIBE and task is not None and task.cancelling():
            # A receive cancelled mid-wait unsubscribes on its way out (channels_redis), and its task is ending:
            # the unsubscribe goes when it can, unwaited. Waiting held the cancelled task for as long as the
            # subscriber took, forever when the loop was shutting down (the subscriber started here is not among
            # the tasks a shutdown cancels, and its Redis connection may be gone): a test's event loop hung on
            # its close in 2 runs of 3 of the suite, the layer watch's probe cancelled mid-receive.
            future.add_done_callback(_retrieved)
            return
        await future

    async def _write_subscriptions(self) -> None:
        try:
            while self._subscriptions:
                batch, self._subscriptions = self._subscriptions, []
                async with self._lock:
                    for run in _runs(batch):
                        await self._write_run(run)
        finally:
            self._subscriber = None
            _settle(self._subscriptions, asyncio.CancelledError())
            self._subscriptions = []

    async def _write_run(self, run: Waiting) -> None:
        """One command for a run of subscriptions (or of unsubscriptions), for the channels it changes."""
        kind = run[0][0]
        run = [entry for entry in run if not entry[2].done()]  # callers cancelled meanwhile: not theirs now
        changed = list(dict.fromkeys(channel for _, channel, _ in run
                                     if (channel in self._subscribed_to) != (kind == SUBSCRIBE)))

        async def write() -> None:
            if changed and (listener := self._listening()) is not None:
                await (listener.subscribe if kind == SUBSCRIBE else listener.unsubscribe)(*changed)
                (self._subscribed_to.update if kind == SUBSCRIBE else self._subscribed_to.difference_update)(changed)
            elif changed:
                self._ensure_redis()
                self._ensure_receiver()
                if kind == SUBSCRIBE:
                    await self._pubsub.subscribe(*changed)
                    self._subscribed_to.update(changed)
                else:
                    await self._pubsub.unsubscribe(*changed)
                    self._subscribed_to.difference_update(changed)

        await _on_behalf_of(run, write)

    async def flush(self):
        for task in (self._publisher, self._subscriber):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._echoes, self._echoes_waiting = {}, 0
        if isinstance(self._pipelined, resp.PipelinedRedis):
            self._pipelined.close()
        if isinstance(self._listener, resp.Subscriber):
            self._listener.close()
        self._pipelined = self._listener = _UNKNOWN  # new connections if the layer is used again
        await super().flush()


def _runs(batch: Waiting) -> list[Waiting]:
    """Consecutive entries of the same kind, in order."""
    runs: list[Waiting] = []
    for entry in batch:
        if runs and runs[-1][0][0] == entry[0]:
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


async def _on_behalf_of(batch: Waiting, operation: Callable[[], Awaitable[None]]) -> None:
    """Do `operation` for the callers waiting in `batch`, and give each of them its outcome: done, or its error (the
    callers log it: the stored items are what counts)."""
    try:
        await operation()
    except asyncio.CancelledError:
        _settle(batch, asyncio.CancelledError())
        raise
    except Exception as error:
        _settle(batch, error)
    else:
        _settle(batch, None)


def _retrieved(future: asyncio.Future) -> None:
    """Marks an unwaited future's outcome as seen (asyncio would log an error nobody retrieved)."""
    if not future.cancelled():
        future.exception()


def _settle(batch: Waiting, error: BaseException | None) -> None:
    for _, _, future in batch:
        if future.done():  # its caller was cancelled
            continue
        if isinstance(error, asyncio.CancelledError):
            future.cancel()
        elif error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class BatchingLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._shards = [BatchingShardConnection(shard.host, self) for shard in self._shards]
        self.overflow_message = self.channel_layer.serialize({"type": OVERFLOW_TYPE})

    async def _subscribe_to_channel(self, channel):
        self.channels[channel] = _Backlog()  # channels_redis's own, with a bounded queue
        await self._get_shard(channel).subscribe(channel)

    async def group_send(self, group, message):
        """channels_redis's, with this process's members served at once (deliver_here)."""
        group_channel = self._get_group_channel_name(group)
        shard = self._get_shard(group_channel)
        data = self.channel_layer.serialize(message)
        if group_channel in self.groups:
            shard.deliver_here(group_channel, data)
        await shard.publish(group_channel, data)


class BatchingRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer with BatchingShardConnection under it: same configuration, same wire format (a
    process on either layer hears the other)."""

    def on_this_loop(self) -> BatchingLoopLayer:
        """The layer of the running loop, to call directly: channels_redis reaches it through a proxy coroutine
        (`__getattr__`, a partial, a coroutine and a lookup) on every call, and every inbox socket receives every
        message of its sites."""
        return self._get_layer()

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = self._layers[loop] = BatchingLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
            return layer
