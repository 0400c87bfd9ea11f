"""The PostgreSQL pool's check as a connection leaves it: once per second of a connection's idleness, not per call;
and the pool hands out the connection used last, not the one idle the longest.

A check (psycopg_pool's `check_connection`: an empty statement, one round trip) is what discards the connections
a PostgreSQL restart or a terminated backend broke, instead of handing them out. Django runs it on every `getconn`,
and the sockets borrow a connection for each database call (livechat/db.py): a visitor's text on a live
conversation went to PostgreSQL as two round trips, the check and the one statement that stores it (4.7% of the
web process's samples, py-spy at 100 msg/s with 20 inbox sockets).

A connection handed out less than RECENTLY_USED_S ago was working then; it is not checked again. One that broke
within that second (PostgreSQL stopping, `pg_terminate_backend`) fails its call like any database error: the
sender gets `unavailable` and sends again with the same client_id, as it does while PostgreSQL is down, and the
pool replaces the connection (it comes back in a bad state). A PostgreSQL restart takes longer than that second,
so every connection used before it is checked after it.

psycopg_pool hands its connections out in turn: the one idle the longest first (a queue). Below the rate at which
every connection is used again within RECENTLY_USED_S (ten connections, ten calls a second), every call then got a
connection idle past it and paid the check's round trip, on a backend whose caches had gone cold: an advisor's reply
at 25 messages/s spent 8.2 ms in the web process, 3 ms of it in the check and in slower statements (stamped at
every stage in `make bench`'s server). `most_recent_first` makes the pool a stack: the connection returned last
leaves first, so a quiet process keeps using one or two warm, recently checked connections, and the others wait
below them for a burst, checked when they are needed again. The pool's shrinking (max_idle) then closes one of the
warm ones rather than the coldest, which costs nothing but the next connection's check.
"""
import collections
import threading
import time
from weakref import WeakKeyDictionary

from psycopg import Connection
from psycopg_pool import ConnectionPool

RECENTLY_USED_S = 1.0

_check = ConnectionPool.check_connection
_handed_out_at: WeakKeyDictionary = WeakKeyDictionary()  # connection -> monotonic time it last left the pool
_lock = threading.Lock()  # the pool calls the check from every database thread


def check_unless_recently_used(connection: Connection) -> None:
    """The pool's `check`: psycopg_pool's own (raises when the connection is broken) unless the connection left
    the pool, checked or not, within the last RECENTLY_USED_S."""
    now = time.monotonic()
    with _lock:
        last = _handed_out_at.get(connection)
    if last is None or now - last >= RECENTLY_USED_S:
        _check(connection)
    with _lock:
        _handed_out_at[connection] = now


class _MostRecentFirst(collections.deque):
    """The pool's idle connections, taken from the left (psycopg_pool's `popleft`) and returned to the left too."""

    def append(self, connection) -> None:
        self.appendleft(connection)


def most_recent_first(pool: ConnectionPool) -> None:
    """Make `pool` hand out the connection returned to it last (see the module's doc). Idempotent, and cheap once
    done: Django's backend calls it whenever it reaches for its pool."""
    if isinstance(pool._pool, _MostRecentFirst):
        return
    with pool._lock:  # the pool's workers add connections under it
        if not isinstance(pool._pool, _MostRecentFirst):
            pool._pool = _MostRecentFirst(pool._pool)
