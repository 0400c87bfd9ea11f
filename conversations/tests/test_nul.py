"""NUL characters (which PostgreSQL refuses in text) are a bad request everywhere, never `unavailable` nor 503:
the widget would resend such a message forever."""
import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from conversations.models import Message
from conversations.tests.conftest import ORIGIN, Socket, escalated, inbox_socket, new_id, start_session, widget_socket
from conversations.tests.test_api import CONVERSATIONS
from conversations.tests.test_images import png

pytestmark = pytest.mark.django_db
NUL = "a\x00b"


def test_nul_in_an_advisor_reply_or_its_client_id_is_a_bad_request(demo, api_as):
    conversation = escalated()
    alice = api_as("alice")
    count = Message.objects.count()
    for body in [{"client_id": new_id(), "text": NUL}, {"client_id": NUL, "text": "hello"},
                 {"client_id": new_id(), "text": NUL, "kind": "note"}]:
        response = alice.post(f"{CONVERSATIONS}/{conversation.pk}/messages", body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert response.json()["code"] == "bad_request"
    assert Message.objects.count() == count


@pytest.mark.parametrize("name", ["advisor", "site", "cursor", "box", "filter", "limit"])
def test_nul_in_an_inbox_query_parameter_is_a_bad_request(demo, api_as, name):
    response = api_as("alice").get(CONVERSATIONS, {name: NUL})
    assert response.status_code == 400 and response.json()["code"] == "bad_request"


def test_nul_in_the_widget_api_is_a_bad_request(demo, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    token = start_session()["token"]
    client = APIClient()
    listed = client.get("/api/widget/messages", {"after": NUL}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert listed.status_code == 400 and listed.json()["code"] == "bad_request"
    upload = client.post("/api/widget/images", {"image": SimpleUploadedFile("a.png", png(), "image/png"),
                                                "client_id": NUL},
                         HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ORIGIN=ORIGIN)
    assert upload.status_code == 400 and upload.json()["code"] == "bad_request"
    for body in [{"site": "demo-shop", "token": NUL}, {"site": NUL}]:
        response = client.post("/api/widget/sessions", body, format="json", HTTP_ORIGIN=ORIGIN)
        assert response.status_code == 400 and response.json()["code"] == "bad_request"


@pytest.mark.django_db(transaction=True)
async def test_nul_in_widget_frames_is_a_bad_request_and_the_socket_stays_open(demo):
    session = await sync_to_async(start_session)()
    socket = await widget_socket(session["token"])
    before = await sync_to_async(Message.objects.count)()
    text_id = new_id()
    await socket.send({"type": "message", "client_id": text_id, "text": NUL})
    refused = await socket.wait_for(lambda f: f["type"] == "error" and f["client_id"] == text_id)
    assert refused["code"] == "bad_request"
    await socket.send({"type": "message", "client_id": NUL, "text": "hello"})
    refused = await socket.wait_for(lambda f: f["type"] == "error" and f["client_id"] == NUL)
    assert refused["code"] == "bad_request"
    await socket.send({"type": "ping"})
    await socket.wait_for(lambda f: f["type"] == "pong")
    assert await sync_to_async(Message.objects.count)() == before
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_nul_in_a_widget_token_or_site_key_is_refused_not_unavailable(demo):
    socket = Socket("/ws/widget/?site=demo-shop", [(b"origin", ORIGIN.encode())])
    assert (await socket.connect())[0]
    await socket.send({"type": "auth", "token": NUL, "after": 0})
    assert await socket.close_code() == 4401
    assert not [f for f in socket.frames if f.get("code") == "unavailable"]
    socket = Socket("/ws/widget/?site=demo%00shop", [(b"origin", ORIGIN.encode())])
    connected, _ = await socket.connect()
    assert not connected  # HTTP 403 at the handshake, as for any unknown site


@pytest.mark.django_db(transaction=True)
async def test_nul_in_inbox_typing_is_ignored_and_the_socket_stays_open(demo, tokens):
    socket = await inbox_socket(tokens["alice"])
    await socket.send({"type": "typing", "conversation": NUL, "note": False})
    await socket.send({"type": "ping"})
    await socket.wait_for(lambda f: f["type"] == "pong")
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_refused_frames_take_no_slot_of_the_rate_limit(demo):
    session = await sync_to_async(start_session)()
    socket = await widget_socket(session["token"])
    for _ in range(25):
        await socket.send({"type": "message", "client_id": new_id(), "text": NUL})
        await socket.send({"type": "message", "client_id": new_id(), "text": "x" * 4001})
    await socket.drain(0.5)
    assert not [f for f in socket.frames if f.get("code") == "rate_limited"]
    ok = new_id()
    await socket.send({"type": "message", "client_id": ok, "text": "hello"})
    await socket.wait_for(lambda f: f["type"] == "message" and f["message"]["client_id"] == ok)
    await socket.disconnect()
