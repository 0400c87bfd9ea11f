"""The visitor's message to a live conversation, the hottest write: what it costs in queries, and that the lean
path keeps its guarantees (gapless seq, one item per client_id, the frames it announces)."""
import json

import pytest

from conversations import services
from conversations.models import Conversation, Message, Visitor
from livechat import realtime

# the transaction's begin and end (a savepoint inside a test's transaction), the row lock, the repeated-client_id
# check, the insert, the conversation's update
LIVE_MESSAGE_QUERIES = 6


@pytest.fixture
def live_visitor(demo) -> Visitor:
    """A visitor whose conversation alice has answered: live and assigned, no bot in the way."""
    session = services.visitor_session_start(site=demo.sites["shop"])
    services.advisor_message_send(conversation_id=session.conversation.pk, advisor=demo.advisors["alice"],
                                  client_id="alice-1", text="Hello, how can I help?")
    return Visitor.objects.select_related("site", "conversation").get(pk=session.visitor.pk)


@pytest.mark.django_db
def test_a_visitor_message_to_a_live_conversation_costs_six_queries(live_visitor, django_assert_max_num_queries):
    services.visitor_message_send(visitor=live_visitor, client_id="warm-up", text="first")
    with django_assert_max_num_queries(LIVE_MESSAGE_QUERIES) as captured:
        sent = services.visitor_message_send(visitor=live_visitor, client_id="v-2", text="second")
    assert sent.created and [m.text for m in sent.messages] == ["second"]
    # and lean ones: joining the site, bot, visitor and advisor rows cost this path a fifth of its time
    assert not [q["sql"] for q in captured.captured_queries if " JOIN " in q["sql"]]


@pytest.mark.django_db
def test_a_repeated_client_id_answers_the_stored_item_and_stores_nothing(live_visitor, django_assert_max_num_queries):
    first = services.visitor_message_send(visitor=live_visitor, client_id="v-1", text="once")
    count = Message.objects.count()
    with django_assert_max_num_queries(LIVE_MESSAGE_QUERIES):
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
def test_a_live_message_announces_itself_on_commit_to_the_visitor_and_every_audience_once(live_visitor,
                                                                                        monkeypatch):
    sent_events = []  # what would cross the layer, round-tripped through JSON as Redis would carry it
    monkeypatch.setattr(realtime, "send_now",
                        lambda group, event: sent_events.append((group, json.loads(json.dumps(event)))))
    services.visitor_message_send(visitor=live_visitor, client_id="v-1", text="hello")
    groups = [group for group, _ in sent_events]
    conversation = live_visitor.conversation
    assert groups[0] == realtime.conversation_group(conversation.pk)
    assert sorted(groups[1:]) == sorted(realtime.site_inbox_group(conversation.site_id, audience)
                                        for audience in ("default-human", "default-chatbot", "licensed-human",
                                                         "licensed-chatbot"))
    widget_event, *inbox_events = [event for _, event in sent_events]
    # the inbox frame is serialized once for all the sockets of a group; the widget's event carries the item
    items = [widget_event["message"]] + [json.loads(event["frame"])["message"] for event in inbox_events]
    assert all(json.loads(event["frame"])["type"] == "message" for event in inbox_events)
    assert all(item["text"] == "hello" and item["client_id"] == "v-1" for item in items)
