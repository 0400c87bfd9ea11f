"""The PostgreSQL pool's check as a connection leaves it: once per second of a connection's idleness, not per call.

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
"""
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
