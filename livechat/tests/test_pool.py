"""The pool's check (livechat/pool.py): a connection idle for a second or more is checked as it leaves the pool and
replaced when its backend is gone; one handed out again within the second is not checked again."""
import threading
import time

import psycopg
import pytest
from django.db import connection, connections
from psycopg_pool import ConnectionPool

from livechat import pool as pool_check

pytestmark = pytest.mark.django_db

SHORT_S = 0.05  # RECENTLY_USED_S for these tests, so that they wait a twentieth of a second rather than one


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the pool and its check exist on PostgreSQL only")


@pytest.fixture
def checks(monkeypatch) -> list:
    """psycopg_pool's own check, still run, with each connection it checks noted."""
    checked = []

    def counted(conn):
        checked.append(conn)
        return ConnectionPool.check_connection(conn)

    monkeypatch.setattr(pool_check, "_check", counted)
    monkeypatch.setattr(pool_check, "RECENTLY_USED_S", SHORT_S)
    return checked


def _pool(size: int, name: str, *, most_recent_first: bool = False) -> ConnectionPool:
    """A pool of `size` connections to the test database with this module's check, opened."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params["autocommit"] = True
    pool = ConnectionPool(kwargs=params, min_size=size, max_size=size, check=pool_check.check_unless_recently_used,
                          open=False, timeout=5, name=name)
    if most_recent_first:
        pool_check.most_recent_first(pool)
    pool.open(wait=True)
    return pool


@pytest.fixture
def one_connection_pool(postgresql):
    pool = _pool(1, "test-check")
    yield pool
    pool.close()


def backend_of(pool: ConnectionPool) -> int:
    with pool.connection() as conn:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_a_connection_handed_out_again_within_the_second_is_not_checked_again(one_connection_pool, checks):
    # given a connection checked as it first left the pool
    first = backend_of(one_connection_pool)
    assert len(checks) == 1

    # when it is handed out again at once, twice
    assert backend_of(one_connection_pool) == first
    assert backend_of(one_connection_pool) == first

    # then it was not checked again: those calls made one round trip each, their statement
    assert len(checks) == 1


def test_a_connection_idle_past_the_second_is_checked_again(one_connection_pool, checks):
    backend_of(one_connection_pool)
    time.sleep(SHORT_S * 2)

    backend_of(one_connection_pool)

    assert len(checks) == 2


def test_a_connection_whose_backend_died_while_idle_is_replaced_not_handed_out(one_connection_pool, checks):
    # given the pool's one connection, then its backend terminated while it sat in the pool
    gone = backend_of(one_connection_pool)
    with psycopg.connect(**{**connection.get_connection_params(), "autocommit": True}) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [gone])
    time.sleep(SHORT_S * 2)

    # when the next call borrows a connection, it gets a working one on another backend
    assert backend_of(one_connection_pool) not in (gone, None)


@pytest.mark.django_db(transaction=True)
def test_djangos_pool_uses_this_check(postgresql, checks, monkeypatch):
    def borrow_and_return() -> None:
        """What a database thread does around a call: a connection from Django's pool, a statement, then back."""
        def call():
            try:
                with connections["default"].cursor() as cursor:
                    cursor.execute("SELECT 1")
            finally:
                connections["default"].close()

        thread = threading.Thread(target=call)
        thread.start()
        thread.join(10)

    # when more calls than the pool has connections run one after the other, within the second (the pool hands its
    # connections out in turn, and earlier tests may have grown it to its size)
    monkeypatch.setattr(pool_check, "RECENTLY_USED_S", 0.5)
    time.sleep(0.6)  # every connection idle past it: the first call checks its connection
    calls = 2 * connections["default"].settings_dict["OPTIONS"]["pool"]["max_size"] + 2
    for _ in range(calls):
        borrow_and_return()
    quick = list(checks)

    # then Django's pool checked a connection as it first left the pool, and then let calls through unchecked
    # (test_a_connection_idle_past_the_second_is_checked_again shows the check coming back after idleness)
    assert 1 <= len(quick) < calls


@pytest.fixture
def three_connection_pool(postgresql):
    pool = _pool(3, "test-order", most_recent_first=True)
    yield pool
    pool.close()


def test_a_quiet_process_keeps_using_the_connection_it_used_last(three_connection_pool, checks):
    # given a pool of three connections, each used once (psycopg_pool's own order would then hand them out in turn)
    with three_connection_pool.connection() as a, three_connection_pool.connection() as b, \
            three_connection_pool.connection() as c:
        used = {conn.execute("SELECT pg_backend_pid()").fetchone()[0] for conn in (a, b, c)}
    assert len(used) == 3
    time.sleep(SHORT_S * 2)  # all of them idle past the check's second
    checks.clear()

    # when calls come one at a time, further apart than a connection's quiet second would allow for three in turn
    backends = []
    for _ in range(4):
        backends.append(backend_of(three_connection_pool))
        time.sleep(SHORT_S * 0.6)

    # then every call got the connection the previous one returned, checked once, as it first left the pool
    assert len(set(backends)) == 1 and backends[0] in used
    assert len(checks) == 1


def test_a_burst_still_gets_every_connection_and_the_cold_ones_are_checked(three_connection_pool, checks):
    backend_of(three_connection_pool)
    time.sleep(SHORT_S * 2)
    checks.clear()

    # when three calls overlap
    with three_connection_pool.connection() as a, three_connection_pool.connection() as b, \
            three_connection_pool.connection() as c:
        backends = {conn.execute("SELECT pg_backend_pid()").fetchone()[0] for conn in (a, b, c)}

    # then each had a connection of its own, each checked (all idle past the second)
    assert len(backends) == 3
    assert len(checks) == 3


@pytest.mark.django_db(transaction=True)
def test_djangos_pool_hands_out_the_connection_used_last(postgresql):
    def backend_in_a_thread() -> int:
        found = []

        def call():
            try:
                with connections["default"].cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    found.append(cursor.fetchone()[0])
            finally:
                connections["default"].close()

        thread = threading.Thread(target=call)
        thread.start()
        thread.join(10)
        return found[0]

    first = backend_in_a_thread()
    assert [backend_in_a_thread() for _ in range(5)] == [first] * 5
