"""Change numbers: one server-wide, ever-growing source for `Conversation.change` and `ReadState.change`.

A resume (CONTRACT section 5) asks for everything in scope changed after a number, so the numbers must be
comparable across conversations. A counter row would be a lock every write of every conversation waits for:

- PostgreSQL: a sequence. `nextval` takes no row lock and is never rolled back (a gap is harmless).
- SQLite: one writer at a time already holds the database's only write lock, so a one-row counter costs no
  extra waiting; the write transaction that asks for a number is the one that holds that lock. A trigger moves the
  counter up to any number a conversation row takes, so a conversation's UPDATE can take counter + 1 itself.

Both are created by migration 0003. A conversation's write takes its number inside its own UPDATE
(next_change_sql), so the message path costs no query more.
"""
from django.db import connection
from django.db.models.expressions import RawSQL

SEQUENCE = "conversations_change_seq"
SQLITE_COUNTER = "conversations_change_counter"


def next_change() -> int:
    """A number greater than any handed out before (in this database). Call it inside the write's transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT nextval('{SEQUENCE}')")
        else:
            cursor.execute(f"UPDATE {SQLITE_COUNTER} SET value = value + 1 RETURNING value")
        return cursor.fetchone()[0]


def next_change_sql() -> RawSQL:
    """The same number as an expression for the UPDATE of a conversation row (one statement, no extra query).
    The saved instance then holds the expression: read the number back with refresh_from_db if needed."""
    if connection.vendor == "postgresql":
        return RawSQL(f"nextval('{SEQUENCE}')", [])
    return RawSQL(f"(SELECT value + 1 FROM {SQLITE_COUNTER})", [])
