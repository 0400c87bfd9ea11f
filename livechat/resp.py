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
"""
import asyncio
import collections
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


class _Wire(asyncio.Protocol):
    """One TCP (or Unix) connection: commands written in order, replies matched to them in the same order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.unwritten: list[bytes] = []
        self.lost = False

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
                    raise hiredis.ProtocolError("a reply nothing asked for")
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

    async def _open(self) -> _Wire:
        loop = asyncio.get_running_loop()
        wire = _Wire()
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


def _reply(reply):
    if isinstance(reply, hiredis.ReplyError):
        raise ResponseError(str(reply))
    return reply


def for_url(url: str, *, connect_timeout: float | None = None,
            timeout: float | None = None) -> PipelinedRedis | None:
    """A connection to the server of a `redis://` or `unix://` URL (its db, user and password), or None."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    if parts.scheme == "redis":
        path = parts.path.strip("/")
        db = int(path) if path else int(query.get("db", ["0"])[0])
        return PipelinedRedis(host=parts.hostname or "localhost", port=parts.port or 6379, db=db,
                              username=username, password=password, connect_timeout=connect_timeout,
                              timeout=timeout)
    if parts.scheme == "unix":
        return PipelinedRedis(path=parts.path, db=int(query.get("db", ["0"])[0]), username=username,
                              password=password, connect_timeout=connect_timeout, timeout=timeout)
    return None
