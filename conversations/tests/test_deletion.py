"""Deleting a conversation (the admin's two ways): files, counts, and the visitor's next request and socket."""
import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from rest_framework.test import APIClient

from conversations.models import Conversation, Message, Visitor
from conversations.tests.conftest import ORIGIN, new_id, widget_socket
from conversations.tests.test_images import png, upload
from conversations.tests.test_inbox_counts import assert_counts_exact, escalated, start_session

CHANGELIST = "/admin/conversations/conversation/"


def admin_client(demo) -> Client:
    client = Client()
    client.force_login(demo.advisors["admin"].user)
    return client


def with_image(demo) -> tuple[str, Conversation, str]:
    """A live conversation whose visitor sent an image: (token, conversation, stored file path)."""
    session = start_session()
    token = session["token"]
    response = upload(token, "photo.png", png(), "image/png")
    assert response.status_code == 201, response.content
    stored = Message.objects.get(pk=response.json()["message"]["id"])
    return token, stored.conversation, stored.image.path


@pytest.mark.django_db
def test_deleting_from_the_admin_list_removes_files_and_keeps_counts_exact(demo, api_as, media_root,
                                                                          django_capture_on_commit_callbacks):
    import os

    # given a conversation with an image, others live and closed around it
    token, conversation, path = with_image(demo)
    escalated("demo-shop", first_name="Other")
    live = escalated("demo-blog")
    assert os.path.exists(path)
    # when the admin deletes two of them with the list's "delete selected" action
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client(demo).post(CHANGELIST, {"action": "delete_selected", "post": "yes",
                                                        "_selected_action": [conversation.pk, live.pk]})
    assert response.status_code == 302, response.content
    # then rows, visitors and files are gone, and every inbox count matches a count from scratch
    assert not Conversation.objects.filter(pk__in=[conversation.pk, live.pk]).exists()
    assert not Visitor.objects.filter(pk__in=[conversation.visitor_id, live.visitor_id]).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()
    assert not os.path.exists(path)
    assert_counts_exact(demo, api_as)


@pytest.mark.django_db
def test_the_visitor_of_a_deleted_conversation_gets_a_new_one(demo, api_as, media_root):
    token, conversation, _ = with_image(demo)
    # when the admin deletes it from its change page
    response = admin_client(demo).post(f"{CHANGELIST}{conversation.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content
    # then the old token is refused as unknown (the widget then starts a session again), never a 500
    widget = APIClient()
    old = widget.get("/api/widget/messages", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ORIGIN=ORIGIN)
    assert old.status_code == 401, old.content
    # and its next session start, with the old token, is a new visitor with a new conversation that works
    again = widget.post("/api/widget/sessions", {"site": "demo-shop", "token": token}, format="json",
                        HTTP_ORIGIN=ORIGIN)
    assert again.status_code == 201, again.content
    assert again.json()["conversation"]["id"] != conversation.pk
    new_token = again.json()["token"]
    messages = widget.get("/api/widget/messages", HTTP_AUTHORIZATION=f"Bearer {new_token}", HTTP_ORIGIN=ORIGIN)
    assert messages.status_code == 200 and messages.json()["messages"][0]["sender"] == "bot"
    assert_counts_exact(demo, api_as)


@pytest.mark.django_db(transaction=True)
async def test_an_open_widget_socket_closes_4401_and_the_visitor_starts_again(demo, media_root):
    session = await sync_to_async(start_session)()
    socket = await widget_socket(session["token"])
    try:
        # when the admin deletes the conversation under the open socket
        client = await sync_to_async(admin_client)(demo)
        response = await sync_to_async(client.post)(CHANGELIST, {
            "action": "delete_selected", "post": "yes", "_selected_action": [session["conversation"]["id"]]})
        assert response.status_code == 302
        # then the socket closes 4401 (the widget starts a session again), not 1011
        assert await socket.close_code() == 4401
    finally:
        await socket.disconnect()
    # and a socket with the old token is refused the same way, while a new session's socket works
    old = await widget_socket_refused(session["token"])
    assert old == 4401
    fresh = await sync_to_async(start_session)()
    socket = await widget_socket(fresh["token"])
    try:
        await socket.send({"type": "message", "client_id": new_id(), "text": "Jean"})
        await socket.wait_for(lambda f: f["type"] == "message" and f["message"]["sender"] == "visitor")
    finally:
        await socket.disconnect()


async def widget_socket_refused(token: str) -> int | None:
    from conversations.tests.conftest import Socket

    socket = Socket("/ws/widget/?site=demo-shop", [(b"origin", ORIGIN.encode())])
    connected, _ = await socket.connect()
    assert connected
    try:
        await socket.send({"type": "auth", "token": token, "after": 0})
        return await socket.close_code()
    finally:
        await socket.disconnect()
