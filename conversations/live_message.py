"""A visitor's text to a live conversation in one statement: the commonest write of a busy process.

The general path (services._visitor_send) is six round trips to PostgreSQL: BEGIN, lock the conversation, look
the client_id up, insert the item, update the counters, COMMIT, each through the ORM and a database thread's hold
on the GIL. When the conversation is live and the visitor has spoken before (no escalation e-mail, no bot, no
reopening), nothing in that write depends on Python: one statement locks the row, checks the client_id,
inserts the item and moves the counters, and commits on its own. Anything else (a repeated client_id, a bot
conversation, a closed one, the first words, an answer to the away message's e-mail question) writes nothing here
and takes the general path, which decides exactly as before (the row lock is released when this statement ends;
that path takes it again).

PostgreSQL only: SQLite has no data-modifying WITH, and one writer at a time there anyway.
"""
from contextlib import nullcontext
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from conversations.changes import SEQUENCE
from conversations.models import Conversation, Message

# `conversation` locks the row (FOR UPDATE; under READ COMMITTED a concurrent writer's committed row is the one
# returned, and the UPDATE below follows it). `item` inserts only when the conversation fits and no item of
# the visitor or an advisor holds this client_id (the services' _repeated decides what such a repeat means).
_SQL = f"""
WITH conversation AS (
    SELECT id, site_id, visitor_id, status, assigned_id, last_seq, last_public_seq, last_visitor_seq,
           last_advisor_seq, awaiting_email
    FROM conversations_conversation WHERE visitor_id = %(visitor)s FOR UPDATE
), item AS (
    INSERT INTO conversations_message (conversation_id, seq, kind, sender, text, image, image_url, buttons,
                                       client_id, created_at)
    SELECT id, last_seq + 1, %(kind)s, %(sender)s, %(text)s, '', '', '[]'::jsonb, %(client_id)s, %(now)s
    FROM conversation
    WHERE status = %(live)s AND last_visitor_seq > 0 AND NOT awaiting_email
      AND NOT EXISTS (SELECT 1 FROM conversations_message taken
                      WHERE taken.conversation_id = conversation.id AND taken.client_id = %(client_id)s
                        AND taken.sender IN (%(sender)s, %(advisor)s))
    RETURNING id, conversation_id, seq
), counters AS (
    UPDATE conversations_conversation AS c
    SET last_seq = item.seq, last_public_seq = item.seq, last_visitor_seq = item.seq,
        last_message_id = item.id, last_public_message_id = item.id, updated_at = %(now)s,
        change = nextval('{SEQUENCE}')
    FROM item WHERE c.id = item.conversation_id
    RETURNING c.change
)
SELECT conversation.id, conversation.site_id, conversation.visitor_id, conversation.status,
       conversation.assigned_id, conversation.last_public_seq, conversation.last_advisor_seq,
       item.id, item.seq, (SELECT change FROM counters)
FROM conversation LEFT JOIN item ON true
"""


class Written:
    """What the statement stored: the item, its conversation (the columns it read and wrote; others load on
    access), and the last item the visitor could see before it."""

    def __init__(self, message: Message, conversation: Conversation, previous_public_seq: int):
        self.message = message
        self.conversation = conversation
        self.previous_public_seq = previous_public_seq


def write(*, visitor_id: int, client_id: str, text: str) -> Written | None:
    """Store the text if the conversation is live and the visitor spoke before, in one statement (committed on
    its own unless the caller holds a transaction). None: nothing was written; use the general path."""
    if connection.vendor != "postgresql":
        return None
    now: datetime = timezone.now()
    parameters = {"visitor": visitor_id, "client_id": client_id, "text": text, "now": now,
                  "kind": Message.Kind.TEXT, "sender": Message.Sender.VISITOR, "advisor": Message.Sender.ADVISOR,
                  "live": Conversation.Status.LIVE}
    try:
        # Inside a caller's transaction, a savepoint: the refusal below must not break that transaction.
        with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
            cursor.execute(_SQL, parameters)
            row = cursor.fetchone()
    except IntegrityError:
        # The same client_id sent twice at once: the client_id check ran on the statement's snapshot, taken before
        # this waited for the row lock, so the other send's item was not visible to it. The unique constraint
        # refused the second item; the general path, in a new snapshot, answers the repeat with the stored one.
        return None
    if row is None or row[7] is None:
        return None
    (conversation_id, site_id, visitor_id, status, assigned_id, previous_public_seq, last_advisor_seq,
     message_id, seq, change) = row
    conversation = Conversation.from_db(
        "default",
        ["id", "site_id", "visitor_id", "status", "assigned_id", "last_seq", "last_public_seq", "last_visitor_seq",
         "last_advisor_seq", "last_message_id", "last_public_message_id", "updated_at", "change"],
        [conversation_id, site_id, visitor_id, status, assigned_id, seq, seq, seq, last_advisor_seq, message_id,
         message_id, now, change])
    message = Message(id=message_id, conversation=conversation, seq=seq, kind=Message.Kind.TEXT,
                      sender=Message.Sender.VISITOR, text=text, client_id=client_id, buttons=[], created_at=now)
    message._state.adding, message._state.db = False, "default"
    return Written(message, conversation, previous_public_seq)
