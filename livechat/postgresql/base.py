"""Django's PostgreSQL backend, with three additions for the hot statements.

- The pool checks connections as livechat/pool.py decides, and hands out the one used last (the same module).
  Django builds the pool itself and passes it psycopg_pool's check (CONN_HEALTH_CHECKS) or none, so neither can
  come through the pool's OPTIONS; both are set here, before the pool opens (Django opens it on the first
  connection).
- `prepared_cursor()`: a cursor that binds its parameters on the server, so psycopg prepares a statement the
  connection runs often (OPTIONS' prepare_threshold) and PostgreSQL plans it once per connection instead of on
  every call. Django's cursors bind on the client (every value quoted into the text in Python, the text parsed
  and planned again); turning server-side binding on for every query is Django's `server_side_binding`, whose
  typing rules the ORM's queries do not all meet. So only the statements written for it use this one: the
  visitor's and the advisor's one-statement writes (conversations.live_message), and the compiled lookups and
  rows (livechat.compiled: the access check, the tokens' lookups, the inbox list's first pages).
- `prepared_cursor(binary=True)`: the rows come in PostgreSQL's binary format, read as Django's text ones are (the
  loaders every connection gets with Django's, `get_connection_params`). PostgreSQL then writes no integer or
  timestamp as text, and psycopg parses none back (Django's timestamp loader is Python): a 100-row page of the inbox
  list ran and was read in 2.77 ms rather than 3.39 (medians of 16 alternated runs of 300).
"""
import functools

from django.db.backends.postgresql import base, operations
from django.utils.asyncio import async_unsafe
from psycopg import DataError
from psycopg.adapt import AdaptersMap, Loader
from psycopg.pq import Format

from livechat.pool import check_unless_recently_used, most_recent_first


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        """For the queries Django logs (DEBUG, tests): a server-binding cursor's SQL with its values, as Django's
        cursors show theirs (Django's own version reads a client-side binding's text, which this cursor has not)."""
        if isinstance(cursor, base.ServerBindingCursor):
            try:
                return self.compose_sql(sql, params)
            except base.Database.DataError:
                return None
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    @property
    def pool(self):
        pool = super().pool
        if pool is not None:
            pool._check = check_unless_recently_used
            most_recent_first(pool)
        return pool

    def get_connection_params(self):
        """Django's, with the binary loaders added to its adapters (every connection opened from them: the pool's,
        and the event loop's own, livechat.loop_io)."""
        params = super().get_connection_params()
        if "context" in params:
            params["context"] = _with_binary_loaders(params["context"])
        return params

    @async_unsafe
    def prepared_cursor(self, *, binary: bool = False):
        """Like `cursor()` (the same wrapping: errors, query logging, thread checks), binding on the server; with
        `binary`, its rows in the binary format, for SQL whose columns are integers, booleans, text, JSON and
        timestamps (the connection's binary loaders read those as Django does)."""
        self.ensure_connection()
        with self.wrap_database_errors:
            cursor = base.ServerBindingCursor(self.connection)
            tzloader = self.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, base.Format.TEXT)
            if self.timezone != tzloader.timezone:
                base.register_tzloader(self.timezone, cursor)
            if binary:
                cursor.format = Format.BINARY
            return self._prepare_cursor(cursor)


class _JsonbAsText(Loader):
    """jsonb in the binary format as its JSON text, which is what Django's text loader gives (the field decodes it)."""

    format = Format.BINARY

    def load(self, data) -> str:
        if data[:1] != b"\x01":  # the format's version: 1 is the only one PostgreSQL has written
            raise DataError(f"unknown jsonb binary format version: {bytes(data[:1])!r}")
        return bytes(data[1:]).decode()


@functools.lru_cache
def _with_binary_loaders(template: AdaptersMap) -> AdaptersMap:
    """Django's adapters (one map per time zone setting, cached by Django too), with binary results read as Django
    reads text ones. Django changes two loaders of the types read here: jsonb, read as text (_JsonbAsText), and
    timestamptz, given Django's time zone, which the connection's session already has (Django sets it when it
    connects) and psycopg's binary loader gives its values in. Every other type's binary value is psycopg's, the
    same Python value as its text one (not inet or cidr, which Django reads as text: such columns need the text
    format). Only binary results use these: Django's own cursors ask for text."""
    adapters = AdaptersMap(template)
    adapters.register_loader("jsonb", _JsonbAsText)
    return adapters
