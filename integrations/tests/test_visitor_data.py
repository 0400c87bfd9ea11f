"""A visitor's data on request (export, erasure), and an advisor's own: commands, admin actions, audit trail."""
import json
import os
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from advisors.models import Notification
from conversations import services as conversation_services
from conversations.models import Conversation, Message, Visitor
from conversations.tests.conftest import ORIGIN, escalated, new_id, start_session, widget_socket
from conversations.tests.test_deletion import admin_client
from conversations.tests.test_images import png, upload
from conversations.tests.test_inbox_counts import assert_counts_exact
from integrations.models import AuditEntry, Delivery
from integrations.tests.conftest import make_webhook


def visitor_with_everything(demo) -> tuple[str, Conversation, str]:
    """An escalated visitor with variables, a note, an advisor's reply and an image: (token, conversation, path)."""
    session = start_session()
    token = session["token"]
    visitor = Visitor.objects.get(pk=session["visitor"]["id"])
    for text in ("Jean", "ACME"):
        conversation_services.visitor_message_send(visitor=visitor, client_id=new_id(), text=text)
    response = upload(token, "photo.png", png(), "image/png")
    assert response.status_code == 201, response.content
    conversation = Conversation.objects.get(visitor=visitor)
    conversation_services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                               client_id=new_id(), text="Hello Jean")
    conversation_services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                               client_id=new_id(), text="Prefers e-mail", note=True)
    path = Message.objects.get(conversation=conversation, kind="image").image.path
    return token, conversation, path


@pytest.mark.django_db
def test_export_prints_the_visitor_its_variables_conversation_and_items(demo, media_root):
    token, conversation, _ = visitor_with_everything(demo)
    out = StringIO()
    call_command("visitor", "export", str(conversation.visitor_id), stdout=out)
    data = json.loads(out.getvalue())
    assert data["visitor"]["id"] == conversation.visitor_id
    assert data["visitor"]["variables"] == {"PRENOM": "Jean", "SOCIETE": "ACME"}
    assert data["visitor"]["site"] == {"key": "demo-shop", "name": "Shop"}
    [exported] = data["conversations"]
    assert exported["id"] == conversation.pk
    items = exported["items"]
    assert [i["seq"] for i in items] == list(range(1, conversation.messages.count() + 1))
    texts = [i["text"] for i in items]
    assert "Jean" in texts and "Hello Jean" in texts and "Prefers e-mail" in texts
    image = next(i for i in items if i["kind"] == "image")
    assert image["image_url"].startswith("http") and "/media/conversations/" in image["image_url"]
    # the export is in the audit trail, as a command's
    entry = AuditEntry.objects.get(action="visitor.exported")
    assert entry.target == f"visitor #{conversation.visitor_id}" and entry.actor_name == "manage.py visitor export"
    assert entry.details["conversations"] == [conversation.pk]


@pytest.mark.django_db
def test_erase_removes_everything_keeps_counts_exact_and_the_old_token_starts_afresh(demo, api_as, media_root,
                                                                                     settings,
                                                                                     django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    make_webhook(demo, "http://127.0.0.1:9/", events=["message.created"])  # deliveries that carry the visitor's data
    token, conversation, path = visitor_with_everything(demo)
    kept = escalated(first_name="Paul")  # another visitor, untouched
    assert Delivery.objects.filter(conversation_id=conversation.pk).exists()
    # the records of e-mails sent to the visitor (replies, transcript) hold its address; the other visitor's stay
    for kind, key, about in (("visitor_replies", "upto:7", conversation), ("transcript", "transcript:3", conversation),
                             ("visitor_replies", "upto:2", kept)):
        Notification.objects.create(kind=kind, key=f"conversation:{about.pk}:{key}", recipient="jean@example.com")
    # when the visitor is erased from the command line
    with django_capture_on_commit_callbacks(execute=True):
        call_command("visitor", "erase", str(conversation.visitor_id), stdout=StringIO())
    # then variables (the visitor row), token hash, conversation, items, image file and deliveries are gone
    assert not Visitor.objects.filter(pk=conversation.visitor_id).exists()
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()
    assert not os.path.exists(path)
    assert not Delivery.objects.filter(conversation_id=conversation.pk).exists()
    assert list(Notification.objects.filter(recipient="jean@example.com").values_list("key", flat=True)) == [
        f"conversation:{kept.pk}:upto:2"]
    assert Conversation.objects.filter(pk=kept.pk).exists()
    assert_counts_exact(demo, api_as)
    # and the old token is unknown (401), then starts a new visitor, without an error
    widget = APIClient()
    assert widget.get("/api/widget/messages", HTTP_AUTHORIZATION=f"Bearer {token}",
                      HTTP_ORIGIN=ORIGIN).status_code == 401
    again = widget.post("/api/widget/sessions", {"site": "demo-shop", "token": token}, format="json",
                        HTTP_ORIGIN=ORIGIN)
    assert again.status_code == 201, again.content
    assert again.json()["visitor"]["id"] != conversation.visitor_id
    entry = AuditEntry.objects.get(action="visitor.erased")
    assert entry.target == f"visitor #{conversation.visitor_id}" and entry.details["conversations"] == [conversation.pk]
    with pytest.raises(CommandError):
        call_command("visitor", "erase", str(conversation.visitor_id), stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("visitor", "export", str(conversation.visitor_id), stdout=StringIO())


@pytest.mark.django_db(transaction=True)
async def test_erasing_from_the_admin_closes_the_open_socket_4401(demo, media_root):
    session = await sync_to_async(start_session)()
    socket = await widget_socket(session["token"])
    try:
        # when an admin erases the visitor with the admin action while its widget socket is open
        client = await sync_to_async(admin_client)(demo)
        selected = {"action": "erase_data", "_selected_action": [session["visitor"]["id"]]}
        response = await sync_to_async(client.post)("/admin/conversations/visitor/", selected)
        assert response.status_code == 200 and b"Yes, erase" in response.content  # asks first, erases nothing
        assert await sync_to_async(Visitor.objects.filter(pk=session["visitor"]["id"]).exists)()
        response = await sync_to_async(client.post)("/admin/conversations/visitor/", dict(selected, post="yes"))
        assert response.status_code == 302, response.content
        # then the socket closes 4401 and the visitor is gone
        assert await socket.close_code() == 4401
    finally:
        await socket.disconnect()
    assert not await sync_to_async(Visitor.objects.filter(pk=session["visitor"]["id"]).exists)()
    entry = await sync_to_async(AuditEntry.objects.select_related("actor").get)(action="visitor.erased")
    assert entry.actor.username == "admin"
    # and the old token starts a new visitor whose socket works
    fresh = await sync_to_async(start_session)(token=session["token"])
    assert fresh["visitor"]["id"] != session["visitor"]["id"]
    socket = await widget_socket(fresh["token"])
    try:
        await socket.send({"type": "message", "client_id": new_id(), "text": "Jean"})
        await socket.wait_for(lambda f: f["type"] == "message" and f["message"]["sender"] == "visitor")
    finally:
        await socket.disconnect()


@pytest.mark.django_db
def test_admin_export_downloads_json_and_is_audited(demo, media_root):
    _, conversation, _ = visitor_with_everything(demo)
    response = admin_client(demo).post("/admin/conversations/visitor/", {
        "action": "export_data", "_selected_action": [conversation.visitor_id]})
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="visitor-{conversation.visitor_id}.json"'
    assert json.loads(response.content)["visitor"]["variables"]["PRENOM"] == "Jean"
    assert AuditEntry.objects.get(action="visitor.exported").actor_name == "admin"


@pytest.mark.django_db
def test_an_advisor_without_staff_rights_cannot_export_or_erase(demo, media_root):
    _, conversation, _ = visitor_with_everything(demo)
    client = Client()
    client.force_login(demo.advisors["alice"].user)  # not staff
    response = client.post("/admin/conversations/visitor/", {
        "action": "erase_data", "post": "yes", "_selected_action": [conversation.visitor_id]})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Visitor.objects.filter(pk=conversation.visitor_id).exists()
    assert not AuditEntry.objects.filter(action__in=["visitor.erased", "visitor.exported"]).exists()


@pytest.mark.django_db
def test_an_advisor_s_own_data_can_be_exported(demo):
    bob = demo.advisors["bob"]
    response = admin_client(demo).post("/admin/advisors/advisor/", {
        "action": "export_data", "_selected_action": [bob.pk]})
    assert response.status_code == 200, response.content
    data = json.loads(response.content)
    assert data["username"] == "bob" and data["name"] == bob.display_name and data["email"] == "bob@demo.example"
    assert data["avatar_url"] is None and data["licensed"] is True
    assert data["sites"] == [{"key": "demo-shop", "name": "Shop"}]
    assert AuditEntry.objects.get(action="advisor.exported").target == "advisor bob"
