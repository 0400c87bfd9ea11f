"""A pipelined Redis connection for the event loop's hottest commands: the rate limit's script on every visitor's
text and the channel layer's publishes (two per message).

redis-py's asyncio client spends most of such a command in Python around the round trip: a connection taken from
its pool and given back (a lock, a set, a health check), its retry wrapper, the command's arguments filtered and
encoded, a stream writer, a parser. In `make bench` at 100 messages/s the rate limit's call and the publish pipeline
were 14% of the event loop's time (py-spy, only samples holding the GIL), more than the text's own statement.

Here a command is written at once on one connection per loop and its reply is matched to it by order (Redis
answers a connection's commands in the order they came): no pool, no lock, and commands made in the same turn of
the loop leave in one write. hiredis packs the commands and parses the replies, as it does for redis-py.

Failures keep redis-py's types, which the callers already handle: a connection that fails or closes fails every
command waiting on it (`redis.exceptions.ConnectionError`) and the next command opens a new one; a command that
waits longer than `timeout` gets `redis.exceptions.TimeoutError`, and its connection is closed (a server that does
not answer one command answers none behind it); an error reply is a `redis.exceptions.ResponseError`.

For `redis://` and `unix://` addresses; `for_url` returns None for any other (TLS), and callers keep redis-py.

`Subscriber` is the same connection in Redis's subscribed mode, for the channel layer's subscriptions: each message
Redis pushes is handed to a callback as it is read, with no task woken per message. redis-py's PubSub, under
channels_redis's receiving task, took a round of the loop, a timeout context and a reply dict per message, and
every message this process publishes comes back to it that way (5.8% of the loop's time in `make bench` at 100
messages/s, py-spy --gil).
"""
import asyncio
import collections
import logging
from collections.abc import Callable
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)


class _Wire(asyncio.Protocol):
    """One TCP (or Unix) connection: commands written in order, replies matched to them in the same order."""

    def __init__(self, pushed: Callable[[list], None] | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.unwritten: list[bytes] = []
        self.lost = False
        # In subscribed mode (Subscriber), what Redis sends once no command waits for a reply: its pushes.
        self.pushed = pushed

    def send(self, command: tuple) -> asyncio.Future:
        """Queue one command for this turn's write; the future gets its reply."""
        if self.lost or self.transport is None:
            raise RedisConnectionError("the connection to Redis closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append(future)
        if not self.unwritten:
            loop.call_soon(self._flush)
        self.unwritten.append(hiredis.pack_command(command))
        return future

    def _flush(self) -> None:
        data, self.unwritten = b"".join(self.unwritten), []
        if not self.lost and data:
            self.transport.write(data)

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                if not self.waiting:
                    if self.pushed is None:
                        raise hiredis.ProtocolError("a reply nothing asked for")
                    self.pushed(reply)
                    continue
                future = self.waiting.popleft()
                if not future.done():  # its caller gave up (cancelled): the order is kept all the same
                    future.set_result(reply)
        except hiredis.ProtocolError as error:  # the stream is out of step: start over
            self.abort(RedisConnectionError(f"Redis's replies could not be read: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.abort(RedisConnectionError(f"the connection to Redis closed: {exc}" if exc else
                                        "the connection to Redis closed"))

    def abort(self, error: Exception) -> None:
        """Close, failing every command that waits for a reply."""
        if not self.lost:
            self.lost = True
            if self.transport is not None:
                self.transport.abort()
        waiting, self.waiting, self.unwritten = self.waiting, collections.deque(), []
        for future in waiting:
            if not future.done():
                future.set_exception(error)
                future.exception()  # marked as retrieved: a caller that gave up must not leave a warning


class PipelinedRedis:
    """The connection of one event loop to one server (see the module's doc), opened when first needed and again
    after it failed."""

    def __init__(self, *, host: str = "", port: int = 6379, path: str = "", db: int = 0, username: str = "",
                 password: str = "", connect_timeout: float | None = None, timeout: float | None = None) -> None:
        self.host, self.port, self.path, self.db = host, port, path, db
        self.username, self.password = username, password
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self.wire: _Wire | None = None  # open, AUTH and SELECT answered
        self.connecting: asyncio.Future | None = None

    async def execute(self, *command):
        """One command's reply."""
        wire = await self._wire()
        return _reply(await self._wait(wire, wire.send(command)))

    async def _wait(self, wire: _Wire, future: asyncio.Future):
        if self.timeout is None:
            return await future
        try:
            async with asyncio.timeout(self.timeout):
                return await future
        except TimeoutError:
            error = RedisTimeoutError(f"Redis did not answer within {self.timeout} s")
            wire.abort(error)  # one command unanswered: none behind it will be
            raise error from None

    async def _wire(self) -> _Wire:
        wire = self.wire
        if wire is not None and not wire.lost:
            return wire
        if self.connecting is None:
            self.connecting = asyncio.ensure_future(self._open())
            self.connecting.add_done_callback(self._opened)
        return await asyncio.shield(self.connecting)

    def _opened(self, connecting: asyncio.Future) -> None:
        if self.connecting is connecting:
            self.connecting = None
        if not connecting.cancelled():
            connecting.exception()  # each waiter raised it already

    def _new_wire(self) -> _Wire:
        return _Wire()

    async def _open(self) -> _Wire:
        loop = asyncio.get_running_loop()
        wire = self._new_wire()
        handshake = []
        if self.password:
            handshake.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            handshake.append(("SELECT", self.db))
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.path:
                    await loop.create_unix_connection(lambda: wire, self.path)
                else:
                    await loop.create_connection(lambda: wire, self.host, self.port)
                for future in [wire.send(command) for command in handshake]:
                    _reply(await future)
        except TimeoutError:
            wire.abort(RedisConnectionError("the connection's handshake timed out"))
            raise RedisTimeoutError(f"Redis did not accept a connection within {self.connect_timeout} s") from None
        except OSError as error:
            raise RedisConnectionError(f"could not connect to Redis: {error}") from error
        except BaseException:
            wire.abort(RedisConnectionError("the connection's handshake failed"))
            raise
        self.wire = wire
        return wire

    def close(self) -> None:
        if self.wire is not None:
            self.wire.abort(RedisConnectionError("closed"))
            self.wire = None


class Subscriber(PipelinedRedis):
    """A connection in subscribed mode: `message(channel, data)` is called for every message Redis pushes on the
    channels subscribed to, in the order Redis sent them, from the connection's reading (it must not block, and
    what it raises is logged and dropped). Subscriptions are written at once; a lost connection is opened again
    (after RECONNECT_DELAYS_S, the last one repeated while it fails) and every channel subscribed to again.
    What Redis pushed meanwhile is lost, as for any subscriber (channels_redis's layer is at-most-once; the layer
    watch, livechat.health, tells the sockets)."""

    RECONNECT_DELAYS_S = (0.0, 0.1, 0.5, 1.0)

    def __init__(self, message: Callable[[str, bytes], None], **options) -> None:
        super().__init__(**options)
        self.message = message
        self.channels: set[str] = set()
        self.reconnecting: asyncio.Task | None = None
        self.closed = False

    def _new_wire(self) -> _Wire:
        return _SubscribedWire(self)

    async def subscribe(self, *channels: str) -> None:
        """Subscribe, returning once the command is written (Redis confirms nothing a caller waits for)."""
        await self._write("SUBSCRIBE", channels, add=True)

    async def unsubscribe(self, *channels: str) -> None:
        await self._write("UNSUBSCRIBE", channels, add=False)

    async def _write(self, command: str, channels: tuple[str, ...], *, add: bool) -> None:
        if not channels:
            return
        # Known before the write: a connection opened meanwhile subscribes to what is known then.
        (self.channels.update if add else self.channels.difference_update)(channels)
        wire = await self._wire()
        wire.write_only((command, *channels))

    async def _open(self) -> _Wire:
        wire = await super()._open()
        if self.channels:  # every channel known, on a new connection (the caller that opened it repeats its own)
            wire.write_only(("SUBSCRIBE", *sorted(self.channels)))
        return wire

    def lost(self, wire: "_SubscribedWire") -> None:
        """The connection `wire` closed: open another while channels are subscribed to."""
        if self.closed or wire is not self.wire or not self.channels or self.reconnecting is not None:
            return
        try:
            self.reconnecting = asyncio.get_running_loop().create_task(self._reconnect())
        except RuntimeError:  # the loop has stopped: nothing to hear any more
            pass

    async def _reconnect(self) -> None:
        try:
            for attempt in range(1_000_000):
                await asyncio.sleep(self.RECONNECT_DELAYS_S[min(attempt, len(self.RECONNECT_DELAYS_S) - 1)])
                if self.closed or not self.channels:
                    return
                try:
                    await self._wire()
                    return
                except (RedisConnectionError, RedisTimeoutError, ResponseError) as error:
                    if attempt == 1:
                        logger.warning("the channel layer's subscriber cannot reach Redis: %s", error)
        finally:
            self.reconnecting = None

    def close(self) -> None:
        self.closed = True
        if self.reconnecting is not None:
            self.reconnecting.cancel()
        super().close()


class _SubscribedWire(_Wire):
    def __init__(self, subscriber: Subscriber) -> None:
        super().__init__(pushed=self._pushed)
        self.subscriber = subscriber

    def write_only(self, command: tuple) -> None:
        """A command whose replies come as pushes (SUBSCRIBE, UNSUBSCRIBE): written at once, no reply awaited."""
        if self.lost or self.transport is None:
            raise RedisConnectionError("the connection to Redis closed")
        self.transport.write(hiredis.pack_command(command))

    def _pushed(self, push) -> None:
        if isinstance(push, list) and len(push) == 3 and push[0] == b"message":
            try:
                self.subscriber.message(push[1].decode(), push[2])
            except Exception:  # one message's handling failed: the connection and the next messages go on
                logger.exception("a message from Redis could not be handled")
        elif isinstance(push, hiredis.ReplyError):
            logger.warning("Redis refused a subscription: %s", push)

    def abort(self, error: Exception) -> None:
        was_lost = self.lost
        super().abort(error)
        if not was_lost:
            self.subscriber.lost(self)


def _reply(reply):
    if isinstance(reply, hiredis.ReplyError):
        raise ResponseError(str(reply))
    return reply


def for_url(url: str, *, connect_timeout: float | None = None, timeout: float | None = None) -> PipelinedRedis | None:
    """A connection to the server of a `redis://` or `unix://` URL (its db, user and password), or None."""
    options = _options(url)
    return None if options is None else PipelinedRedis(**options, connect_timeout=connect_timeout, timeout=timeout)


def subscriber_for_url(url: str, message: Callable[[str, bytes], None], *,
                       connect_timeout: float | None = None) -> Subscriber | None:
    """A Subscriber to the server of a `redis://` or `unix://` URL, or None (see for_url)."""
    options = _options(url)
    return None if options is None else Subscriber(message, **options, connect_timeout=connect_timeout)


def _options(url: str) -> dict | None:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    if parts.scheme == "redis":
        path = parts.path.strip("/")
        db = int(path) if path else int(query.get("db", ["0"])[0])
        return {"host": parts.hostname or "localhost", "port": parts.port or 6379, "db": db, "username": username,
                "password": password}
    if parts.scheme == "unix":
        return {"path": parts.path, "db": int(query.get("db", ["0"])[0]), "username": username, "password": password}
    return None
