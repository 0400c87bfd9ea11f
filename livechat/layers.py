"""The production channel layer: channels_redis's pub/sub layer, with publishes and subscriptions batched.

channels_redis's shard connection takes one asyncio lock for every publish, subscribe and unsubscribe, and holds it
across each publish's round trip to Redis. A process therefore published one message per round trip, each waiting
for the event loop to come back to its reply, and a subscription waited for the lock behind them: under load, a
turn of a busy loop per publish and per subscription, one after the other. In the bench's mixed profile (1,000 new
visitors a minute, 20 inbox sockets) an escalation reached the inbox up to 38 s late and each of a new widget
socket's three subscriptions waited 1.6 s on average, with the process at 80% of a core.

Here nothing waits for another command's round trip:

- Publishes made while a batch is on its way leave together, in the order they were made, as one pipeline (one
  write, one read) on one connection. Each caller returns once Redis has taken its message, or raises what the
  pipeline raised. A group's order holds: the realtime sender awaits a group's publish before its next one, and a
  pipeline keeps its commands' order.
- Subscriptions and unsubscriptions queue in the order they were asked for and are written by one task, each run of
  the same kind as one command. Each caller returns once its command is written (as before: a subscription was
  never confirmed by a reply). The shard's lock now only guards that writing against a flush.

And a channel's backlog is bounded. channels_redis queues a socket's messages without limit while the socket is
busy (its client stopped reading: the send waits up to SLOW_CONSUMER_S before the socket closes 4008), so the
memory a stalled socket holds grew with the senders' speed: 5,000 replies of 16 KB sent as fast as the reply
statement allows piled 42 MB on two stalled sockets in 5 s. Past CHANNEL_BACKLOG_MAX_BYTES the channel gets one
`layer.overflow` and nothing more: the socket closes 4008 on it (conversations.consumers.JsonSocket), and its
client comes back with `after` (the widget) or `resume` (the inbox), as from any slow-consumer close.
"""
import asyncio
import functools
from collections.abc import Awaitable, Callable

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close

# At most this many publishes in one pipeline; more wait for the next (a bound on one write and one reply).
PIPELINE_MAX = 500
# What one channel (one socket) may hold unread, in serialized bytes: thousands of ordinary events (0.5-2 KB), tens
# of seconds of a busy site for an inbox socket that is resuming; past it, the socket is closed as a slow consumer.
# One message is always taken into an empty queue, whatever its size: a burst's batch (livechat.realtime, up to
# BATCH_MAX events) of long messages can weigh more than this alone, and a socket that keeps up takes each batch
# before the next arrives.
CHANNEL_BACKLOG_MAX_BYTES = 8 * 2**20
OVERFLOW_TYPE = "layer.overflow"

SUBSCRIBE, UNSUBSCRIBE = "subscribe", "unsubscribe"

Waiting = list[tuple[str, object, asyncio.Future]]  # (channel or kind, message or channel, the caller's future)


class _Backlog(asyncio.Queue):
    """A channel's queue that counts the bytes it holds; once told it overflowed, it takes nothing more."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.overflowed = False

    def offer(self, data: bytes, overflow: bytes) -> None:
        if self.overflowed:
            return  # dropped: the socket was told, and closes; its client catches up from the database
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

    def _receive_message(self, message):
        """channels_redis's, with each channel's backlog bounded (_Backlog)."""
        if message is None:
            return
        name, data = message["channel"], message["data"]
        if isinstance(name, bytes):
            name = name.decode()
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
            if changed:
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


class BatchingRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer with BatchingShardConnection under it: same configuration, same wire format (a
    process on either layer hears the other)."""

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = self._layers[loop] = BatchingLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
            return layer
