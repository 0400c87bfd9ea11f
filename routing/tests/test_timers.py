"""The timers: the handoff timeout (a countdown task per escalation) and idle close (Celery beat), each doing
nothing when the conversation moved on, each idempotent; the handoff through a real Celery worker too."""
import time
from datetime import timedelta

import pytest

from conversations import services
from conversations.models import Conversation
from conversations.presenters import timestamp
from conversations.selectors import messages_for_visitor
from conversations.tests.conftest import escalated, new_id
from conversations.tests.test_notifications import celery_worker_process  # noqa: F401 (fixture)
from routing.services import conversation_idle_close_due, handoff_expire, site_routing_update
from routing.tasks import idle_close_sweep


def away_count(conversation) -> int:
    return conversation.messages.filter(sender="bot", input__variable="EMAIL").count()


@pytest.mark.django_db
def test_the_handoff_timeout_sends_the_away_message_once_per_escalation(demo):
    conversation = escalated()  # manual and open: it waits for the team
    assert away_count(conversation) == 0
    key = timestamp(conversation.waiting_since)
    assert handoff_expire(conversation_id=conversation.pk, waiting_since=key) is True
    assert handoff_expire(conversation_id=conversation.pk, waiting_since=key) is False  # a redelivery
    conversation.refresh_from_db()
    assert away_count(conversation) == 1 and conversation.awaiting_email and conversation.assigned_id is None
    # once the visitor gave an address, a late redelivery still sends nothing and changes nothing
    services.visitor_message_send(visitor=conversation.visitor, client_id=new_id(), text="jean@acme.example")
    change = Conversation.objects.get(pk=conversation.pk).change
    assert handoff_expire(conversation_id=conversation.pk, waiting_since=key) is False
    assert away_count(conversation) == 1 and Conversation.objects.get(pk=conversation.pk).change == change


@pytest.mark.django_db
def test_the_handoff_timeout_does_nothing_once_the_conversation_moved_on(demo):
    taken, closed, answered = escalated(), escalated(first_name="Paul"), escalated(first_name="Zoe")
    keys = {c.pk: timestamp(c.waiting_since) for c in (taken, closed, answered)}
    services.conversation_take(conversation_id=taken.pk, advisor=demo.advisors["bob"])
    services.conversation_close(conversation_id=closed.pk, advisor=demo.advisors["bob"])
    services.advisor_message_send(conversation_id=answered.pk, advisor=demo.advisors["alice"], client_id=new_id(),
                                  text="Hello!")
    for conversation_id, key in keys.items():
        assert handoff_expire(conversation_id=conversation_id, waiting_since=key) is False
    assert not Conversation.objects.filter(messages__input__variable="EMAIL").exists()


@pytest.mark.django_db
def test_the_handoff_timeout_of_a_conversation_deleted_meanwhile_does_nothing(demo):
    conversation = escalated()
    key = timestamp(conversation.waiting_since)
    conversation.visitor.delete()  # as the visitor's erasure does, with the conversation
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert handoff_expire(conversation_id=conversation.pk, waiting_since=key) is False


@pytest.mark.django_db
def test_idle_close_closes_silent_live_conversations_once_and_the_visitor_sees_it(demo):
    site_routing_update(site=demo.sites["shop"], idle_close_min=30)
    silent, active, blog = escalated(), escalated(first_name="Paul"), escalated("demo-blog")
    past = silent.updated_at - timedelta(minutes=31)
    Conversation.objects.filter(pk__in=[silent.pk, blog.pk]).update(updated_at=past)
    assert idle_close_sweep.delay().get() == 1  # the blog has no idle close; the active one is not idle
    silent.refresh_from_db()
    assert silent.status == "closed" and silent.closed_at is not None
    last = messages_for_visitor(conversation_id=silent.pk, after=0, limit=100)[-1]
    assert (last.kind, last.text) == ("event", "Closed after 30 minutes without activity")
    assert Conversation.objects.get(pk=active.pk).status == "live"
    assert Conversation.objects.get(pk=blog.pk).status == "live"
    assert conversation_idle_close_due() == []  # a second run: nothing more


@pytest.mark.django_db
def test_idle_close_leaves_a_conversation_that_moved_on_after_it_was_listed(demo):
    site_routing_update(site=demo.sites["shop"], idle_close_min=30)
    conversation = escalated()
    # given a conversation the sweep listed as idle ...
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=conversation.updated_at - timedelta(minutes=31))
    # ... where the visitor writes before the sweep reaches it
    services.visitor_message_send(visitor=conversation.visitor, client_id=new_id(), text="still here")
    # then the close, checked again under the row lock, leaves it open
    services.conversation_close(conversation_id=conversation.pk, advisor=None, idle_min=30)
    assert Conversation.objects.get(pk=conversation.pk).status == "live"


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_away_message_to_the_escalation_nobody_took_and_nothing_to_the_taken_one(
        demo, celery_worker_process):  # noqa: F811
    site_routing_update(site=demo.sites["shop"], handoff_timeout_s=2)
    left_alone, taken = escalated(), escalated(first_name="Paul")
    services.conversation_take(conversation_id=taken.pk, advisor=demo.advisors["alice"])
    deadline = time.monotonic() + 90
    while away_count(left_alone) == 0 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert away_count(left_alone) == 1, celery_worker_process[1].read_text()[-3000:]
    time.sleep(2)  # the taken one's timer ran at the same time (same countdown)
    assert away_count(taken) == 0
    assert away_count(left_alone) == 1
    assert "routing.tasks.handoff_expire" in celery_worker_process[1].read_text()


@pytest.mark.django_db(transaction=True)
async def test_the_team_sees_the_conversation_marked_as_waiting_for_an_email_reply(demo, tokens):
    from asgiref.sync import sync_to_async

    from conversations.tests.conftest import inbox_socket

    conversation = await sync_to_async(escalated)()
    alice = await inbox_socket(tokens["alice"])
    await sync_to_async(handoff_expire)(conversation_id=conversation.pk,
                                        waiting_since=timestamp(conversation.waiting_since))
    frame = await alice.wait_for(lambda f: f["type"] == "conversation" and f["conversation"]["awaiting_email"])
    assert frame["conversation"]["status"] == "live" and frame["conversation"]["assigned"] is None
    await alice.disconnect()
