"""Where the sockets' database calls run: decided once, here, for consumers and the socket auth middleware.

Channels' `database_sync_to_async` runs every call in asgiref's one thread-sensitive thread, so one socket waiting
on the database (a row lock, a slow query, a connection) makes every other socket of the process wait behind it.

- PostgreSQL (pooled connections, see DATABASES in settings): calls run concurrently in a thread pool as large as
  the connection pool, each thread borrowing a connection for the call and returning it after. Row locks in the
  services keep concurrent writes correct, as they already do across processes.
- SQLite: one writer at a time anyway, so calls stay in the thread-sensitive thread, as before.

Per-socket order is the caller's: a consumer awaits each call before the next frame.
"""
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import ParamSpec, TypeVar

from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import close_old_connections

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


def database_call(function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`function` as a coroutine function run in a database thread, its connections closed (returned to the pool)
    after the call, as `database_sync_to_async` does. Usable as a decorator."""
    if concurrent():
        return _PooledCall(function, thread_sensitive=False, executor=_executor())
    return database_sync_to_async(function)
