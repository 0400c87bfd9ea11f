"""Where the sockets' database calls run (livechat/db.py): side by side on PostgreSQL, one at a time on SQLite."""
import asyncio
import threading
from unittest import mock

import pytest
from django.db import connection, connections

from advisors.models import Site
from livechat.db import concurrent, database_call

pytestmark = pytest.mark.django_db(transaction=True)


async def test_database_calls_overlap_on_postgresql_and_take_turns_on_sqlite(demo):
    second_started = threading.Event()

    @database_call
    def first() -> bool:
        Site.objects.count()
        return second_started.wait(timeout=1)  # true only if the second call runs meanwhile

    @database_call
    def second() -> None:
        second_started.set()
        Site.objects.count()

    # when two calls are made at once
    overlapped, _ = await asyncio.gather(first(), second())

    # then on PostgreSQL the second ran while the first was still in its thread; on SQLite (one writer) it waited
    assert concurrent() is (connection.vendor == "postgresql")
    assert overlapped is concurrent()


async def test_a_call_gives_its_connection_back_even_with_channels_cleanup_off(demo):
    if not concurrent():
        pytest.skip("SQLite calls stay in Channels' thread-sensitive thread, with Channels' own cleanup")

    @database_call
    def use_the_database():
        Site.objects.count()
        return connections["default"]  # this thread's connection handle

    # given Channels' cleanup turned off, as its test communicator does while a test awaits a socket
    with mock.patch("channels.db.close_old_connections", lambda: None):
        # when a call has used the database
        handle = await use_the_database()

    # then its thread holds no connection: it went back to the pool (else the test database could not be dropped)
    assert handle.connection is None
