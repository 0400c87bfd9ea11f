"""The one access check (selectors.access_conversation): sites, the chatbot-lead setting and the license, the same
on every REST endpoint, the inbox socket and the media of notes."""
import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from conversations import services
from conversations.models import Conversation, Message
from conversations.tests.conftest import escalated, inbox_socket, new_id, start_session, widget_socket
from conversations.tests.test_api import CONVERSATIONS
from conversations.tests.test_images import png

pytestmark = pytest.mark.django_db

ENDPOINTS = [("post", "messages", {"client_id": "x-1", "text": "hi"}), ("post", "take", {}),
             ("post", "assign", {"advisor": "bob"}), ("post", "close", {}), ("post", "reopen", {}),
             ("post", "read", {"seq": 1}), ("get", "messages", None), ("get", "", None)]


def test_a_conversation_the_bot_leads_is_404_everywhere_for_an_advisor_who_does_not_see_them(demo, api_as):
    # given a shop conversation the demo bot leads; bob works on the shop but does not see the bot's discussions
    conversation = Conversation.objects.get(pk=start_session()["conversation"]["id"])
    assert conversation.status == "bot"
    items = conversation.last_seq
    bob = api_as("bob")
    # when bob asks for it by id, on every endpoint
    for method, verb, body in ENDPOINTS:
        path = f"{CONVERSATIONS}/{conversation.pk}" + (f"/{verb}" if verb else "")
        response = getattr(bob, method)(path, body, format="json")
        # then it does not exist for him, and nothing changed
        assert response.status_code == 404, (method, verb, response.content)
        assert response.json()["code"] == "not_found"
    conversation.refresh_from_db()
    assert conversation.status == "bot" and conversation.assigned_id is None and conversation.last_seq == items
    # alice sees the bot's discussions: the same conversation is hers to see
    assert api_as("alice").get(f"{CONVERSATIONS}/{conversation.pk}").status_code == 200


def test_the_same_conversation_becomes_visible_once_a_human_has_the_lead(demo, api_as):
    conversation = escalated()
    assert api_as("bob").get(f"{CONVERSATIONS}/{conversation.pk}").status_code == 200


def test_a_notes_image_follows_the_chatbot_lead_rule_too(demo, api_as, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    conversation = escalated()
    response = api_as("alice").post(
        f"{CONVERSATIONS}/{conversation.pk}/messages",
        {"client_id": new_id(), "kind": "note", "image": SimpleUploadedFile("n.png", png(), "image/png")},
        format="multipart")
    assert response.status_code == 201
    path = "/" + response.json()["message"]["image_url"].split("://", 1)[1].split("/", 1)[1]
    assert api_as("bob").get(path).status_code == 200  # licensed, the shop, a human has the lead
    # the visitor hands the conversation back to the bot: bob no longer sees it, nor its notes' images
    services.visitor_back_to_bot(visitor=conversation.visitor, client_id=new_id())
    assert Conversation.objects.get(pk=conversation.pk).status == "bot"
    assert api_as("bob").get(path).status_code == 404
    assert api_as("alice").get(path).status_code == 200
    assert APIClient().get(path).status_code == 404


@pytest.mark.django_db(transaction=True)
async def test_inbox_typing_on_a_conversation_the_advisor_may_not_see_is_refused_and_never_reaches_the_visitor(
        demo, tokens):
    session = await sync_to_async(start_session)()
    visitor = await widget_socket(session["token"])
    bob = await inbox_socket(tokens["bob"])
    await bob.send({"type": "typing", "conversation": session["conversation"]["id"], "note": False})
    refused = await bob.wait_for(lambda f: f["type"] == "error")
    assert refused["code"] == "not_found"
    assert not [f for f in await visitor.drain(0.4) if f["type"] == "typing"]
    for socket in (bob, visitor):
        await socket.disconnect()


def test_an_advisor_without_a_license_never_gets_a_note_by_its_client_id(demo, api_as):
    # carol (no license) repeats the client_id of alice's note: refused, and nothing of the note comes back
    conversation = escalated()
    note = api_as("alice").post(f"{CONVERSATIONS}/{conversation.pk}/messages",
                                {"client_id": "note-1", "text": "secret plan", "kind": "note"}, format="json")
    assert note.status_code == 201
    count = Message.objects.count()
    response = api_as("carol").post(f"{CONVERSATIONS}/{conversation.pk}/messages",
                                    {"client_id": "note-1", "text": "hello"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert "secret plan" not in response.content.decode() and "alice" not in response.content.decode()
    assert Message.objects.count() == count


def test_the_compiled_access_check_follows_a_scope_change_at_the_next_request(demo, api_as):
    # given bob answering a shop conversation, both as a reader (the conversation) and as a writer (a reply)
    conversation = escalated()
    bob_advisor = demo.advisors["bob"]
    bob = api_as("bob")
    path = f"{CONVERSATIONS}/{conversation.pk}"
    assert bob.get(path).status_code == 200
    assert bob.post(f"{path}/messages", {"client_id": new_id(), "text": "Hello"}, format="json").status_code == 201
    items = Conversation.objects.get(pk=conversation.pk).last_seq

    # when the shop is taken from him
    bob_advisor.sites.remove(demo.sites["shop"])

    # then the very next read and write do not find the conversation, and nothing is written
    assert bob.get(path).status_code == 404
    refused = bob.post(f"{path}/messages", {"client_id": new_id(), "text": "Still there?"}, format="json")
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    assert Conversation.objects.get(pk=conversation.pk).last_seq == items

    # and when it is given back, and the bot's discussions shown to him, he sees those at once too
    bob_advisor.sites.add(demo.sites["shop"])
    bot_led = Conversation.objects.get(pk=start_session()["conversation"]["id"])
    assert bob.get(f"{CONVERSATIONS}/{bot_led.pk}").status_code == 404
    bob_advisor.sees_chatbot = True
    bob_advisor.save(update_fields=["sees_chatbot"])
    assert bob.get(path).status_code == 200
    assert bob.get(f"{CONVERSATIONS}/{bot_led.pk}").status_code == 200
