"""Where the sockets' database calls run: decided once, here, for consumers and the socket auth middleware.

Channels' `database_sync_to_async` runs every call in asgiref's one thread-sensitive thread, so one socket waiting
on the database (a row lock, a slow query, a connection) makes every other socket of the process wait behind it.

- PostgreSQL (pooled connections, see DATABASES in settings): calls run concurrently in a thread pool as large as
  the connection pool, each thread borrowing a connection for the call and returning it after. Row locks in the
  services keep concurrent writes correct, as they already do across processes.
- SQLite: one writer at a time anyway, so calls stay in the thread-sensitive thread, as before, and keep that
  thread's connection open from one call to the next: opening and closing a SQLite connection around every call
  was a sixth of a busy process's time (profiled with twenty inbox sockets). A connection is per thread, and every
  call runs in that one thread; one that failed and is no longer usable is closed (the next call opens another),
  and Django's own request handling still closes it at the end of each HTTP request in that thread.

Per-socket order is the caller's: a consumer awaits each call before the next frame.
"""
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import ParamSpec, TypeVar

from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

P = ParamSpec("P")
R = TypeVar("R")


@cache
def concurrent() -> bool:
    """True when database calls may run side by side: the default database is PostgreSQL with its pool."""
    return bool(settings.DATABASES["default"].get("OPTIONS", {}).get("pool"))


@cache
def _executor() -> ThreadPoolExecutor:
    # As many threads as pooled connections: the sockets' calls never queue for a connection among themselves
    # (HTTP requests borrow from the same pool, for milliseconds at a time).
    return ThreadPoolExecutor(max_workers=settings.DATABASE_POOL_MAX_SIZE, thread_name_prefix="database")


class _PooledCall(SyncToAsync):
    """A call in the database threads that hands its connection back to the pool when it returns.

    Not channels.db's DatabaseSyncToAsync: Channels' test communicator turns that one's cleanup off (so a test's
    transaction survives on the thread-sensitive connection), which would leave these threads holding connections
    that no test transaction needs and that keep the test database from being dropped."""

    def thread_handler(self, loop, *args, **kwargs):
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            close_old_connections()  # CONN_MAX_AGE is 0 with a pool: every connection goes back to it


def _keep_usable_connections() -> None:
    """After a call on SQLite: keep this thread's connections, unless one is broken or left in a state the next
    call must not inherit (autocommit off outside a transaction)."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None or connection.in_atomic_block:
            continue  # not open, or a transaction that is not ours to end (a test's)
        if connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]:
            connection.close()
        elif connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()


class _ReusedConnectionCall(SyncToAsync):
    """A call in the thread-sensitive thread that keeps that thread's SQLite connection for the next call."""

    def thread_handler(self, loop, *args, **kwargs):
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            _keep_usable_connections()


def database_call(function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`function` as a coroutine function run in a database thread. On PostgreSQL its connections go back to the
    pool after the call, as `database_sync_to_async` does; on SQLite the thread keeps its connection.
    Usable as a decorator."""
    if concurrent():
        return _PooledCall(function, thread_sensitive=False, executor=_executor())
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return _ReusedConnectionCall(function, thread_sensitive=True)
    return database_sync_to_async(function)
