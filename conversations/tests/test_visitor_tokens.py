"""Visitor tokens: one rule (selectors.visitor_for_token) for the session start, REST and the widget socket; new
visitors, whatever token they came with, count against the per-address limit."""
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from conversations import services
from conversations.models import Visitor
from conversations.tests.conftest import ORIGIN, Socket, new_id, start_session
from conversations.tests.test_images import png

pytestmark = pytest.mark.django_db


def _expire(token: str, days: int = 400) -> None:
    Visitor.objects.filter(token_hash=services.token_hash(token)).update(
        last_seen_at=timezone.now() - timedelta(days=days))


def test_an_expired_token_is_refused_by_the_widget_rest_api(demo, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    token = start_session()["token"]
    client = APIClient()
    assert client.get("/api/widget/messages", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    _expire(token)
    response = client.get("/api/widget/messages", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"
    upload = client.post("/api/widget/images", {"image": SimpleUploadedFile("a.png", png(), "image/png"),
                                                "client_id": new_id()},
                         HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ORIGIN=ORIGIN)
    assert upload.status_code == 401


def test_a_token_just_within_its_lifetime_still_works(demo):
    token = start_session()["token"]
    _expire(token, days=179)  # the lifetime is 180 days
    assert APIClient().get("/api/widget/messages", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


def test_an_expired_token_starts_a_new_visitor_at_the_session_start(demo):
    first = start_session()
    _expire(first["token"])
    again = APIClient().post("/api/widget/sessions", {"site": "demo-shop", "token": first["token"]}, format="json",
                             HTTP_ORIGIN=ORIGIN)
    assert again.status_code == 201 and again.json()["visitor"]["id"] != first["visitor"]["id"]


@pytest.mark.django_db(transaction=True)
async def test_an_expired_token_closes_the_widget_socket_with_4401(demo):
    token = (await sync_to_async(start_session)())["token"]
    await sync_to_async(_expire)(token)
    socket = Socket("/ws/widget/?site=demo-shop", [(b"origin", ORIGIN.encode())])
    assert (await socket.connect())[0]
    await socket.send({"type": "auth", "token": token, "after": 0})
    assert await socket.close_code() == 4401


def _session(body: dict):
    return APIClient().post("/api/widget/sessions", body, format="json", HTTP_ORIGIN=ORIGIN)


def test_made_up_tokens_count_against_the_per_address_limit_on_new_visitors(demo, settings, monkeypatch):
    monkeypatch.setitem(settings.LIVECHAT, "SESSIONS_PER_ADDRESS_PER_MINUTE", 3)
    responses = [_session({"site": "demo-shop", "token": new_id()}) for _ in range(5)]
    assert [r.status_code for r in responses] == [201, 201, 201, 429, 429]
    assert Visitor.objects.count() == 3
    refused = responses[-1]
    assert refused.json()["code"] == "rate_limited" and refused.json()["retry_after"] > 0
    assert int(refused["Retry-After"]) >= 1


def test_no_token_and_made_up_tokens_share_one_limit_and_known_tokens_still_resume(demo, settings, monkeypatch):
    monkeypatch.setitem(settings.LIVECHAT, "SESSIONS_PER_ADDRESS_PER_MINUTE", 3)
    known = _session({"site": "demo-shop"}).json()
    assert _session({"site": "demo-shop", "token": new_id()}).status_code == 201
    assert _session({"site": "demo-blog", "token": known["token"]}).status_code == 201  # another site's token
    assert _session({"site": "demo-shop", "token": new_id()}).status_code == 429
    assert _session({"site": "demo-shop"}).status_code == 429
    resumed = _session({"site": "demo-shop", "token": known["token"]})
    assert resumed.status_code == 200 and resumed.json()["visitor"]["id"] == known["visitor"]["id"]
