"""CSAT: an advisor's closing asks the visitor once; POST /api/widget/rating answers it."""
import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from conversations import services
from conversations.models import Conversation, Visitor
from conversations.tests.conftest import ORIGIN, call, inbox_socket, message_with, new_id, widget_socket
from reports.models import Rating
from reports.tests.conftest import reply, visitor_escalates

RATING = "/api/widget/rating"


def rate(token: str | None, body: dict, origin: str = ORIGIN):
    headers = {"HTTP_ORIGIN": origin, **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {})}
    return APIClient().post(RATING, body, format="json", **headers)


def session_view(token: str) -> dict:
    response = APIClient().post("/api/widget/sessions", {"site": "demo-shop", "token": token}, format="json",
                                HTTP_ORIGIN=ORIGIN)
    return response.json()["conversation"]


@pytest.mark.django_db
def test_a_rating_once_per_closing_with_its_event_item_and_conv(demo, api_as):
    alice = demo.advisors["alice"]
    conversation, token = visitor_escalates()
    reply(conversation, alice)
    assert session_view(token)["rating"] is None
    assert rate(token, {"score": 4}).status_code == 409  # not closed: nothing asked

    services.conversation_close(conversation_id=conversation.pk, advisor=alice)
    assert session_view(token)["rating"] == "asked"
    response = rate(token, {"score": 4, "comment": "  Quick and kind "})

    assert response.status_code == 201
    assert response.json() == {"rating": {"score": 4, "comment": "Quick and kind"}}
    again = rate(token, {"score": 1})
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert session_view(token)["rating"] is None
    inbox = api_as("alice")
    conv = inbox.get(f"/api/inbox/conversations/{conversation.pk}").json()
    assert conv["rating"] == {"score": 4, "comment": "Quick and kind"}
    items = inbox.get(f"/api/inbox/conversations/{conversation.pk}/messages").json()["messages"]
    assert items[-1]["kind"] == "event" and items[-1]["text"] == "Rated 4/5: Quick and kind"
    rating = Rating.objects.get()
    assert (rating.score, rating.advisor, rating.site) == (4, alice, demo.sites["shop"])
    assert rating.episode.conversation_id == conversation.pk

    # a reopening takes the question back; the next closing asks again
    services.conversation_reopen(conversation_id=conversation.pk, advisor=alice)
    assert rate(token, {"score": 5}).status_code == 409
    services.conversation_close(conversation_id=conversation.pk, advisor=alice)
    assert rate(token, {"score": 5}).status_code == 201
    assert Rating.objects.count() == 2
    assert inbox.get(f"/api/inbox/conversations/{conversation.pk}").json()["rating"] == {"score": 5, "comment": ""}


@pytest.mark.django_db
def test_no_rating_is_asked_when_the_site_turned_it_off_or_the_bot_had_the_lead(demo):
    alice, admin = demo.advisors["alice"], demo.advisors["admin"]
    shop = demo.sites["shop"]
    shop.csat_enabled = False
    shop.save()
    conversation, token = visitor_escalates()
    reply(conversation, alice)
    services.conversation_close(conversation_id=conversation.pk, advisor=alice)
    assert session_view(token)["rating"] is None
    assert rate(token, {"score": 5}).status_code == 409

    shop.csat_enabled = True
    shop.save()
    bot_token = APIClient().post("/api/widget/sessions", {"site": "demo-shop"}, format="json",
                                 HTTP_ORIGIN=ORIGIN).json()["token"]
    bot = Conversation.objects.get(visitor__token_hash=services.token_hash(bot_token))
    services.conversation_close(conversation_id=bot.pk, advisor=admin)  # the bot's own, never live
    assert rate(bot_token, {"score": 5}).status_code == 409
    assert not Rating.objects.exists()


@pytest.mark.django_db
def test_a_visitor_writing_again_takes_the_question_back(demo):
    alice = demo.advisors["alice"]
    conversation, token = visitor_escalates()
    services.conversation_close(conversation_id=conversation.pk, advisor=alice)
    services.visitor_message_send(visitor=Visitor.objects.get(pk=conversation.visitor_id), client_id=new_id(),
                                  text="one more thing")
    assert rate(token, {"score": 3}).status_code == 409


@pytest.mark.django_db
def test_what_the_rating_endpoint_refuses(demo, settings):
    alice = demo.advisors["alice"]
    conversation, token = visitor_escalates()
    services.conversation_close(conversation_id=conversation.pk, advisor=alice)

    for body in ({}, {"score": 0}, {"score": 6}, {"score": "4"}, {"score": True}, {"score": 4.5},
                 {"score": 4, "comment": "x" * 1001}, {"score": 4, "comment": 7}, {"score": 4, "comment": "a\x00"}):
        response = rate(token, body)
        assert response.status_code == 400 and response.json()["code"] == "bad_request", body
    assert rate(None, {"score": 4}).status_code == 401
    assert rate("not-a-token", {"score": 4}).status_code == 401
    assert rate(token, {"score": 4}, origin="https://evil.example").status_code == 403
    assert not Rating.objects.exists()

    settings.LIVECHAT = {**settings.LIVECHAT, "RATE_LIMIT_COUNT": 2, "RATE_LIMIT_WINDOW_S": 60}
    answers = [rate(token, {"score": 2}).status_code for _ in range(3)]
    assert answers == [201, 409, 429]


@pytest.mark.django_db(transaction=True)
async def test_the_widget_socket_hears_the_question_and_the_inbox_the_rating(demo, api, tokens):
    alice = demo.advisors["alice"]
    conversation, token = await sync_to_async(visitor_escalates)()
    await sync_to_async(reply)(conversation, alice)
    visitor = await widget_socket(token)
    inbox = await inbox_socket(tokens["alice"])
    try:
        await call(api["alice"], "post", f"/api/inbox/conversations/{conversation.pk}/close")
        frame = await visitor.wait_for(lambda f: f["type"] == "conversation"
                                       and f["conversation"]["status"] == "closed")
        assert frame["conversation"]["rating"] == "asked"

        seen_visitor, seen_inbox = len(visitor.frames), len(inbox.frames)
        assert (await sync_to_async(rate)(token, {"score": 5, "comment": "Great"})).status_code == 201
        event = await inbox.wait_for(message_with(lambda m: m["kind"] == "event" and m["text"].startswith("Rated")))
        assert event["message"]["text"] == "Rated 5/5: Great"
        changed = await inbox.wait_for(lambda f: f["type"] == "conversation" and f["conversation"]["rating"],
                                       since=seen_inbox)
        assert changed["conversation"]["rating"] == {"score": 5, "comment": "Great"}
        over = await visitor.wait_for(lambda f: f["type"] == "conversation", since=seen_visitor)
        assert over["conversation"]["rating"] is None
        assert over["conversation"]["status"] == "closed"
    finally:
        await visitor.disconnect()
        await inbox.disconnect()


@pytest.mark.django_db
def test_a_rating_leaves_as_a_rating_created_webhook_with_the_rating(demo, settings):
    import json

    from integrations.models import Delivery
    from integrations.tests.conftest import make_webhook

    settings.WEBHOOK_ALLOW_PRIVATE = True
    make_webhook(demo, "http://127.0.0.1:9/", events=["rating.created"])
    alice = demo.advisors["alice"]
    conversation, token = visitor_escalates()
    services.conversation_close(conversation_id=conversation.pk, advisor=alice)
    assert not Delivery.objects.filter(event="rating.created").exists()

    assert rate(token, {"score": 3, "comment": "Slow"}).status_code == 201

    body = json.loads(Delivery.objects.get(event="rating.created").body)
    assert body["data"]["rating"] == {"score": 3, "comment": "Slow"}
    assert body["data"]["conversation"]["id"] == conversation.pk
