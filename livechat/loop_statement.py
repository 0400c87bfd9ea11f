"""One statement the event loop runs on every visitor's text (conversations.live_message.write_on_loop), sent through
libpq directly rather than through psycopg's cursor.

psycopg's asynchronous `execute` is Python from end to end: the query's conversion, the prepared-statement
cache's bookkeeping, a cursor, a generator driven by a waiting coroutine, the row's loading. For this one statement
(its SQL fixed, its parameters a few integers and strings) that was 12-14% of the web process's time at 100 texts a
second (py-spy, --gil), and the process is the loop. Here the statement is prepared once per connection, each run
is libpq's PQsendQueryPrepared with the parameters as text, the wait is a reader on the loop, and the one row comes
in the binary format, loaded by psycopg's own loaders (a Transformer: C) as a cursor would load it. The visitor's
text statement, run 1,500 times in a row on one connection, in alternated rounds: 99-149 against 148-226 us of CPU
a run (the rest is libpq, its system calls and the loop's reader).

Errors are psycopg's: a statement that fails raises the exception psycopg would (errors.error_from_result), a
connection that fails raises psycopg.OperationalError. A run cancelled while it waits leaves the connection busy:
livechat.loop_io then drops it, as it drops any connection whose transaction is not idle.
"""
import asyncio
import hashlib
import re
import weakref
from typing import Any

import psycopg
from psycopg import errors, pq
from psycopg.adapt import Transformer

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")

# The statements prepared on each connection (by name): a connection is the session they live in.
_prepared: "weakref.WeakKeyDictionary[psycopg.AsyncConnection, set[bytes]]" = weakref.WeakKeyDictionary()


class LoopStatement:
    """`sql` with psycopg's named placeholders (`%(name)s`, each cast in the SQL, since nothing else gives
    PostgreSQL their types); `await statement.first_row(connection, parameters)`: its first row, or None.
    `LoopStatement(sql, positional=True)`: the same for SQL with `%s` placeholders (a query Django compiled, whose
    placeholders PostgreSQL types from the columns they are compared with), run with a list of values."""

    def __init__(self, sql: str, *, positional: bool = False) -> None:
        self.positional = positional
        self.names: list[str] = []
        self.count = 0
        self.sql = (self._numbered_positional(sql) if positional else self._numbered_named(sql)).encode()
        self.name = b"livechat_" + hashlib.sha256(self.sql).hexdigest()[:24].encode()

    def _numbered_named(self, sql: str) -> str:
        def numbered(match: re.Match) -> str:
            name = match.group(1)
            if name not in self.names:
                self.names.append(name)
            return f"${self.names.index(name) + 1}"

        if "%%" in sql or re.search(r"%(?!\(\w+\)s)", sql):
            raise ValueError("a loop statement takes named placeholders only, and no other % sign")
        return _PLACEHOLDER.sub(numbered, sql)

    def _numbered_positional(self, sql: str) -> str:
        parts = re.split(r"(%[s%])", sql)
        if any("%" in part for part in parts[::2]):
            raise ValueError("a positional loop statement takes %s placeholders only, and %% for a % sign")
        numbered = []
        for part in parts:
            if part == "%s":
                self.count += 1
                numbered.append(f"${self.count}")
            else:
                numbered.append("%" if part == "%%" else part)
        return "".join(numbered)

    async def first_row(self, connection: psycopg.AsyncConnection, parameters: dict[str, Any] | list) -> tuple | None:
        rows = await self.rows(connection, parameters, at_most=1)
        return rows[0] if rows else None

    async def rows(self, connection: psycopg.AsyncConnection, parameters: dict[str, Any] | list, *,
                   at_most: int | None = None) -> list[tuple]:
        """The statement's rows (the first `at_most` of them)."""
        if self.positional:
            if len(parameters) != self.count:
                raise TypeError(f"{self.count} values expected, not {len(parameters)}")
            values = [_as_text(value) for value in parameters]
        else:
            values = [_as_text(parameters[name]) for name in self.names]
        pgconn = connection.pgconn
        prepared = _prepared.setdefault(connection, set())
        if self.name not in prepared:
            pgconn.send_prepare(self.name, self.sql)
            _raise_for(await _last_result(pgconn), connection)
            prepared.add(self.name)
        pgconn.send_query_prepared(self.name, values, result_format=pq.Format.BINARY)
        result = await _last_result(pgconn)
        _raise_for(result, connection)
        count = result.ntuples if at_most is None else min(at_most, result.ntuples)
        if count == 0:
            return []
        loader = Transformer(connection)
        loader.set_pgresult(result, format=pq.Format.BINARY)
        return loader.load_rows(0, count, tuple)


def _as_text(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text format: the SQL casts it (integers, booleans, strings and None are all it
    takes)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if not isinstance(value, (int, str)):
        raise TypeError(f"a loop statement's parameter is an int, a bool, a str or None, not {type(value).__name__}")
    return str(value).encode() if isinstance(value, int) else value.encode()


async def _last_result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult:
    """The result of the command just sent (libpq gives each, then None), waiting on the loop for the socket."""
    loop = asyncio.get_running_loop()
    while pgconn.flush():  # 1: more to write (a nonblocking connection's socket buffer was full)
        await _ready(loop, pgconn.socket, write=True)
    last = None
    while True:
        pgconn.consume_input()
        while not pgconn.is_busy():
            result = pgconn.get_result()
            if result is None:
                if last is None:
                    raise psycopg.OperationalError("the server sent no result")
                return last
            if last is None or last.status != pq.ExecStatus.FATAL_ERROR:  # the first error is the one to tell
                last = result
        await _ready(loop, pgconn.socket, write=False)


async def _ready(loop: asyncio.AbstractEventLoop, fileno: int, *, write: bool) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fileno, wake)
    try:
        await ready
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fileno)


def _raise_for(result: pq.abc.PGresult, connection: psycopg.AsyncConnection) -> None:
    if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        raise errors.error_from_result(result, encoding=connection.info.encoding)
