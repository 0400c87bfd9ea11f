"""A visitor's text, or an advisor's reply, to a live conversation in one statement: the commonest writes of a busy
process.

The general path (services._visitor_send) is six round trips to PostgreSQL: BEGIN, lock the conversation, look
the client_id up, insert the item, update the counters, COMMIT, each through the ORM and a database thread's hold
on the GIL. When the conversation is live and the visitor has spoken before (no escalation e-mail, no bot, no
reopening), nothing in that write depends on Python: one statement locks the row, checks the client_id,
inserts the item and moves the counters, and commits on its own. Anything else (a repeated client_id, a bot
conversation, a closed one, the first words, an answer to the away message's e-mail question) writes nothing here
and takes the general path, which decides exactly as before (the row lock is released when this statement ends;
that path takes it again).

An advisor's plain reply (`reply`) is the same idea, with what a reply moves besides: the replier's read position
(services._read_up_to) and activity (advisors.services.advisor_record_activity). It applies when the conversation is
live, assigned (to anyone) and past its first reply: then the general path (services.advisor_message_send) changes
no status, assignment or figure, and announces nothing but the item and the read position. A note, an image, a
first reply, a reply that joins or reopens, a repeated client_id: written by the general path.

The visitor's text runs on the event loop when it can (`write_on_loop`, livechat/loop_io.py): the same statement
on a connection of the loop's own, sent through libpq's own calls (livechat/loop_statement.py). The statements'
rows come in the binary format (livechat.postgresql): no timestamp written as text and parsed back by Django's
loader, which is Python.

PostgreSQL only: SQLite has no data-modifying WITH, and one writer at a time there anyway.
"""
import logging
from contextlib import nullcontext

import psycopg
from django.db import IntegrityError, connection, transaction

from conversations.changes import SEQUENCE
from conversations.models import Conversation, Message
from livechat import loop_io
from livechat.compiled import prepared_cursor
from livechat.loop_statement import LoopStatement
from routing.services import VisitorReach

logger = logging.getLogger(__name__)

# `conversation` locks the row (FOR UPDATE; under READ COMMITTED a concurrent writer's committed row is the one
# returned, and the UPDATE below follows it). The item's time is taken once the row is locked (clock_timestamp in
# `item`, which reads the locked row), so items' times follow their seq, as the general path's do. `item` inserts
# only when the conversation fits and no item of the visitor or an advisor holds this client_id (the services'
# _repeated decides what such a repeat means).
_SQL = f"""
WITH conversation AS (
    SELECT id, site_id, visitor_id, status, assigned_id, last_seq, last_public_seq, last_visitor_seq,
           last_advisor_seq, awaiting_email
    FROM conversations_conversation WHERE visitor_id = %(visitor)s::bigint FOR UPDATE
), item AS (
    INSERT INTO conversations_message (conversation_id, seq, kind, sender, text, image, image_url, buttons,
                                       client_id, created_at)
    SELECT id, last_seq + 1, %(kind)s::varchar, %(sender)s::varchar, %(text)s::text, '', '', '[]'::jsonb,
           %(client_id)s::varchar, clock_timestamp()
    FROM conversation
    WHERE status = %(live)s::varchar AND last_visitor_seq > 0 AND NOT awaiting_email
      AND NOT EXISTS (SELECT 1 FROM conversations_message taken
                      WHERE taken.conversation_id = conversation.id AND taken.client_id = %(client_id)s::varchar
                        AND taken.sender IN (%(sender)s::varchar, %(advisor)s::varchar))
    RETURNING id, conversation_id, seq, created_at
), counters AS (
    UPDATE conversations_conversation AS c
    SET last_seq = item.seq, last_public_seq = item.seq, last_visitor_seq = item.seq,
        last_message_id = item.id, last_public_message_id = item.id, updated_at = item.created_at,
        change = nextval('{SEQUENCE}')
    FROM item WHERE c.id = item.conversation_id
    RETURNING c.change
)
SELECT conversation.id, conversation.site_id, conversation.visitor_id, conversation.status,
       conversation.assigned_id, conversation.last_public_seq, conversation.last_advisor_seq,
       item.id, item.seq, (SELECT change FROM counters), item.created_at
FROM conversation LEFT JOIN item ON true
"""


# _SQL as the loop sends it (libpq's own calls: livechat.loop_statement).
_ON_THE_LOOP = LoopStatement(_SQL)


# The reply: `conversation` and `item` as above, for an advisor's text. `read` moves the replier's read position
# to the reply (_READ_UP_TO_SQL's upsert; its BEFORE trigger reads the conversation as it was before this statement,
# and the conversation's AFTER trigger, run once the statement ends, recomputes the copies from the new last item).
# `activity` is advisor_record_activity's one UPDATE. The visitor's e-mail and presence: routing.reply_stored's.
_REPLY_SQL = f"""
WITH conversation AS (
    SELECT id, site_id, visitor_id, status, assigned_id, last_seq, last_public_seq, last_visitor_seq, waiting_since,
           first_reply_at, escalated_at
    FROM conversations_conversation WHERE id = %(conversation)s::bigint FOR UPDATE
), item AS (
    INSERT INTO conversations_message (conversation_id, seq, kind, sender, text, image, image_url, buttons,
                                       client_id, advisor_id, created_at)
    SELECT id, last_seq + 1, %(kind)s::varchar, %(advisor_sender)s::varchar, %(text)s::text, '', '', '[]'::jsonb,
           %(client_id)s::varchar, %(advisor)s::bigint, clock_timestamp()
    FROM conversation
    WHERE status = %(live)s::varchar AND assigned_id IS NOT NULL AND waiting_since IS NULL
      AND (first_reply_at IS NOT NULL OR escalated_at IS NULL)
      AND NOT EXISTS (SELECT 1 FROM conversations_message taken
                      WHERE taken.conversation_id = conversation.id AND taken.client_id = %(client_id)s::varchar
                        AND taken.sender IN (%(visitor_sender)s::varchar, %(advisor_sender)s::varchar))
    RETURNING id, conversation_id, seq, created_at
), counters AS (
    UPDATE conversations_conversation AS c
    SET last_seq = item.seq, last_public_seq = item.seq, last_advisor_seq = item.seq,
        last_message_id = item.id, last_public_message_id = item.id, updated_at = item.created_at,
        change = nextval('{SEQUENCE}')
    FROM item WHERE c.id = item.conversation_id
    RETURNING c.change
), read AS (
    INSERT INTO conversations_readstate (advisor_id, conversation_id, seq, change, live_caught_up,
                                         live_caught_up_public)
    SELECT %(advisor)s::bigint, item.conversation_id, item.seq, nextval('{SEQUENCE}'), false, false FROM item
    ON CONFLICT ON CONSTRAINT read_state_unique DO UPDATE SET seq = EXCLUDED.seq, change = EXCLUDED.change
    WHERE conversations_readstate.seq < EXCLUDED.seq
    RETURNING seq
), activity AS (
    UPDATE advisors_advisor SET last_activity_at = item.created_at, message_count = message_count + 1
    FROM item WHERE advisors_advisor.id = %(advisor)s::bigint
)
SELECT conversation.id, conversation.site_id, conversation.visitor_id, conversation.assigned_id,
       conversation.last_public_seq, conversation.last_visitor_seq, item.id, item.seq, (SELECT change FROM counters),
       EXISTS (SELECT 1 FROM read), visitor.online_sockets, visitor.last_seen_at, visitor.variables ->> 'EMAIL',
       item.created_at
FROM conversation LEFT JOIN item ON true JOIN conversations_visitor AS visitor ON visitor.id = conversation.visitor_id
"""


# _REPLY_SQL as the loop sends it (conversations.api_on_loop's replies).
_REPLY_ON_THE_LOOP = LoopStatement(_REPLY_SQL)


# The conversation's columns both statements read or write, in the order _conversation takes their values.
_WRITTEN_COLUMNS = ["id", "site_id", "visitor_id", "status", "assigned_id", "last_seq", "last_public_seq",
                    "last_visitor_seq", "last_advisor_seq", "last_message_id", "last_public_message_id", "updated_at",
                    "change"]


def _conversation(values: list) -> Conversation:
    """The conversation as a statement left it (these columns; others load on access)."""
    return Conversation.from_db("default", _WRITTEN_COLUMNS, values)


def _stored(message: Message) -> Message:
    """An item a statement inserted, marked as a saved row."""
    message._state.adding, message._state.db = False, "default"
    return message


class Written:
    """What the statement stored: the item, its conversation (the columns it read and wrote; others load on
    access), and the last item the visitor could see before it."""

    def __init__(self, message: Message, conversation: Conversation, previous_public_seq: int):
        self.message = message
        self.conversation = conversation
        self.previous_public_seq = previous_public_seq


class Replied(Written):
    """A reply's Written, with whether the replier's read position moved and what routing.reply_stored asks of
    the visitor (read in the same statement)."""

    def __init__(self, message: Message, conversation: Conversation, previous_public_seq: int, *, read_moved: bool,
                 reach: VisitorReach):
        super().__init__(message, conversation, previous_public_seq)
        self.read_moved = read_moved
        self.reach = reach


def write(*, visitor_id: int, client_id: str, text: str) -> Written | None:
    """Store the text if the conversation is live and the visitor spoke before, in one statement (committed on
    its own unless the caller holds a transaction). None: nothing was written; use the general path."""
    if connection.vendor != "postgresql":
        return None
    try:
        # Inside a caller's transaction, a savepoint: the refusal below must not break that transaction.
        with (transaction.atomic() if connection.in_atomic_block else nullcontext(),
              prepared_cursor(connection, binary=True) as cursor):
            cursor.execute(_SQL, _parameters(visitor_id, client_id, text))
            row = cursor.fetchone()
    except IntegrityError:
        # The same client_id sent twice at once: the client_id check ran on the statement's snapshot, taken before
        # this waited for the row lock, so the other send's item was not visible to it. The unique constraint
        # refused the second item; the general path, in a new snapshot, answers the repeat with the stored one.
        return None
    return _written(row, client_id, text)


async def write_on_loop(*, visitor_id: int, client_id: str, text: str) -> Written | None:
    """`write` on the event loop, on one of its own connections (livechat.loop_io), committed on its own. None:
    nothing was written (the same cases as `write`, and also no loop connection free or a database error): use
    the general path, which stores the send or answers its repeat exactly as if this had not run."""
    async with loop_io.postgres() as loop_connection:
        if loop_connection is None:
            return None
        try:
            row = await _ON_THE_LOOP.first_row(loop_connection, _parameters(visitor_id, client_id, text))
        except psycopg.Error as error:  # the repeat above, or a connection lost: the thread path decides
            if not isinstance(error, psycopg.IntegrityError):
                logger.warning("the loop's write of visitor %s's text failed: %s: %s", visitor_id,
                               type(error).__name__, error)
            return None
    return _written(row, client_id, text)


def _parameters(visitor_id: int, client_id: str, text: str) -> dict:
    return {"visitor": visitor_id, "client_id": client_id, "text": text, "kind": Message.Kind.TEXT,
            "sender": Message.Sender.VISITOR, "advisor": Message.Sender.ADVISOR, "live": Conversation.Status.LIVE}


def _written(row: tuple | None, client_id: str, text: str) -> Written | None:
    if row is None or row[7] is None:
        return None
    (conversation_id, site_id, visitor_id, status, assigned_id, previous_public_seq, last_advisor_seq,
     message_id, seq, change, now) = row
    conversation = _conversation([conversation_id, site_id, visitor_id, status, assigned_id, seq, seq, seq,
                                  last_advisor_seq, message_id, message_id, now, change])
    message = _stored(Message(id=message_id, conversation=conversation, seq=seq, kind=Message.Kind.TEXT,
                              sender=Message.Sender.VISITOR, text=text, client_id=client_id, buttons=[],
                              created_at=now))
    return Written(message, conversation, previous_public_seq)


def reply_may_apply(conversation: Conversation) -> bool:
    """Whether `reply` may write to this conversation as last read (_REPLY_SQL's conditions, which decide under the
    row lock): asked first, so that a first reply does not pay for a statement that would write nothing."""
    return (conversation.status == Conversation.Status.LIVE and conversation.assigned_id is not None
            and conversation.waiting_since is None
            and (conversation.first_reply_at is not None or conversation.escalated_at is None))


def reply(*, conversation_id: int, advisor_id: int, client_id: str, text: str) -> Replied | None:
    """Store an advisor's plain reply if the conversation is live, assigned and past its first reply, in one
    statement (committed on its own unless the caller holds a transaction). None: nothing was written; use the
    general path. The message's advisor is left for the caller to set (it has the advisor)."""
    if connection.vendor != "postgresql":
        return None
    try:
        with (transaction.atomic() if connection.in_atomic_block else nullcontext(),
              prepared_cursor(connection, binary=True) as cursor):
            cursor.execute(_REPLY_SQL, _reply_parameters(conversation_id, advisor_id, client_id, text))
            row = cursor.fetchone()
    except IntegrityError:  # the same client_id twice at once, as for `write`
        return None
    return _replied(row, advisor_id, client_id, text)


async def reply_on_loop(*, conversation_id: int, advisor_id: int, client_id: str, text: str) -> Replied | None:
    """`reply` on the event loop, on one of its own connections (livechat.loop_io), committed on its own. None:
    nothing was written (the same cases as `reply`, and also no loop connection free or a database error): the
    general path, in a thread, then stores the reply or answers its repeat exactly as if this had not run."""
    async with loop_io.postgres() as loop_connection:
        if loop_connection is None:
            return None
        try:
            row = await _REPLY_ON_THE_LOOP.first_row(
                loop_connection, _reply_parameters(conversation_id, advisor_id, client_id, text))
        except psycopg.Error as error:  # the repeat, or a connection lost: the thread path decides
            if not isinstance(error, psycopg.IntegrityError):
                logger.warning("the loop's write of a reply to conversation %s failed: %s: %s", conversation_id,
                               type(error).__name__, error)
            return None
    return _replied(row, advisor_id, client_id, text)


def _reply_parameters(conversation_id: int, advisor_id: int, client_id: str, text: str) -> dict:
    return {"conversation": conversation_id, "advisor": advisor_id, "client_id": client_id, "text": text,
            "kind": Message.Kind.TEXT, "advisor_sender": Message.Sender.ADVISOR,
            "visitor_sender": Message.Sender.VISITOR, "live": Conversation.Status.LIVE}


def _replied(row: tuple | None, advisor_id: int, client_id: str, text: str) -> Replied | None:
    if row is None or row[6] is None:
        return None
    (conversation_id, site_id, visitor_id, assigned_id, previous_public_seq, last_visitor_seq, message_id, seq,
     change, read_moved, online_sockets, last_seen_at, email, now) = row
    conversation = _conversation([conversation_id, site_id, visitor_id, Conversation.Status.LIVE, assigned_id, seq,
                                  seq, last_visitor_seq, seq, message_id, message_id, now, change])
    message = _stored(Message(id=message_id, conversation=conversation, seq=seq, kind=Message.Kind.TEXT,
                              sender=Message.Sender.ADVISOR, text=text, client_id=client_id, advisor_id=advisor_id,
                              buttons=[], created_at=now))
    return Replied(message, conversation, previous_public_seq, read_moved=read_moved,
                   reach=VisitorReach(email=email or "", online_sockets=online_sockets, last_seen_at=last_seen_at))
