"""client_id is unique per conversation and sender (CONTRACT section 3): a repeat answers the sender's own item; one
that names another sender's item, or a note for someone who may not see notes, is a conflict that reveals nothing."""
import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from advisors.services import license_revoke
from conversations.models import Conversation, Message, Visitor
from conversations.tests.conftest import ORIGIN, escalated, new_id, widget_socket
from conversations.tests.test_api import CONVERSATIONS
from conversations.tests.test_images import png

pytestmark = pytest.mark.django_db


def _note(api_as, conversation, client_id="note-1", text="secret plan", username="alice"):
    response = api_as(username).post(f"{CONVERSATIONS}/{conversation.pk}/messages",
                                     {"client_id": client_id, "text": text, "kind": "note"}, format="json")
    assert response.status_code == 201
    return response.json()["message"]


def _widget_token(conversation: Conversation) -> str:
    """A fresh token for the conversation's visitor (only hashes are stored), set through the model."""
    from conversations.services import token_hash

    token = new_id()
    Visitor.objects.filter(pk=conversation.visitor_id).update(token_hash=token_hash(token))
    return token


def test_visitor_upload_with_the_client_id_of_a_note_is_a_conflict_that_reveals_nothing(demo, api_as, settings,
                                                                                           tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    conversation = escalated()
    _note(api_as, conversation)
    token = _widget_token(conversation)
    count = Message.objects.count()
    response = APIClient().post("/api/widget/images",
                                {"image": SimpleUploadedFile("a.png", png(), "image/png"), "client_id": "note-1"},
                                HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    body = response.content.decode()
    assert "secret plan" not in body and "alice" not in body and "note" not in response.json()
    assert Message.objects.count() == count


def test_visitor_repeating_an_advisors_reply_client_id_is_a_conflict_too(demo, api_as, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    conversation = escalated()
    reply = api_as("alice").post(f"{CONVERSATIONS}/{conversation.pk}/messages",
                                 {"client_id": "reply-1", "text": "Hello"}, format="json")
    assert reply.status_code == 201
    response = APIClient().post("/api/widget/images",
                                {"image": SimpleUploadedFile("a.png", png(), "image/png"), "client_id": "reply-1"},
                                HTTP_AUTHORIZATION=f"Bearer {_widget_token(conversation)}", HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 409 and response.json()["code"] == "conflict"


def test_an_advisor_repeating_the_visitors_client_id_is_a_conflict(demo, api_as):
    conversation = escalated()
    visitor_item = conversation.messages.filter(sender="visitor").last()
    response = api_as("alice").post(f"{CONVERSATIONS}/{conversation.pk}/messages",
                                    {"client_id": visitor_item.client_id, "text": "Hello"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert not conversation.messages.filter(sender="advisor").exists()


def test_two_advisors_may_both_use_the_same_client_id(demo, api_as):
    conversation = escalated()
    body = {"client_id": "1", "text": "Hello"}
    alice = api_as("alice").post(f"{CONVERSATIONS}/{conversation.pk}/messages", body, format="json")
    bob = api_as("bob").post(f"{CONVERSATIONS}/{conversation.pk}/messages", body, format="json")
    assert alice.status_code == 201 and bob.status_code == 201
    assert alice.json()["message"]["id"] != bob.json()["message"]["id"]
    again = api_as("bob").post(f"{CONVERSATIONS}/{conversation.pk}/messages", body, format="json")
    assert again.status_code == 200 and again.json()["message"]["id"] == bob.json()["message"]["id"]


def test_an_advisor_who_lost_the_license_gets_no_note_back_by_its_client_id(demo, api_as):
    conversation = escalated()
    _note(api_as, conversation, client_id="mine", username="bob")
    license_revoke(advisor=demo.advisors["bob"])
    response = api_as("bob").post(f"{CONVERSATIONS}/{conversation.pk}/messages",
                                  {"client_id": "mine", "text": "hello"}, format="json")
    assert response.status_code == 409 and "secret plan" not in response.content.decode()


def test_the_database_keeps_one_item_per_sender_and_client_id(demo):
    conversation = escalated()
    item = conversation.messages.filter(sender="visitor").last()
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(conversation=conversation, seq=conversation.last_seq + 1, kind="text",
                               sender="visitor", text="twice", client_id=item.client_id)
    alice = demo.advisors["alice"]
    Message.objects.create(conversation=conversation, seq=conversation.last_seq + 1, kind="text", sender="advisor",
                           advisor=alice, text="one", client_id="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(conversation=conversation, seq=conversation.last_seq + 2, kind="text",
                               sender="advisor", advisor=alice, text="two", client_id="a")


@pytest.mark.django_db(transaction=True)
async def test_visitor_frame_with_the_client_id_of_a_note_gets_a_conflict_frame_and_no_note(demo, api_as):
    conversation = await sync_to_async(escalated)()
    await sync_to_async(_note)(api_as, conversation)
    token = await sync_to_async(_widget_token)(conversation)
    socket = await widget_socket(token)
    await socket.drain(0.3)
    await socket.send({"type": "message", "client_id": "note-1", "text": "hello"})
    refused = await socket.wait_for(lambda f: f["type"] == "error")
    assert refused["code"] == "conflict" and refused["client_id"] == "note-1"
    assert not [f for f in socket.frames if "secret plan" in str(f)]
    assert await sync_to_async(Message.objects.filter(conversation=conversation, text="hello").exists)() is False
    await socket.disconnect()
