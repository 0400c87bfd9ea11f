"""An advisor's plain reply to a conversation already answered, the advisors' commonest write: one statement on
PostgreSQL (conversations/live_message.py) that leaves exactly what the general path leaves, and the general path
for everything else (a note, an image, a first reply, a repeat, a closed conversation, a site whose webhook wants
message.created)."""
import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from advisors.models import Advisor
from conversations import selectors, services
from conversations.errors import Conflict
from conversations.models import Conversation, Message, ReadState, Visitor
from conversations.tests.conftest import at_once, escalated, new_id
from livechat import realtime


def reply(demo, conversation: Conversation, text: str, *, advisor: str = "alice", one_statement: bool = True,
          client_id: str | None = None, **options) -> services.Sent:
    """As the inbox API sends it: with the row its access check loaded, which lets a plain reply take the one
    statement. Without it (`one_statement=False`), the general path, as before that statement existed."""
    return services.advisor_message_send(
        conversation_id=conversation.pk, advisor=demo.advisors[advisor], client_id=client_id or new_id(),
        text=text, checked=checked(demo, conversation, advisor) if one_statement else None, **options)


def checked(demo, conversation: Conversation, advisor: str = "alice") -> Conversation:
    """The row the inbox API's access check loads before a write."""
    return selectors.access_conversation(advisor=selectors.advisor_for_user(demo.advisors[advisor].user),
                                         conversation_id=conversation.pk, for_write=True)


def answered(demo, first_name: str = "Jean") -> Conversation:
    """Escalated, and answered once by alice (her first reply joins it and sets the figures)."""
    conversation = escalated(first_name=first_name)
    reply(demo, conversation, "Hello, how can I help?")
    return Conversation.objects.get(pk=conversation.pk)


def the_one_statement(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "WITH conversation AS" in q["sql"]]


@pytest.mark.django_db(transaction=True)  # autocommit, as a server runs it: no savepoint around the statement
def test_a_reply_to_an_answered_conversation_costs_one_statement_on_postgresql(demo, django_assert_max_num_queries):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no data-modifying WITH: every reply takes the general path there")
    conversation = answered(demo)
    row = checked(demo, conversation)
    with django_assert_max_num_queries(1) as captured:
        sent = services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                             client_id=new_id(), text="Our plans start at 29 €/month.", checked=row)
    assert sent.created and the_one_statement(captured)
    stored = Message.objects.select_related("advisor").get(pk=sent.message.pk)
    assert (stored.text, stored.sender, stored.kind, stored.advisor.username, stored.seq) == (
        "Our plans start at 29 €/month.", "advisor", "text", "alice", sent.message.seq)


def _counts(demo) -> dict[str, dict[str, int]]:
    return {name: selectors.conversation_counts(advisor=selectors.advisor_for_user(demo.advisors[name].user))
            for name in ("alice", "bob")}


def _outcome(demo, conversation: Conversation, message: Message) -> dict:
    """What a reply leaves behind, in terms that do not depend on which conversation it was."""
    conversation = Conversation.objects.get(pk=conversation.pk)
    reads = {read.advisor.username: (read.seq == conversation.last_seq, read.live_caught_up,
                                     read.live_caught_up_public)
             for read in ReadState.objects.filter(conversation=conversation).select_related("advisor__user")}
    stored = Message.objects.get(pk=message.pk)
    return {
        "seq": (conversation.last_seq, conversation.last_public_seq, conversation.last_advisor_seq, stored.seq),
        "last items": (conversation.last_message_id, conversation.last_public_message_id) == (stored.pk,) * 2,
        "state": (conversation.status, conversation.assigned.username, conversation.waiting_since,
                  conversation.unanswered, conversation.first_reply_at is not None),
        "item": (stored.kind, stored.sender, stored.advisor_id, stored.text, stored.buttons, stored.image.name),
        "reads": reads,
    }


@pytest.mark.django_db(transaction=True)
def test_the_one_statement_leaves_what_the_general_path_leaves(demo):
    """Two conversations, the same story: a visitor's question, bob reading it, alice replying; one reply by the one
    statement, the other by the general path. Counters, read positions (and the trigger-kept copies the unread
    counts come from), the advisor's activity, the inbox's counts: the same."""
    outcomes, activity, counts = [], [], []
    for name, one_statement in (("Jean", True), ("Paul", False)):
        conversation = answered(demo, first_name=name)
        visitor = Visitor.objects.get(pk=conversation.visitor_id)
        question = services.visitor_message_send(visitor=visitor, client_id=new_id(), text="And the price?")
        services.conversation_read(conversation_id=conversation.pk, advisor=demo.advisors["bob"],
                                   seq=question.message.seq)
        before = Advisor.objects.get(pk=demo.advisors["alice"].pk)
        change_before = Conversation.objects.get(pk=conversation.pk).change
        read_change_before = ReadState.objects.get(conversation=conversation, advisor=demo.advisors["alice"]).change
        counts_before = _counts(demo)
        with CaptureQueriesContext(connection) as captured:
            sent = reply(demo, conversation, "29 €/month.", one_statement=one_statement)
        assert bool(the_one_statement(captured)) == (one_statement and connection.vendor == "postgresql")
        after = Advisor.objects.get(pk=demo.advisors["alice"].pk)
        counts.append({name: {key: value - counts_before[name][key] for key, value in moved.items() if value
                              != counts_before[name][key]} for name, moved in _counts(demo).items()})
        outcome = _outcome(demo, conversation, sent.message)
        outcome["change moved"] = Conversation.objects.get(pk=conversation.pk).change > change_before
        # a resume finds the replier's read position by its own change number
        outcome["read change moved"] = ReadState.objects.get(
            conversation=conversation, advisor=demo.advisors["alice"]).change > read_change_before
        outcome["times follow seq"] = (Message.objects.get(pk=sent.message.pk).created_at
                                       >= Message.objects.get(conversation=conversation,
                                                              seq=sent.message.seq - 1).created_at)
        outcomes.append(outcome)
        activity.append((after.message_count - before.message_count, after.last_activity_at > before.last_activity_at))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0]["reads"] == {"alice": (True, True, True), "bob": (False, False, False)}
    assert outcomes[0]["change moved"] and outcomes[0]["read change moved"] and outcomes[0]["times follow seq"]
    assert activity == [(1, True), (1, True)]
    # alice's reply reads the question for her; bob has not read the reply
    assert counts == [{"alice": {"unread": -1, "to_process": -1}, "bob": {"unread": 1}}] * 2


@pytest.mark.django_db(transaction=True)
def test_the_one_statement_announces_what_the_general_path_announces(demo, monkeypatch):
    """The item to the visitor and once to the whole site, the replier's read position to the replier's sockets;
    no CONV (nothing about the conversation but its last item changed)."""
    announced = {}
    monkeypatch.setattr(realtime, "send_now", lambda group, event: None)
    for name, one_statement in (("Jean", True), ("Paul", False)):
        conversation = answered(demo, first_name=name)
        events = announced[one_statement] = []
        monkeypatch.setattr(realtime, "send_now",
                            lambda group, event, events=events: events.append((group, json.loads(json.dumps(event)))))
        with CaptureQueriesContext(connection) as captured:
            reply(demo, conversation, "29 €/month.", one_statement=one_statement)
        assert bool(the_one_statement(captured)) == (one_statement and connection.vendor == "postgresql")
        groups = [realtime.conversation_group(conversation.pk), realtime.site_everyone_group(conversation.site_id),
                  realtime.advisor_group(demo.advisors["alice"].pk)]
        assert sorted(group for group, _ in events) == sorted(groups)
        (widget,) = [event for group, event in events if group == groups[0]]
        (inbox,) = [event for group, event in events if group == groups[1]]
        (read,) = [event for group, event in events if group == groups[2]]
        item = json.loads(inbox["frame"])["message"]
        assert widget["message"] == item and item["text"] == "29 €/month." and item["advisor"]["name"] == "Alice"
        assert (read["type"], read["conversation"], read["read_seq"]) == ("inbox.read", conversation.pk, item["seq"])
        assert widget["previous"] == item["seq"] - 1
        monkeypatch.setattr(realtime, "send_now", lambda group, event: None)
    shape = {key: [(group.split(".")[0], event["type"]) for group, event in events]
             for key, events in announced.items()}
    assert shape[True] == shape[False]


@pytest.mark.django_db(transaction=True)
def test_anything_but_a_plain_reply_to_an_answered_conversation_takes_the_general_path(demo):
    """Each of these needs what the general path does (a join, a note's audience, a reopening's refusal, the
    stored item of a repeat); the statement, tried first where it could apply, writes nothing for them."""
    first = escalated()
    count_before = Advisor.objects.get(pk=demo.advisors["alice"].pk).message_count
    with CaptureQueriesContext(connection) as captured:
        joined = reply(demo, first, "Hello!")  # the first reply: joins, and sets the figures
    assert not the_one_statement(captured)  # the access check's row said so: not even tried
    assert Advisor.objects.get(pk=demo.advisors["alice"].pk).message_count == count_before + 1
    assert [m.kind for m in joined.messages] == ["event", "text"]  # "Alice joined the conversation", the reply
    conversation = Conversation.objects.get(pk=first.pk)
    assert conversation.assigned_id == demo.advisors["alice"].pk and conversation.first_reply_at is not None

    note = reply(demo, conversation, "VIP customer", note=True)
    assert note.message.kind == "note"

    repeated_id = new_id()
    once = reply(demo, conversation, "Once.", client_id=repeated_id)
    again = reply(demo, conversation, "Twice.", client_id=repeated_id)
    assert not again.created and again.message.pk == once.message.pk and again.message.text == "Once."
    visitor_item = services.visitor_message_send(visitor=Visitor.objects.get(pk=conversation.visitor_id),
                                                 client_id="the-visitor's", text="Thanks")
    with pytest.raises(Conflict):  # a client_id that names the visitor's item reveals nothing, as before
        reply(demo, conversation, "Hm.", client_id="the-visitor's")
    assert Message.objects.filter(conversation=conversation, client_id="the-visitor's").get().pk \
        == visitor_item.message.pk

    services.conversation_close(conversation_id=conversation.pk, advisor=demo.advisors["alice"])
    count = Message.objects.filter(conversation=conversation).count()
    with pytest.raises(Conflict):
        reply(demo, conversation, "Still there?")
    assert Message.objects.filter(conversation=conversation).count() == count


@pytest.mark.django_db(transaction=True)
def test_with_a_message_webhook_a_reply_and_its_delivery_are_written_in_one_transaction(demo, settings):
    """As for the visitor's: the one statement commits on its own, so a site whose webhook wants message.created
    takes the general path, where the item and its delivery commit together."""
    from integrations.models import Delivery
    from integrations.tests.conftest import make_webhook

    settings.WEBHOOK_ALLOW_PRIVATE = True
    conversation = answered(demo)
    make_webhook(SimpleNamespace(sites={"shop": demo.sites["shop"]}), "http://127.0.0.1:9/",
                 events=["message.created"])
    with CaptureQueriesContext(connection) as captured:
        sent = reply(demo, conversation, "29 €/month.")
    assert not the_one_statement(captured)
    [delivery] = Delivery.objects.filter(conversation_id=conversation.pk, event="message.created")
    assert json.loads(delivery.body)["data"]["message"]["id"] == sent.message.pk


@pytest.mark.django_db
def test_a_reply_by_the_one_statement_to_a_visitor_who_left_is_emailed(demo, django_capture_on_commit_callbacks):
    """The statement reads the visitor's e-mail and presence itself: routing still e-mails the reply."""
    conversation = answered(demo)
    visitor = Visitor.objects.get(pk=conversation.visitor_id)
    Visitor.objects.filter(pk=visitor.pk).update(online_sockets=0, last_seen_at=visitor.last_seen_at
                                                 - timedelta(seconds=61),
                                                 variables={**visitor.variables, "EMAIL": "jean@acme.example"})
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as captured:
        reply(demo, conversation, "Our plans start at 29 €/month.")
    assert the_one_statement(captured) or connection.vendor != "postgresql"
    [message] = mail.outbox
    assert message.to == ["jean@acme.example"] and "Alice: Our plans start at 29 €/month." in message.body
    Visitor.objects.filter(pk=visitor.pk).update(online_sockets=1)  # back on the page: no e-mail
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        reply(demo, conversation, "Anything else?")
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_replies_and_visitor_messages_at_once_keep_seq_gapless_and_each_item_once(demo):
    """Both one-statement writes under real concurrency (PostgreSQL row locks): four visitor threads and four
    replying threads (alice and bob), each item also sent twice at once as a retry would be."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are what this checks; SQLite serializes every write anyway (CI runs PostgreSQL)")
    conversation = answered(demo)
    visitor = Visitor.objects.get(pk=conversation.visitor_id)
    services.visitor_message_send(visitor=visitor, client_id="first", text="first words")
    answers = {}
    counts_before = {name: Advisor.objects.get(pk=demo.advisors[name].pk).message_count for name in ("alice", "bob")}

    def sender(n: int) -> None:
        for i in range(10):
            client_id = f"c{n // 2}-{i}"  # threads 2k and 2k+1 send the same ten client_ids
            if n < 4:
                sent = services.visitor_message_send(visitor=visitor, client_id=client_id, text=client_id)
            else:
                sent = reply(demo, conversation, client_id, advisor="alice" if n < 6 else "bob", client_id=client_id)
            answers.setdefault(client_id, set()).add(sent.message.pk)

    assert at_once(8, sender) == []
    assert len(answers) == 40 and all(len(ids) == 1 for ids in answers.values())
    items = list(Message.objects.filter(conversation=conversation).order_by("seq"))
    assert [m.seq for m in items] == list(range(1, len(items) + 1))
    stored = Conversation.objects.get(pk=conversation.pk)
    assert stored.last_seq == stored.last_public_seq == items[-1].seq and stored.last_message_id == items[-1].pk
    assert stored.last_advisor_seq == max(m.seq for m in items if m.sender == "advisor")
    assert stored.last_visitor_seq == max(m.seq for m in items if m.sender == "visitor")
    for name in ("alice", "bob"):
        read = ReadState.objects.get(conversation=conversation, advisor=demo.advisors[name])
        own = max(m.seq for m in items if m.advisor_id == demo.advisors[name].pk)
        assert read.seq == own and read.live_caught_up == (own == stored.last_seq)
        # each of the advisor's ten client_ids stored once and counted once, its repeat answered, not counted
        assert Advisor.objects.get(pk=demo.advisors[name].pk).message_count == counts_before[name] + 10
    assert [m.created_at for m in items] == sorted(m.created_at for m in items)  # times follow seq


@pytest.mark.django_db(transaction=True)
def test_the_statement_decides_again_under_the_lock_whatever_the_access_check_saw(demo):
    """The access check's row may be stale by the time the reply is written: a close, or a new call for a human,
    in between. The statement's own conditions (not the row's) then write nothing, and the general path decides."""
    conversation = answered(demo)
    stale = checked(demo, conversation)
    services.conversation_close(conversation_id=conversation.pk, advisor=demo.advisors["alice"])
    count = Message.objects.filter(conversation=conversation).count()
    with pytest.raises(Conflict):  # closed: reopen to reply
        services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                      client_id=new_id(), text="Still there?", checked=stale)
    assert Message.objects.filter(conversation=conversation).count() == count

    waiting = answered(demo, first_name="Paul")
    stale = checked(demo, waiting)
    Conversation.objects.filter(pk=waiting.pk).update(waiting_since=waiting.updated_at)  # a wait began meanwhile
    sent = services.advisor_message_send(conversation_id=waiting.pk, advisor=demo.advisors["alice"],
                                         client_id=new_id(), text="Here I am.", checked=stale)
    assert sent.created and Conversation.objects.get(pk=waiting.pk).waiting_since is None  # the general path's


@pytest.mark.django_db
def test_a_checked_row_of_another_conversation_is_not_trusted(demo):
    """`checked` must be the row of the conversation written to; another one's (a caller's mistake) never decides
    the webhook question or the statement: the general path writes the reply."""
    conversation, other = answered(demo), answered(demo, first_name="Paul")
    with CaptureQueriesContext(connection) as captured:
        sent = services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                             client_id=new_id(), text="Hello again.", checked=checked(demo, other))
    assert sent.created and sent.message.conversation_id == conversation.pk
    assert not the_one_statement(captured)
