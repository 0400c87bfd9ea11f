"""The inbox and widget REST APIs: scope, licenses, idempotency, pagination, counts and query budgets."""
import pytest
from rest_framework.test import APIClient

from conversations import services
from conversations.models import Conversation, Message, Visitor
from conversations.tests.conftest import ORIGIN, escalated, new_id, start_session

pytestmark = pytest.mark.django_db
CONVERSATIONS = "/api/inbox/conversations"


def test_conversation_outside_the_advisors_sites_is_404_on_every_endpoint(demo, api_as):
    blog = escalated("demo-blog")
    bob = api_as("bob")
    base = f"{CONVERSATIONS}/{blog.pk}"
    assert bob.get(base).status_code == 404
    assert bob.get(f"{base}/messages").status_code == 404
    for verb, body in [("messages", {"client_id": new_id(), "text": "hi"}), ("take", {}),
                       ("assign", {"advisor": "bob"}),
                       ("close", {}), ("reopen", {}), ("read", {"seq": 1})]:
        response = bob.post(f"{base}/{verb}", body, format="json")
        assert response.status_code == 404, verb
        assert response.json()["code"] == "not_found"
    listed = bob.get(CONVERSATIONS, {"box": "live"}).json()
    assert blog.pk not in [c["id"] for c in listed["results"]]
    assert listed["counts"]["live"] == 0 and listed["counts"]["unassigned"] == 0
    assert not blog.messages.filter(sender="advisor").exists()
    assert Conversation.objects.get(pk=blog.pk).status == "live"


def test_default_mode_hides_names_variables_and_notes_but_allows_replies(demo, api_as):
    conversation = escalated()
    carol = api_as("carol")
    listed = carol.get(CONVERSATIONS, {"box": "live", "filter": "unassigned"}).json()["results"]
    row = next(c for c in listed if c["id"] == conversation.pk)
    assert row["visitor"]["name"] == f"Visitor #{conversation.visitor_id}"
    assert row["visitor"]["variables"] == {}
    assert row["last_message"]["kind"] != "note"
    history = carol.get(f"{CONVERSATIONS}/{conversation.pk}/messages").json()["messages"]
    assert history and all(m["kind"] != "note" for m in history)
    note = carol.post(f"{CONVERSATIONS}/{conversation.pk}/messages",
                      {"client_id": new_id(), "text": "a note", "kind": "note"}, format="json")
    assert note.status_code == 403
    reply = carol.post(f"{CONVERSATIONS}/{conversation.pk}/messages", {"client_id": new_id(), "text": "Hello"},
                       format="json")
    assert reply.status_code == 201
    assert carol.get(f"{CONVERSATIONS}/{conversation.pk}").json()["assigned"]["username"] == "carol"
    me = carol.get("/api/inbox/me").json()
    assert me["licensed"] is False and me["sites"] == [{"key": "demo-shop", "name": "Shop", "color": "#2563eb"}]


def test_licensed_advisor_sees_pseudonym_variables_and_the_automatic_note(demo, api_as):
    conversation = escalated()
    alice = api_as("alice")
    detail = alice.get(f"{CONVERSATIONS}/{conversation.pk}").json()
    assert detail["visitor"]["name"] == "Jean (ACME)"
    assert detail["visitor"]["variables"] == {"PRENOM": "Jean", "SOCIETE": "ACME"}
    notes = [m for m in alice.get(f"{CONVERSATIONS}/{conversation.pk}/messages").json()["messages"]
             if m["kind"] == "note"]
    assert [n["text"] for n in notes] == ["Jean from ACME asked for a human from the menu."]
    assert notes[0]["author"] is None


def test_chatbot_box_needs_the_preference(demo, api_as):
    start_session()
    assert api_as("bob").get(CONVERSATIONS, {"box": "chatbot"}).status_code == 403
    alice = api_as("alice").get(CONVERSATIONS, {"box": "chatbot"}).json()
    assert len(alice["results"]) == 1 and alice["results"][0]["status"] == "bot"
    assert api_as("bob").get(CONVERSATIONS).json()["counts"]["chatbot"] == 0


def test_take_reply_close_reopen_and_conflicts(demo, api_as):
    conversation = escalated()
    base = f"{CONVERSATIONS}/{conversation.pk}"
    alice, bob = api_as("alice"), api_as("bob")
    assert alice.post(f"{base}/take").json()["assigned"]["username"] == "alice"
    conflict = bob.post(f"{base}/take")
    assert conflict.status_code == 409
    assert set(conflict.json()) >= {"code", "detail"}
    assigned = alice.post(f"{base}/assign", {"advisor": "bob"}, format="json").json()
    assert assigned["assigned"]["username"] == "bob"
    assert alice.post(f"{base}/assign", {"advisor": "nobody"}, format="json").status_code == 400
    assert alice.post(f"{base}/close").json()["status"] == "closed"
    refused = bob.post(f"{base}/messages", {"client_id": new_id(), "text": "late"}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "closed"
    assert bob.post(f"{base}/reopen").json()["status"] == "live"
    assert bob.post(f"{base}/messages", {"client_id": new_id(), "text": "back"}, format="json").status_code == 201


def test_repeated_client_id_over_rest_returns_the_stored_item(demo, api_as):
    conversation = escalated()
    alice = api_as("alice")
    body = {"client_id": "same-id", "text": "Hello"}
    first = alice.post(f"{CONVERSATIONS}/{conversation.pk}/messages", body, format="json")
    again = alice.post(f"{CONVERSATIONS}/{conversation.pk}/messages", body, format="json")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["message"]["id"] == again.json()["message"]["id"]
    assert Message.objects.filter(conversation=conversation, client_id="same-id").count() == 1
    assert first.json()["message"]["client_id"] == "same-id"


def test_bad_input_is_refused_with_the_error_shape_and_stores_nothing(demo, api_as):
    conversation = escalated()
    alice = api_as("alice")
    count = Message.objects.count()
    for body in [{"text": "no client id"}, {"client_id": "x" * 65, "text": "long id"},
                 {"client_id": new_id(), "text": "y" * 4001}, {"client_id": new_id(), "text": "  "},
                 {"client_id": new_id(), "text": "hi", "kind": "shout"}]:
        response = alice.post(f"{CONVERSATIONS}/{conversation.pk}/messages", body, format="json")
        assert response.status_code == 400, body
        # over 4,000 characters: the socket's code, `too_long` (one rule, services.message_text_clean)
        expected = "too_long" if len(body.get("text", "")) > 4000 else "bad_request"
        assert response.json()["code"] == expected and response.json()["detail"]
    assert alice.get(CONVERSATIONS, {"box": "nope"}).status_code == 400
    assert alice.get(CONVERSATIONS, {"cursor": "garbage"}).status_code == 400
    assert Message.objects.count() == count


def test_unread_and_to_process_follow_reads_and_new_messages(demo, api_as):
    conversation = escalated()
    alice = api_as("alice")
    counts = alice.get(CONVERSATIONS).json()["counts"]
    assert counts["to_process"] == 1 and counts["unassigned"] == 1 and counts["unread"] == 1
    alice.post(f"{CONVERSATIONS}/{conversation.pk}/take")
    assert alice.get(CONVERSATIONS).json()["counts"]["to_process"] == 1  # mine, but unread
    conversation.refresh_from_db()
    read = alice.post(f"{CONVERSATIONS}/{conversation.pk}/read", {"seq": conversation.last_seq}, format="json")
    assert read.json()["unread"] is False
    assert alice.get(CONVERSATIONS).json()["counts"]["to_process"] == 0
    services.visitor_message_send(visitor=conversation.visitor, client_id=new_id(), text="still there?")
    listed = alice.get(CONVERSATIONS, {"filter": "unread"}).json()
    assert [c["id"] for c in listed["results"]] == [conversation.pk]
    assert listed["results"][0]["unanswered"] is True
    assert listed["counts"]["to_process"] == 1 and listed["counts"]["mine"] == 1
    assert api_as("bob").get(CONVERSATIONS).json()["counts"]["to_process"] == 0  # alice's, not bob's


def test_list_pages_with_an_opaque_cursor_newest_first(demo, api_as):
    made = [escalated(first_name=f"P{i}") for i in range(5)]
    alice = api_as("alice")
    seen, cursor = [], None
    for _ in range(5):
        page = alice.get(CONVERSATIONS, {"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [c["id"] for c in page["results"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == [c.pk for c in reversed(made)]


def test_inbox_list_query_count_does_not_grow_with_conversations(demo, api_as, django_assert_max_num_queries):
    alice = api_as("alice")
    escalated()
    for box in ("live", "chatbot"):
        with django_assert_max_num_queries(4):
            assert alice.get(CONVERSATIONS, {"box": box}).status_code == 200
    for i in range(12):
        conversation = escalated(first_name=f"V{i}")
        services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["bob"],
                                      client_id=new_id(), text="hello")
        services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["bob"],
                                      client_id=new_id(), text="a note", note=True)
    for filter in ("all", "unassigned", "unread", "mine"):
        with django_assert_max_num_queries(4):
            response = alice.get(CONVERSATIONS, {"box": "live", "filter": filter})
        assert response.status_code == 200
    assert len(alice.get(CONVERSATIONS, {"limit": 100}).json()["results"]) == 13


def test_token_endpoint_and_authentication(demo):
    client = APIClient()
    assert client.get(CONVERSATIONS).status_code in (401, 403)
    bad = client.post("/api/auth/token", {"username": "alice", "password": "wrong"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"]
    token = client.post("/api/auth/token", {"username": "alice", "password": "demo1234"}, format="json").json()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token['token']}")
    assert client.get("/api/inbox/me").json()["username"] == "alice"
    assert client.patch("/api/inbox/me", {"sound": False}, format="json").json()["sound"] is False


def test_advisors_list_names_who_may_be_assigned(demo, api_as):
    names = {a["username"] for a in api_as("bob").get("/api/inbox/advisors").json()}
    assert names == {"admin", "alice", "bob", "carol"}
    assert all("online" in a for a in api_as("bob").get("/api/inbox/advisors").json())


# ------------------------------------------------------------------------------ widget REST


def test_widget_session_resumes_a_known_token_and_refuses_other_origins(demo):
    client = APIClient()
    new = client.post("/api/widget/sessions", {"site": "demo-shop"}, format="json", HTTP_ORIGIN=ORIGIN)
    assert new.status_code == 201
    assert new["Access-Control-Allow-Origin"] == ORIGIN and "Origin" in new["Vary"]
    body = new.json()
    assert body["site"] == {"name": "Shop", "color": "#2563eb", "mode": "chatbot"}
    again = client.post("/api/widget/sessions", {"site": "demo-shop", "token": body["token"]}, format="json",
                        HTTP_ORIGIN=ORIGIN)
    assert again.status_code == 200 and again.json()["visitor"]["id"] == body["visitor"]["id"]
    other_site = client.post("/api/widget/sessions", {"site": "demo-blog", "token": body["token"]}, format="json",
                             HTTP_ORIGIN=ORIGIN)
    assert other_site.status_code == 201 and other_site.json()["visitor"]["id"] != body["visitor"]["id"]
    evil = client.post("/api/widget/sessions", {"site": "demo-shop"}, format="json", HTTP_ORIGIN="https://evil.example")
    assert evil.status_code == 403 and "Access-Control-Allow-Origin" not in evil
    assert client.post("/api/widget/sessions", {"site": "demo-shop"}, format="json").status_code == 201  # no Origin
    assert Visitor.objects.filter(token_hash=body["token"]).count() == 0  # only the hash is stored


def test_widget_preflight_echoes_an_allowed_origin_only(demo):
    client = APIClient()
    ok = client.options("/api/widget/messages", HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert ok["Access-Control-Allow-Origin"] == ORIGIN and "Authorization" in ok["Access-Control-Allow-Headers"]
    refused = client.options("/api/widget/messages", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in refused


def test_widget_messages_need_a_valid_token_and_never_include_notes(demo):
    conversation = escalated()
    client = APIClient()
    assert client.get("/api/widget/messages", HTTP_AUTHORIZATION="Bearer forged").status_code == 401
    token = start_session()["token"]  # another visitor: sees only its own conversation
    other = client.get("/api/widget/messages", HTTP_AUTHORIZATION=f"Bearer {token}").json()["messages"]
    own = Conversation.objects.get(visitor__token_hash=services.token_hash(token))
    assert {m["conversation"] for m in other} == {own.pk}
    assert conversation.messages.filter(kind="note").exists()


def test_a_new_session_is_counted_after_thirty_idle_minutes(demo):
    from datetime import timedelta

    from django.utils import timezone

    body = start_session()
    visitor = Visitor.objects.get(pk=body["visitor"]["id"])
    start_session(token=body["token"])
    visitor.refresh_from_db()
    assert visitor.sessions == 1
    Visitor.objects.filter(pk=visitor.pk).update(last_seen_at=timezone.now() - timedelta(minutes=31))
    start_session(token=body["token"])
    visitor.refresh_from_db()
    assert visitor.sessions == 2


def test_visitor_writing_to_a_closed_conversation_goes_back_to_the_bot(demo):
    conversation = escalated()
    services.conversation_close(conversation_id=conversation.pk, advisor=demo.advisors["alice"])
    sent = services.visitor_message_send(visitor=conversation.visitor, client_id=new_id(), text="hello again")
    conversation.refresh_from_db()
    assert conversation.status == "bot" and conversation.assigned is None
    assert [m.text for m in sent.messages][:2] == ["hello again", "Sorry, I didn't get that."]
    assert [m.seq for m in sent.messages] == list(range(sent.messages[0].seq, conversation.last_seq + 1))


def test_live_chat_only_site_starts_waiting_for_a_human(demo):
    shop = demo.sites["shop"]
    shop.livechat_only = True
    shop.save()
    body = start_session()
    assert body["conversation"]["status"] == "live" and body["site"]["mode"] == "livechat"
    assert not Message.objects.filter(conversation_id=body["conversation"]["id"]).exists()


def test_session_flood_from_one_address_is_limited(demo, settings, monkeypatch):
    monkeypatch.setitem(settings.LIVECHAT, "SESSIONS_PER_ADDRESS_PER_MINUTE", 3)
    client = APIClient()
    codes = [client.post("/api/widget/sessions", {"site": "demo-shop"}, format="json").status_code for _ in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    assert Visitor.objects.count() == 3


def test_openapi_schema_describes_every_endpoint(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    for path in ("/api/widget/sessions", "/api/widget/messages", "/api/widget/images", "/api/inbox/me",
                 "/api/inbox/conversations", "/api/inbox/conversations/{conversation_id}/messages",
                 "/api/inbox/conversations/{conversation_id}/take", "/api/auth/token"):
        assert path in schema["paths"], path
    assert "seq" in schema["components"]["schemas"]["Message"]["properties"]
