"""Upload floods and huge bodies (issue 12, point 5): who sends, how much and how often is settled before a body
is read, on the Django stack (WSGI test client), on the ASGI application, and on a real Daphne server."""
import asyncio
import http.client
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from conversations.models import Message
from conversations.tests.conftest import ORIGIN, escalated, new_id, start_session, widget_socket
from conversations.tests.test_api import CONVERSATIONS

HUGE = 50 * 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # (each test's limits have keys of their own: the root conftest)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(out, "PNG")
    return out.getvalue()


def widget_upload(token: str):
    from rest_framework.test import APIClient

    return APIClient().post("/api/widget/images", {"image": SimpleUploadedFile("a.png", png(), "image/png"),
                                                   "client_id": new_id()},
                            HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ORIGIN=ORIGIN)


def inbox_upload(client, conversation_id: int):
    return client.post(f"{CONVERSATIONS}/{conversation_id}/messages",
                       {"client_id": new_id(), "image": SimpleUploadedFile("a.png", png(), "image/png")},
                       format="multipart")


class UnreadableBody:
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the request body was read")

    readline = read


def post_unread(client, path: str, length: int, **headers):
    # Django's test client sets no Content-Type for an empty `data`: the environ says it all here.
    content_type = "multipart/form-data; boundary=xyz"  # (DRF's test client sets it from `content_type`)
    return client.generic("POST", path, b"", content_type=content_type, **headers,
                          **{"wsgi.input": UnreadableBody(), "CONTENT_LENGTH": str(length),
                             "CONTENT_TYPE": content_type})


# --- Rate limits ---------------------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
async def test_widget_uploads_count_against_the_same_limit_as_the_tokens_socket_sends(demo, settings):
    # given 18 socket sends of the 20 a token may make (over an hour here: the limit refills one slot per
    # window / 20, and a slow machine must not see a slot come back while the test runs)
    settings.LIVECHAT = {**settings.LIVECHAT, "RATE_LIMIT_WINDOW_S": 3600}
    session = await sync_to_async(start_session)()
    socket = await widget_socket(session["token"])
    for _ in range(18):
        await socket.send({"type": "message", "client_id": new_id(), "text": "hello"})
    await socket.wait_for(lambda f: f["type"] == "message" and f["message"]["sender"] == "visitor", timeout=10,
                          since=0)
    while await sync_to_async(Message.objects.filter(sender="visitor").count)() < 18:
        await asyncio.sleep(0.05)
    # when two uploads take the last slots
    assert (await sync_to_async(widget_upload)(session["token"])).status_code == 201
    assert (await sync_to_async(widget_upload)(session["token"])).status_code == 201
    # then a third upload, and the next socket send, are refused
    refused = await sync_to_async(widget_upload)(session["token"])
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited" and int(refused["Retry-After"]) >= 1
    last = new_id()
    await socket.send({"type": "message", "client_id": last, "text": "one more"})
    error = await socket.wait_for(lambda f: f["type"] == "error" and f["client_id"] == last)
    assert error["code"] == "rate_limited"
    assert await sync_to_async(Message.objects.filter(kind="image").count)() == 2
    await socket.disconnect()


@pytest.mark.django_db
def test_inbox_uploads_are_limited_per_advisor(demo, api_as, settings):
    settings.LIVECHAT = {**settings.LIVECHAT, "INBOX_UPLOADS_PER_MINUTE": 2}
    conversation = escalated()
    alice = api_as("alice")
    assert inbox_upload(alice, conversation.pk).status_code == 201
    assert inbox_upload(alice, conversation.pk).status_code == 201
    count = Message.objects.count()
    refused = inbox_upload(alice, conversation.pk)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited" and int(refused["Retry-After"]) >= 1
    assert Message.objects.count() == count
    # a text reply is not an upload, and another advisor has a limit of their own
    text = alice.post(f"{CONVERSATIONS}/{conversation.pk}/messages", {"client_id": new_id(), "text": "Hi"},
                      format="json")
    assert text.status_code == 201
    assert inbox_upload(api_as("admin"), conversation.pk).status_code == 201


# --- Refused before the body is read: the Django stack ------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"])
def test_a_widget_upload_without_a_valid_token_is_401_before_its_body_is_read(demo, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = post_unread(Client(), "/api/widget/images", 1000, HTTP_ORIGIN=ORIGIN, **headers)
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [None, "Token not-a-token"])
def test_an_inbox_upload_without_a_valid_token_is_401_before_its_body_is_read(demo, authorization):
    conversation = escalated()
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = post_unread(Client(), f"{CONVERSATIONS}/{conversation.pk}/messages", 1000, **headers)
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


@pytest.mark.django_db
def test_an_oversized_upload_is_refused_from_its_content_length(demo, api_as):
    token = start_session()["token"]
    widget = post_unread(Client(), "/api/widget/images", HUGE, HTTP_ORIGIN=ORIGIN, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert widget.status_code == 413 and widget.json()["code"] == "too_large", widget.json()
    assert widget["Access-Control-Allow-Origin"] == ORIGIN  # the widget can read why
    conversation = escalated()
    inbox = post_unread(api_as("alice"), f"{CONVERSATIONS}/{conversation.pk}/messages", HUGE)
    assert inbox.status_code == 413 and inbox.json()["code"] == "too_large"


@pytest.mark.django_db
def test_an_oversized_upload_with_a_session_is_refused_before_the_csrf_check_reads_it(demo):
    conversation = escalated()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(demo.advisors["alice"].user)
    browser.cookies["csrftoken"] = "a" * 32  # with its cookie, the CSRF check looks for the token in the form first
    response = post_unread(browser, f"{CONVERSATIONS}/{conversation.pk}/messages", HUGE, HTTP_X_CSRFTOKEN="a" * 32)
    assert response.status_code == 413 and response.json()["code"] == "too_large"


# --- Refused before the body is read: the ASGI application (Django's handler reads the whole body first) ----------

async def asgi_post(path: str, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, dict, int]:
    """POST through the full ASGI application; returns the status, the JSON body and how many chunks it read."""
    import json

    from livechat.asgi import application

    pulled, sent = 0, []

    async def receive():
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks)}
        await asyncio.sleep(3600)  # the client waits for an answer

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    await asyncio.wait_for(application(scope, receive, send), timeout=30)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


@pytest.mark.django_db(transaction=True)
async def test_asgi_refuses_an_announced_oversized_body_without_reading_it(demo):
    session = await database_sync_to_async(start_session)()  # closes its connection: the database can be dropped
    status, body, pulled = await asgi_post(
        "/api/widget/images", {"Authorization": f"Bearer {session['token']}", "Origin": ORIGIN,
                               "Content-Type": "multipart/form-data; boundary=xyz", "Content-Length": str(HUGE)},
        [b"x" * 1024 * 1024] * 50)
    assert (status, body["code"], pulled) == (413, "too_large", 0)


@pytest.mark.django_db(transaction=True)
async def test_asgi_stops_reading_a_streamed_body_once_it_passes_the_limit(demo):
    session = await database_sync_to_async(start_session)()
    status, body, pulled = await asgi_post(
        "/api/widget/images", {"Authorization": f"Bearer {session['token']}", "Origin": ORIGIN,
                               "Content-Type": "multipart/form-data; boundary=xyz"},  # no Content-Length
        [b"x" * 1024 * 1024] * 50)
    assert (status, body["code"]) == (413, "too_large")
    assert pulled == 11  # 10 MB and its envelope, then the chunk that passed it


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/api/widget/images", "/api/inbox/conversations/1/messages"])
async def test_asgi_answers_an_upload_without_credentials_401_without_reading_it(demo, path):
    status, body, pulled = await asgi_post(
        path, {"Origin": ORIGIN, "Content-Type": "multipart/form-data; boundary=xyz", "Content-Length": "1000000"},
        [b"x" * 1_000_000])
    assert (status, body["code"], pulled) == (401, "unauthorized", 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("path", "authorization"), [
    ("/api/widget/images", "Bearer made-up-token"),
    ("/api/widget/images", "Token made-up-token"),
    ("/api/inbox/conversations/1/messages", "Token made-up-token"),
    ("/api/inbox/conversations/1/messages", "Bearer made-up-token"),
])
async def test_asgi_answers_an_upload_with_a_token_that_opens_nothing_401_without_reading_it(demo, path,
                                                                                             authorization):
    status, body, pulled = await asgi_post(
        path, {"Origin": ORIGIN, "Authorization": authorization, "Content-Length": "1000000",
               "Content-Type": "multipart/form-data; boundary=xyz"},
        [b"x" * 1_000_000])
    assert (status, body["code"], pulled) == (401, "unauthorized", 0)


@pytest.mark.django_db(transaction=True)
async def test_asgi_reads_an_upload_whose_token_is_valid(demo):
    session = await database_sync_to_async(start_session)()
    status, body, pulled = await asgi_post(
        "/api/widget/images", {"Authorization": f"Bearer {session['token']}", "Origin": ORIGIN,
                               "Content-Type": "multipart/form-data; boundary=xyz", "Content-Length": "100"},
        [b"x" * 100])
    assert pulled == 1 and status != 401, body


# --- A real Daphne server (`make run`) -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def daphne_server():
    """Daphne serving the application on a free port; the requests below never reach the database."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "livechat.test_settings"}
    process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                "livechat.asgi:application"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("daphne did not start") from None
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def raw_post(port: int, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", path)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    if body:
        connection.send(body)
    response = connection.getresponse()
    try:
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/api/auth/token", "/api/widget/images", "/api/widget/sessions"])
def test_daphne_answers_a_multipart_body_it_cannot_parse_with_the_json_error(daphne_server, path):
    # Twisted parsed multipart bodies itself and answered an empty "400 Bad Request" before Django saw them.
    import json

    status, body = raw_post(daphne_server, path, {"Content-Type": "multipart/form-data", "Content-Length": "1"}, b"x")
    assert status in (400, 401, 415)
    assert json.loads(body)["code"] in ("bad_request", "unauthorized", "unsupported_media_type")


def test_daphne_refuses_an_oversized_body_from_its_content_length(daphne_server):
    # Only the headers are sent: a server that waited for the 50 MB would time out.
    import json

    started = time.monotonic()
    status, body = raw_post(daphne_server, "/api/widget/images", {
        "Content-Type": "multipart/form-data; boundary=xyz", "Content-Length": str(HUGE)})
    assert (status, json.loads(body)["code"]) == (413, "too_large")
    assert time.monotonic() - started < 5
