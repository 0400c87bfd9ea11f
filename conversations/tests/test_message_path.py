"""The visitor's message to a live conversation, the hottest write: what it costs in queries, and that the lean
path keeps its guarantees (gapless seq, one item per client_id, the frames it announces)."""
import json
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import services
from conversations.models import Conversation, Message, Visitor
from conversations.tests.conftest import at_once
from livechat import realtime

# The general path: the transaction's begin and end (a savepoint inside a test's transaction), the row lock, the
# repeated-client_id check, the insert, the conversation's update. On PostgreSQL a message to a live conversation
# is one statement (conversations/live_message.py); anything else tries it first, then takes the general path.
GENERAL_PATH_QUERIES = 6


def live_message_queries() -> int:
    return 1 if connection.vendor == "postgresql" else GENERAL_PATH_QUERIES


def other_send_queries() -> int:
    return GENERAL_PATH_QUERIES + (1 if connection.vendor == "postgresql" else 0)


@pytest.fixture
def live_visitor(demo) -> Visitor:
    """A visitor whose conversation alice has answered: live and assigned, no bot in the way."""
    session = services.visitor_session_start(site=demo.sites["shop"])
    services.advisor_message_send(conversation_id=session.conversation.pk, advisor=demo.advisors["alice"],
                                  client_id="alice-1", text="Hello, how can I help?")
    return Visitor.objects.select_related("site", "conversation").get(pk=session.visitor.pk)


@pytest.mark.django_db(transaction=True)  # autocommit, as a server runs it: no savepoint around the statement
def test_a_visitor_message_to_a_live_conversation_costs_one_statement_on_postgresql(live_visitor,
                                                                                   django_assert_max_num_queries):
    services.visitor_message_send(visitor=live_visitor, client_id="warm-up", text="first")
    with django_assert_max_num_queries(live_message_queries()) as captured:
        sent = services.visitor_message_send(visitor=live_visitor, client_id="v-2", text="second")
    assert sent.created and [m.text for m in sent.messages] == ["second"]
    assert Message.objects.get(pk=sent.message.pk).text == "second"
    # and lean ones: joining the site, bot, visitor and advisor rows cost this path a fifth of its time
    assert not [q["sql"] for q in captured.captured_queries if "advisors_" in q["sql"] or "chatbots_" in q["sql"]]


@pytest.mark.django_db(transaction=True)
def test_a_repeated_client_id_answers_the_stored_item_and_stores_nothing(live_visitor, django_assert_max_num_queries):
    first = services.visitor_message_send(visitor=live_visitor, client_id="v-1", text="once")
    count = Message.objects.count()
    with django_assert_max_num_queries(other_send_queries()):
        again = services.visitor_message_send(visitor=live_visitor, client_id="v-1", text="twice")
    assert not again.created and again.message.pk == first.message.pk and again.message.text == "once"
    assert Message.objects.count() == count


@pytest.mark.django_db
def test_the_lean_path_keeps_seq_gapless_and_the_conversation_up_to_date(live_visitor):
    sent = [services.visitor_message_send(visitor=live_visitor, client_id=f"v-{n}", text=f"n{n}") for n in range(3)]
    conversation = Conversation.objects.get(pk=live_visitor.conversation.pk)
    seqs = list(Message.objects.filter(conversation=conversation).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert [s.message.seq for s in sent] == seqs[-3:]
    assert (conversation.last_seq, conversation.last_public_seq, conversation.last_visitor_seq) == (seqs[-1],) * 3
    assert conversation.last_message_id == conversation.last_public_message_id == sent[-1].message.pk
    assert conversation.status == Conversation.Status.LIVE and conversation.unanswered


@pytest.mark.django_db(transaction=True)
def test_a_live_message_announces_itself_on_commit_to_the_visitor_and_once_to_the_whole_site(live_visitor,
                                                                                           monkeypatch):
    sent_events = []  # what would cross the layer, round-tripped through JSON as Redis would carry it
    monkeypatch.setattr(realtime, "send_now",
                        lambda group, event: sent_events.append((group, json.loads(json.dumps(event)))))
    services.visitor_message_send(visitor=live_visitor, client_id="v-1", text="hello")
    conversation = live_visitor.conversation
    # every audience may see a live conversation's text: one event for all the site's inbox sockets, not four
    assert [group for group, _ in sent_events] == [realtime.conversation_group(conversation.pk),
                                                   realtime.site_everyone_group(conversation.site_id)]
    (_, widget_event), (_, inbox_event) = sent_events
    # the inbox frame is serialized once for all the sockets of a group; the widget's event carries the item
    items = [widget_event["message"], json.loads(inbox_event["frame"])["message"]]
    assert json.loads(inbox_event["frame"])["type"] == "message"
    assert all(item["text"] == "hello" and item["client_id"] == "v-1" for item in items)


@pytest.mark.django_db(transaction=True)
def test_a_note_and_a_bot_conversations_item_reach_only_the_audiences_that_may_see_them(demo, live_visitor,
                                                                                       monkeypatch):
    sent_events = []
    monkeypatch.setattr(realtime, "send_now", lambda group, event: sent_events.append(group))
    conversation = live_visitor.conversation
    services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                  client_id="n-1", text="between us", note=True)
    assert sorted(g for g in sent_events if g.startswith("site.")) == sorted(
        realtime.site_inbox_group(conversation.site_id, audience) for audience in ("licensed-human",
                                                                                   "licensed-chatbot"))
    sent_events.clear()
    bot_session = services.visitor_session_start(site=demo.sites["shop"])  # the demo shop's bot leads it
    assert bot_session.conversation.status == Conversation.Status.BOT
    sent_events.clear()
    services.visitor_message_send(visitor=bot_session.visitor, client_id="b-1", text="hi bot")
    site_groups = {g for g in sent_events if g.startswith("site.")}
    assert realtime.site_everyone_group(conversation.site_id) not in site_groups
    assert site_groups <= {realtime.site_inbox_group(conversation.site_id, audience)
                           for audience in ("default-chatbot", "licensed-chatbot")}


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_to_a_live_conversation_keep_seq_gapless_and_each_client_id_once(demo):
    """The one-statement write under real concurrency (PostgreSQL row locks): eight senders, each sending its own
    items, and every item also sent a second time at once by another thread, as a widget's retry racing the
    original: one item per client_id, the repeat answered with it, seq gapless, the counters on the last item."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are what this checks; SQLite serializes every write anyway (CI runs PostgreSQL)")
    session = services.visitor_session_start(site=demo.sites["shop"])
    services.advisor_message_send(conversation_id=session.conversation.pk, advisor=demo.advisors["alice"],
                                  client_id="alice-1", text="Hello")
    services.visitor_message_send(visitor=session.visitor, client_id="first", text="first words")
    visitor = Visitor.objects.get(pk=session.visitor.pk)
    answers = {}

    def sender(n: int) -> None:
        for i in range(10):
            client_id = f"c{(n // 2) * 10 + i}"  # threads 2k and 2k+1 send the same ten client_ids
            sent = services.visitor_message_send(visitor=visitor, client_id=client_id, text=client_id)
            answers.setdefault(client_id, set()).add(sent.message.pk)

    assert at_once(8, sender) == []
    assert len(answers) == 40 and all(len(ids) == 1 for ids in answers.values())  # a repeat got the stored item
    items = list(Message.objects.filter(conversation_id=session.conversation.pk).order_by("seq"))
    assert [m.seq for m in items] == list(range(1, len(items) + 1))
    assert sorted(m.client_id for m in items if m.client_id and m.client_id.startswith("c")) == sorted(answers)
    conversation = Conversation.objects.get(pk=session.conversation.pk)
    assert conversation.last_seq == conversation.last_public_seq == conversation.last_visitor_seq == items[-1].seq
    assert conversation.last_message_id == items[-1].pk


@pytest.mark.django_db(transaction=True)
def test_with_a_message_webhook_the_item_and_its_delivery_are_written_in_one_transaction(live_visitor, settings,
                                                                                      django_assert_max_num_queries):
    """The one statement commits on its own, before any delivery row could join it: a site whose webhook wants
    message.created takes the general path, where the item and its delivery commit together or not at all."""
    from integrations.models import Delivery
    from integrations.tests.conftest import make_webhook

    settings.WEBHOOK_ALLOW_PRIVATE = True
    make_webhook(SimpleNamespace(sites={"shop": live_visitor.site}), "http://127.0.0.1:9/", events=["message.created"])
    services.visitor_message_send(visitor=live_visitor, client_id="warm-up", text="first")
    # the general path's six, the delivery row, then the delivery task's own (eager here) after the commit
    with django_assert_max_num_queries(GENERAL_PATH_QUERIES + 12) as captured:
        sent = services.visitor_message_send(visitor=live_visitor, client_id="v-2", text="second")
    statements = [q["sql"] for q in captured.captured_queries]
    assert not [sql for sql in statements if "WITH conversation AS" in sql]
    begin = next(i for i, sql in enumerate(statements) if "SAVEPOINT" in sql or sql.upper().startswith("BEGIN"))
    item = next(i for i, sql in enumerate(statements) if sql.startswith('INSERT INTO "conversations_message"'))
    delivery = next(i for i, sql in enumerate(statements) if sql.startswith('INSERT INTO "integrations_delivery"'))
    commit = next(i for i, sql in enumerate(statements) if "RELEASE SAVEPOINT" in sql or sql.upper() == "COMMIT")
    assert begin < item < delivery < commit
    assert Delivery.objects.filter(conversation_id=sent.conversation.pk, event="message.created").count() == 2


@pytest.fixture
def walking_visitor(demo) -> Visitor:
    """A visitor the demo bot has just greeted (it asks for a first name)."""
    session = services.visitor_session_start(site=demo.sites["shop"])
    return Visitor.objects.get(pk=session.visitor.pk)


@pytest.mark.django_db(transaction=True)
def test_a_text_to_the_bot_with_the_sockets_hint_is_one_locking_query_and_no_futile_statement(walking_visitor):
    # given a socket that last saw the bot holding the conversation (live_hint=False)
    with CaptureQueriesContext(connection) as captured:
        sent = services.visitor_message_send(visitor=walking_visitor, client_id="w-1", text="Jean", live_hint=False)
    statements = [q["sql"] for q in captured.captured_queries]

    # then the bot answered, and the write neither tried the one statement (it writes nothing for the bot) nor
    # loaded the site, chatbot and visitor apart from the row lock
    assert [m.sender for m in sent.messages] == ["visitor", "bot"] and "Jean" in sent.messages[1].text
    assert not [sql for sql in statements if "WITH conversation AS" in sql]
    reads_of_the_conversation = [sql for sql in statements
                                 if sql.lstrip().startswith("SELECT") and 'FROM "conversations_conversation"' in sql]
    assert len(reads_of_the_conversation) == 1 and "chatbots_chatbot" in reads_of_the_conversation[0]


@pytest.mark.django_db(transaction=True)
def test_a_stale_hint_still_stores_a_live_conversations_text_once_and_in_order(live_visitor):
    # given a socket that missed the conversation going live (it still says the bot has it)
    first = services.visitor_message_send(visitor=live_visitor, client_id="s-1", text="one", live_hint=False)
    second = services.visitor_message_send(visitor=live_visitor, client_id="s-2", text="two", live_hint=False)
    again = services.visitor_message_send(visitor=live_visitor, client_id="s-2", text="two", live_hint=False)

    # then each text is stored once, after the last item, by the general path, as it would have been without it
    conversation = Conversation.objects.get(pk=live_visitor.conversation.pk)
    assert [m.text for m in first.messages + second.messages] == ["one", "two"]
    assert not again.created and again.message.pk == second.message.pk
    assert second.message.seq == first.message.seq + 1 == conversation.last_seq
    assert conversation.status == Conversation.Status.LIVE and conversation.last_visitor_seq == second.message.seq


@pytest.mark.django_db(transaction=True)
def test_a_new_visitors_greeting_reads_nothing_it_just_made(demo):
    from conversations import selectors

    site = selectors.site_for_key("demo-shop")  # as the widget's session request finds it: with its chatbot
    services.visitor_session_start(site=site)  # the bot's flow and the site's webhooks, loaded once per process

    with CaptureQueriesContext(connection) as captured:
        session = services.visitor_session_start(site=site)

    # the bot greeted, and the conversation was not read back: its change number (for the inbox's frame) came
    # back with its UPDATE, and the site, chatbot and visitor the session had just made or found were not loaded
    assert session.created and session.conversation.last_seq == 1
    reads = [q["sql"] for q in captured.captured_queries
             if q["sql"].lstrip().startswith("SELECT") and 'FROM "conversations_conversation"' in q["sql"]]
    assert reads == [] and not any("chatbots_chatbot" in q["sql"] for q in captured.captured_queries)
    assert session.conversation.change == Conversation.objects.get(pk=session.conversation.pk).change > 0


@pytest.mark.django_db(transaction=True)
def test_the_one_statement_is_prepared_once_per_connection_and_logged_with_its_values(live_visitor):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    def runs_prepared() -> int:
        """How often this connection ran the one statement as a prepared statement (the pool's connections live
        on from test to test, so it may have been prepared before)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
            return sum(runs for statement, runs in cursor.fetchall()
                       if "INSERT INTO conversations_message" in statement)

    # when the visitor writes more often than psycopg's threshold for preparing a statement, on one connection
    threshold = connection.settings_dict["OPTIONS"]["prepare_threshold"]
    with connection.cursor():  # one connection for the whole test (autocommit: each write commits on its own)
        before = runs_prepared()
        with CaptureQueriesContext(connection) as captured:
            for n in range(threshold + 3):
                assert services.visitor_message_send(visitor=live_visitor, client_id=f"p-{n}", text=f"n{n}").created
        after = runs_prepared()

    # then PostgreSQL holds it as a prepared statement, run by name past the threshold: parsed and planned once
    assert after - before >= 3
    # and the log of queries (DEBUG, tests) still shows each with its values, as Django's own cursors do
    logged = [q["sql"] for q in captured.captured_queries if "INSERT INTO conversations_message" in q["sql"]]
    assert len(logged) == threshold + 3 and "'n4'" in logged[4]
    # and every item stored, in order
    texts = list(Message.objects.filter(conversation=live_visitor.conversation, client_id__startswith="p-")
                 .order_by("seq").values_list("text", flat=True))
    assert texts == [f"n{n}" for n in range(threshold + 3)]
