"""`unread` and `unanswered` on CONV: advisors' states, which a conversation the bot is answering does not have."""
import pytest

from conversations import services
from conversations.models import Conversation, Visitor
from conversations.tests.conftest import new_id
from conversations.tests.test_inbox_counts import escalated, start_session

CONVERSATIONS = "/api/inbox/conversations"

pytestmark = pytest.mark.django_db


def listed(client, box: str, conversation_id: int, **params) -> dict | None:
    results = client.get(CONVERSATIONS, {"box": box, **params}).json()["results"]
    return next((c for c in results if c["id"] == conversation_id), None)


def test_a_conversation_the_bot_answers_is_neither_unread_nor_unanswered(demo, api_as):
    # given a visitor talking with the bot
    session = start_session()
    visitor = Visitor.objects.get(pk=session["visitor"]["id"])
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="Jean")
    conversation = Conversation.objects.get(visitor=visitor)

    # then the chatbot box shows it as answered and nothing to read, to every advisor who sees it
    for username in ("alice", "admin"):
        row = listed(api_as(username), "chatbot", conversation.pk)
        assert row is not None
        assert row["unanswered"] is False and row["unread"] is False, row
        detail = api_as(username).get(f"{CONVERSATIONS}/{conversation.pk}").json()
        assert detail["unanswered"] is False and detail["unread"] is False, detail
        assert listed(api_as(username), "chatbot", conversation.pk, filter="unread") is None


def test_an_escalated_conversation_is_unread_and_unanswered_until_an_advisor_reads_and_replies(demo, api_as):
    conversation = escalated()
    alice = api_as("alice")

    row = listed(alice, "live", conversation.pk)
    assert row["unanswered"] is True and row["unread"] is True
    assert listed(alice, "live", conversation.pk, filter="unread") is not None

    reply = alice.post(f"{CONVERSATIONS}/{conversation.pk}/messages", {"client_id": new_id(), "text": "Hello"},
                       format="json")
    assert reply.status_code == 201, reply.content
    alice.post(f"{CONVERSATIONS}/{conversation.pk}/read", {"seq": reply.json()["message"]["seq"]}, format="json")
    row = listed(alice, "live", conversation.pk)
    assert row["unanswered"] is False and row["unread"] is False
