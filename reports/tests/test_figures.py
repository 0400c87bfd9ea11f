"""The stored figures of each escalation, on hand-made timelines through the real services."""
import pytest

from conversations import services
from conversations.models import Conversation, Visitor
from conversations.tests.conftest import new_id
from reports.models import Episode
from reports.tests.conftest import reply, utc, visitor_escalates

pytestmark = pytest.mark.django_db


def test_an_escalation_keeps_its_moments_on_the_conversation_and_its_episode(demo, clock):
    alice = demo.advisors["alice"]
    conversation, _ = visitor_escalates()
    clock.after(60)
    services.conversation_take(conversation_id=conversation.pk, advisor=alice)
    clock.after(30)
    reply(conversation, alice)
    clock.after(5)
    reply(conversation, alice, "and again")  # not the first reply any more
    clock.after(505)
    services.conversation_close(conversation_id=conversation.pk, advisor=alice)

    conversation.refresh_from_db()
    episode = Episode.objects.get(conversation=conversation)
    assert (conversation.escalated_at, conversation.assigned_at) == (utc(2026, 11, 24, 10, 0), utc(2026, 11, 24, 10, 1))
    assert conversation.first_reply_at == utc(2026, 11, 24, 10, 1, 30)
    assert (episode.escalated_at, episode.assigned_at, episode.first_reply_at, episode.closed_at) == (
        utc(2026, 11, 24, 10, 0), utc(2026, 11, 24, 10, 1), utc(2026, 11, 24, 10, 1, 30), utc(2026, 11, 24, 10, 10))
    assert episode.advisor == alice and episode.first_reply_by == alice and episode.site == demo.sites["shop"]


def test_a_reopening_undoes_the_close_and_the_episode_goes_on_to_the_last_close(demo, clock):
    alice = demo.advisors["alice"]
    conversation, _ = visitor_escalates()
    reply(conversation, alice)  # a reply assigns: waiting and first response are 0
    clock.after(600)
    services.conversation_close(conversation_id=conversation.pk, advisor=alice)
    assert Episode.objects.get(conversation=conversation).closed_at == utc(2026, 11, 24, 10, 10)
    clock.after(100)
    services.conversation_reopen(conversation_id=conversation.pk, advisor=alice)
    assert Episode.objects.get(conversation=conversation).closed_at is None
    clock.after(300)
    services.conversation_close(conversation_id=conversation.pk, advisor=alice)

    episode = Episode.objects.get(conversation=conversation)
    assert episode.closed_at == utc(2026, 11, 24, 10, 16, 40)
    assert episode.assigned_at == episode.first_reply_at == episode.escalated_at


def test_a_visitor_who_comes_back_after_a_close_starts_a_new_episode(demo, clock):
    alice = demo.advisors["alice"]
    conversation, _ = visitor_escalates()
    reply(conversation, alice)
    services.conversation_close(conversation_id=conversation.pk, advisor=alice)
    clock.after(86400)
    visitor = Visitor.objects.get(pk=conversation.visitor_id)
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="me again")  # back to the bot
    conversation.refresh_from_db()
    assert conversation.status == "bot" and conversation.escalated_at is None
    menu = conversation.messages.exclude(buttons=[]).last()
    human = next(b["id"] for b in menu.buttons if b["label"] == "Talk to a human")
    services.visitor_button_press(visitor=visitor, client_id=new_id(), button=human)

    first, second = Episode.objects.filter(conversation=conversation).order_by("id")
    assert first.closed_at == utc(2026, 11, 24, 10, 0)
    assert second.escalated_at == utc(2026, 11, 25, 10, 0) and second.assigned_at is None
    assert second.first_reply_at is None and second.closed_at is None


def test_back_to_the_bot_ends_an_episode_without_a_close(demo, clock):
    conversation, _ = visitor_escalates()
    clock.after(30)
    services.visitor_back_to_bot(visitor=Visitor.objects.get(pk=conversation.visitor_id), client_id=new_id())

    episode = Episode.objects.get(conversation=conversation)
    assert episode.closed_at is None and episode.first_reply_at is None
    conversation.refresh_from_db()
    assert conversation.escalated_at is None


def test_an_advisor_taking_over_from_the_bot_is_an_escalation_taken_at_once(demo, clock):
    admin = demo.advisors["admin"]  # sees the chatbot's conversations
    from conversations.tests.conftest import start_session

    visitor = Visitor.objects.get(pk=start_session()["visitor"]["id"])
    conversation = Conversation.objects.get(visitor=visitor)
    clock.after(10)
    reply(conversation, admin, "Can I help?")

    episode = Episode.objects.get(conversation=conversation)
    assert episode.escalated_at == episode.assigned_at == episode.first_reply_at == utc(2026, 11, 24, 10, 0, 10)
    assert episode.advisor == admin == episode.first_reply_by


def test_a_live_chat_only_visitor_calls_for_a_human_with_their_first_words_not_a_visit(demo, clock):
    from conversations.tests.conftest import start_session

    site = demo.sites["blog"]
    site.livechat_only = True
    site.save()
    visitor = Visitor.objects.get(pk=start_session("demo-blog")["visitor"]["id"])
    assert not Episode.objects.filter(conversation__visitor=visitor).exists()
    clock.after(120)
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="Hello?")
    clock.after(10)
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="Anyone?")

    episode = Episode.objects.get(conversation__visitor=visitor)
    assert episode.escalated_at == utc(2026, 11, 24, 10, 2)


def test_a_note_is_not_a_reply_and_reassigning_keeps_the_first_assignment(demo, clock):
    alice, bob = demo.advisors["alice"], demo.advisors["bob"]
    conversation, _ = visitor_escalates()
    clock.after(20)
    services.conversation_assign(conversation_id=conversation.pk, by=alice, username="alice")
    clock.after(20)
    services.advisor_message_send(conversation_id=conversation.pk, advisor=alice, client_id=new_id(), text="n",
                                  note=True)
    clock.after(20)
    services.conversation_assign(conversation_id=conversation.pk, by=alice, username="bob")
    clock.after(20)
    reply(conversation, bob)

    episode = Episode.objects.get(conversation=conversation)
    assert episode.assigned_at == utc(2026, 11, 24, 10, 0, 20)
    assert episode.first_reply_at == utc(2026, 11, 24, 10, 1, 20) and episode.first_reply_by == bob
    assert episode.advisor == bob
