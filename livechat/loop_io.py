"""The event loop's own connections to PostgreSQL and Redis, for the commonest send of all: a visitor's text to a
live conversation (conversations.services.visitor_text_on_loop).

Everything else a socket writes goes to a database thread (livechat/db.py): the ORM is synchronous. That trip
costs the text more than its own work: asgiref's hand-over to the thread and back, Django's connection and cursor
wrappers, the blocking Redis call of the rate limit, and the thread's wait for the GIL while the loop runs, about
0.3 ms of CPU and 0.4 ms of latency a text (`make bench`'s visitors, measured in one process: 0.73-0.76 against
0.42-0.50 ms of CPU a send, 1.28-1.38 against 0.83-0.94 ms from the frame to the publish). The text's write is one
prepared statement and its rate limit one script call, so they run here, awaited on the loop, and the thread path
remains for anything that statement does not write.

- PostgreSQL: at most DATABASE_LOOP_CONNECTIONS connections per loop, opened when first needed and kept. When all
  are busy, a text waits for one to come back, first come first served, for at most WAIT_FOR_CONNECTION_S; past
  that, or when the last attempt to open or use one failed less than a second ago, `postgres()` yields None and
  the caller takes the thread path (its pool waits and retries, as every other write does): a row lock held
  somewhere never holds texts up for longer than that wait, and PostgreSQL being down costs it nothing.
  The wait is what a burst needs: a loop that was busy for a moment reads the frames that arrived meanwhile in one
  turn, and each of those texts found the connections taken and went to the threads, which write it in six round
  trips and a thread hop instead of one statement, at several times the CPU of this path and of PostgreSQL's:
  more work at the moment the process is already behind. A statement takes about a millisecond, so the four
  connections clear a queue of a hundred texts in about 25 ms. A connection is
  dropped, never reused, after any error or a cancellation in the middle of a statement.
  Not psycopg_pool's AsyncConnectionPool: it runs tasks of its own on the loop it opened on and must be closed
  there, while every test runs its own loop; these few connections need no upkeep and close without a loop.
- Redis: one pipelined connection per loop to the cache's server (the rate limit's script, livechat.resp), with
  the cache's timeouts; redis-py's asyncio client for an address livechat.resp does not take (TLS).

Both are kept per event loop (a connection belongs to the loop it was opened on) and forgotten with it.
`close_all()` closes the PostgreSQL connections of every loop without needing one (tests call it after each test,
so the test database can be dropped).
"""
import asyncio
import atexit
import collections
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import redis.asyncio
from django.conf import settings
from django.db import connections
from django.db.backends.postgresql.base import register_tzloader

from livechat import resp
from livechat.db import concurrent

logger = logging.getLogger(__name__)

# After a failure to open or use a connection, the thread path takes every send for this long.
REST_AFTER_FAILURE_S = 1.0
# How long a text waits for a busy loop connection before it takes the thread path (see the module's doc).
WAIT_FOR_CONNECTION_S = 0.1


class _Connections:
    """One loop's PostgreSQL connections (touched by that loop's thread only, apart from close_all)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: list[psycopg.AsyncConnection] = []
        self.opened: set[psycopg.AsyncConnection] = set()
        self.resting_until = 0.0
        # Borrowers waiting for a connection, first come first served: each future gets a connection handed back,
        # or None when one was dropped (the waiter may then open a new one).
        self.waiting: collections.deque[asyncio.Future] = collections.deque()

    async def _open(self) -> psycopg.AsyncConnection:
        database = connections["default"]
        parameters = database.get_connection_params()
        parameters.pop("cursor_factory", None)  # Django's synchronous cursor class
        parameters["autocommit"] = True
        connection = await psycopg.AsyncConnection.connect(
            **parameters, connect_timeout=max(1, round(settings.DATABASE_POOL_TIMEOUT_S)))
        # The session in Django's connection time zone, as Django sets its own connections' when it opens them: a
        # session starts in the server's default zone, and the loader below reads a timestamp's digits as written
        # in Django's. (A server set up in Paris announced every text written here an hour off.)
        timezone_name = database.timezone_name
        if timezone_name and connection.info.parameter_status("TimeZone") != timezone_name:
            await connection.execute(database.ops.set_time_zone_sql(), [timezone_name])
        # Timestamps load as Django's own connections load them (aware, in Django's connection time zone); binary
        # rows as Django's connections read them (the adapters of get_connection_params, livechat.postgresql).
        register_tzloader(database.timezone, connection)
        return connection

    async def _take(self) -> psycopg.AsyncConnection | None:
        """An idle connection, a new one, or one handed back within WAIT_FOR_CONNECTION_S; else None."""
        deadline = None
        while time.monotonic() >= self.resting_until:
            if self.idle:
                return self.idle.pop()
            if len(self.opened) < self.size:
                try:
                    connection = await self._open()
                except (psycopg.Error, OSError) as error:
                    self.resting_until = time.monotonic() + REST_AFTER_FAILURE_S
                    logger.warning("the loop's database connection did not open: %s: %s", type(error).__name__,
                                   error)
                    return None
                self.opened.add(connection)
                return connection
            loop = asyncio.get_running_loop()
            deadline = deadline or loop.time() + WAIT_FOR_CONNECTION_S
            waiter = loop.create_future()
            self.waiting.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    handed = await waiter
            except BaseException:  # the wait timed out, or the caller was cancelled
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self._give_back(waiter.result())  # handed over at the very moment: not this caller's now
                with contextlib.suppress(ValueError):
                    self.waiting.remove(waiter)
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                return None
            if handed is not None:
                return handed
            # a connection was dropped: this waiter may open one in its place
        return None

    def _give_back(self, connection: psycopg.AsyncConnection) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self.idle.append(connection)

    def _dropped(self) -> None:
        """A connection closed: the first waiter, if any, may open another."""
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    @asynccontextmanager
    async def borrow(self) -> AsyncIterator[psycopg.AsyncConnection | None]:
        connection = await self._take()
        if connection is None:
            yield None
            return
        reusable = False
        try:
            yield connection
            reusable = (not connection.closed
                        and connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE)
        except psycopg.OperationalError:
            self.resting_until = time.monotonic() + REST_AFTER_FAILURE_S
            raise
        finally:
            if reusable:
                self._give_back(connection)
            else:
                self.opened.discard(connection)
                _close_now(connection)
                self._dropped()

    def close(self) -> None:
        for connection in list(self.opened):
            _close_now(connection)
        self.opened.clear()
        self.idle.clear()


def _close_now(connection: psycopg.AsyncConnection) -> None:
    """Close without awaiting (libpq's own close, which needs no loop): also from a thread, or after the loop ended."""
    try:
        connection.pgconn.finish()
    except Exception:  # already closed: nothing to release
        pass


_postgres: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Connections]" = weakref.WeakKeyDictionary()
_redis: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, resp.PipelinedRedis | redis.asyncio.Redis]" = (
    weakref.WeakKeyDictionary())
_lock = threading.Lock()  # close_all may run in another thread than a loop adding its connections


def available() -> bool:
    """Whether the loop may write the text itself: PostgreSQL with its pool (not SQLite, where one writer at a time
    works in one thread) and at least one loop connection allowed."""
    return concurrent() and settings.DATABASE_LOOP_CONNECTIONS > 0


def postgres():
    """`async with postgres() as connection:` a connection of this loop's, autocommit, or None (take the thread
    path). On the loop only; see the module's doc for when it is None."""
    loop = asyncio.get_running_loop()
    own = _postgres.get(loop)
    if own is None:
        with _lock:
            own = _postgres[loop] = _Connections(settings.DATABASE_LOOP_CONNECTIONS)
    return own.borrow()


def redis_client() -> "resp.PipelinedRedis | redis.asyncio.Redis":
    """This loop's connection to the cache's Redis server, with the cache's timeouts: livechat.resp's, or
    redis-py's client for an address it does not take."""
    loop = asyncio.get_running_loop()
    client = _redis.get(loop)
    if client is None:
        cache = settings.CACHES["default"]
        options = cache.get("OPTIONS", {})
        client = resp.for_url(cache["LOCATION"], connect_timeout=options.get("socket_connect_timeout"),
                              timeout=options.get("socket_timeout"))
        if client is None:
            client = redis.asyncio.Redis.from_url(
                cache["LOCATION"], **{name: value for name, value in options.items()
                                      if name in ("socket_timeout", "socket_connect_timeout")})
        _redis[loop] = client
    return client


@atexit.register
def close_all() -> None:
    """Close every loop's PostgreSQL connections (and forget the Redis clients: their sockets close with them). At
    the process's exit too: PostgreSQL then sees the connections end rather than break."""
    with _lock:
        for own in list(_postgres.values()):
            own.close()
        _postgres.clear()
        _redis.clear()
