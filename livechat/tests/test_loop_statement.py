"""A statement the loop sends through libpq's own calls (livechat.loop_statement) answers as psycopg's execute would:
the same row, the same errors, and a connection left busy is never given to the next text."""
import asyncio
from datetime import datetime, timezone

import psycopg
import pytest
from django.db import connection

from livechat import loop_io
from livechat.loop_statement import LoopStatement

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the loop's connections are PostgreSQL's (CI runs both)")


ECHO = LoopStatement("SELECT %(n)s::bigint, %(text)s::text, %(n)s::int + 1, %(none)s::text, "
                     "'{\"a\": [1, null]}'::jsonb, %(at)s::timestamptz, true")


async def test_a_statement_gives_the_row_psycopg_gives_named_parameters_used_twice_included():
    parameters = {"n": 41, "text": "Zoé ✓ 'quoted' $1", "none": None, "at": "2026-12-04 10:11:12.345678+00"}
    own = loop_io._Connections(1)
    async with own.borrow() as loop_connection:
        for _ in range(2):  # prepared on the first run, reused on the second
            row = await ECHO.first_row(loop_connection, parameters)
            assert row == (41, "Zoé ✓ 'quoted' $1", 42, None, '{"a": [1, null]}',
                           datetime(2026, 12, 4, 10, 11, 12, 345678, tzinfo=timezone.utc), True)
        cursor = await loop_connection.execute(
            "SELECT %(n)s::bigint, %(text)s::text, %(n)s::int + 1, %(none)s::text, '{\"a\": [1, null]}'::jsonb, "
            "%(at)s::timestamptz, true", parameters, binary=True)
        assert await cursor.fetchone() == row
    own.close()


async def test_no_row_is_none_and_a_failed_statement_raises_psycopgs_error_leaving_the_connection_usable():
    own = loop_io._Connections(1)
    nothing = LoopStatement("SELECT 1 WHERE %(n)s::int < 0")
    failing = LoopStatement("SELECT 1 / %(n)s::int")
    async with own.borrow() as loop_connection:
        assert await nothing.first_row(loop_connection, {"n": 1}) is None
        with pytest.raises(psycopg.errors.DivisionByZero):
            await failing.first_row(loop_connection, {"n": 0})
        assert await failing.first_row(loop_connection, {"n": 1}) == (1,)
    own.close()


async def test_a_constraint_refusal_is_psycopgs_integrity_error():
    own = loop_io._Connections(1)
    insert = LoopStatement("INSERT INTO taken (client_id) VALUES (%(client_id)s::varchar) RETURNING client_id")
    async with own.borrow() as loop_connection:
        await loop_connection.execute("CREATE TEMPORARY TABLE taken (client_id varchar PRIMARY KEY)")
        assert await insert.first_row(loop_connection, {"client_id": "c-1"}) == ("c-1",)
        with pytest.raises(psycopg.IntegrityError):
            await insert.first_row(loop_connection, {"client_id": "c-1"})
        assert await insert.first_row(loop_connection, {"client_id": "c-2"}) == ("c-2",)
    own.close()


async def test_a_run_cancelled_while_it_waits_leaves_its_connection_dropped_not_reused():
    own = loop_io._Connections(1)
    slow = LoopStatement("SELECT pg_sleep(%(s)s::float8)")

    async def run():
        async with own.borrow() as loop_connection:
            await slow.first_row(loop_connection, {"s": "1.5"})

    task = asyncio.ensure_future(run())
    await asyncio.sleep(0.2)
    busy = next(iter(own.opened))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert busy.closed and busy not in own.opened and own.idle == []
    async with own.borrow() as fresh:  # the next text gets a new connection, not the busy one
        assert fresh is not busy
        assert await ECHO.first_row(fresh, {"n": 1, "text": "", "none": None, "at": "2026-01-01 00:00:00+00"})
    own.close()


def test_only_named_placeholders_and_plain_values_are_taken():
    with pytest.raises(ValueError):
        LoopStatement("SELECT %s::int")
    with pytest.raises(ValueError):
        LoopStatement("SELECT %(a)s::int", positional=True)
    with pytest.raises(ValueError):
        LoopStatement("SELECT 'a%b' || %s::text", positional=True)
    with pytest.raises(ValueError):
        LoopStatement("SELECT 'a%%b' || %(x)s::text")
    assert LoopStatement("SELECT %(a)s::int, %(b)s::int, %(a)s::int").sql == b"SELECT $1::int, $2::int, $1::int"
    own = loop_io._Connections(1)

    async def with_a_float():
        async with own.borrow() as loop_connection:
            await ECHO.first_row(loop_connection, {"n": 1.5, "text": "", "none": None, "at": ""})

    with pytest.raises(TypeError):
        asyncio.run(with_a_float())
    own.close()


async def test_a_positional_statement_as_django_compiles_them_numbers_its_placeholders_and_returns_its_rows():
    statement = LoopStatement("SELECT n, 'a%%' || %s::text, %s::boolean FROM generate_series(1, %s::int) AS n",
                              positional=True)
    assert statement.sql == b"SELECT n, 'a%' || $1::text, $2::boolean FROM generate_series(1, $3::int) AS n"
    own = loop_io._Connections(1)
    async with own.borrow() as loop_connection:
        assert await statement.rows(loop_connection, ["b", True, 3]) == [(1, "a%b", True), (2, "a%b", True),
                                                                          (3, "a%b", True)]
        assert await statement.rows(loop_connection, ["b", False, 3], at_most=2) == [(1, "a%b", False),
                                                                                     (2, "a%b", False)]
        assert await statement.rows(loop_connection, ["b", None, 0]) == []
        with pytest.raises(TypeError):  # one value per placeholder
            await statement.rows(loop_connection, ["b", True])
    own.close()
