"""Django's PostgreSQL backend, with two additions for the hot statements.

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
"""
from django.db.backends.postgresql import base, operations
from django.utils.asyncio import async_unsafe

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

    @async_unsafe
    def prepared_cursor(self):
        """Like `cursor()` (the same wrapping: errors, query logging, thread checks), binding on the server."""
        self.ensure_connection()
        with self.wrap_database_errors:
            cursor = base.ServerBindingCursor(self.connection)
            tzloader = self.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, base.Format.TEXT)
            if self.timezone != tzloader.timezone:
                base.register_tzloader(self.timezone, cursor)
            return self._prepare_cursor(cursor)
