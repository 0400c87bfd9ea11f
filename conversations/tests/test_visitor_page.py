"""The inbox follows the visitor's navigation: a session start on another page sends a conversation frame."""
import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from conversations.tests.conftest import ORIGIN, inbox_socket

pytestmark = pytest.mark.django_db(transaction=True)


def session(token: str | None = None, page: str | None = None) -> dict:
    body = {"site": "demo-shop", **({"token": token} if token else {}), **({"page": page} if page else {})}
    response = APIClient().post("/api/widget/sessions", body, format="json", HTTP_ORIGIN=ORIGIN)
    assert response.status_code in (200, 201), response.content
    return response.json()


def about(conversation_id: int):
    return lambda f: f["type"] == "conversation" and f["conversation"]["id"] == conversation_id


async def test_a_visitor_on_another_page_updates_the_inbox(demo, tokens):
    first = await sync_to_async(session)(page="https://shop.example.com/")
    conversation_id = first["conversation"]["id"]
    alice = await inbox_socket(tokens["alice"])
    try:
        # when the visitor opens another page of the site
        await sync_to_async(session)(first["token"], "https://shop.example.com/pricing")

        # then the inbox hears of it, with the new page
        frame = await alice.wait_for(about(conversation_id))
        assert frame["conversation"]["visitor"]["page"] == "https://shop.example.com/pricing"
        assert frame["conversation"]["status"] == "bot"

        # and the same page again is no news
        mark = len(alice.frames)
        await sync_to_async(session)(first["token"], "https://shop.example.com/pricing")
        assert not [f for f in await alice.drain() if about(conversation_id)(f)], alice.frames[mark:]
    finally:
        await alice.disconnect()
