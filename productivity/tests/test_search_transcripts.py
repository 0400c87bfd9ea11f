"""Search and transcripts (CONTRACT section 7): scope, the license and chatbot-lead rules, accents and case,
words in any order; transcripts with notes only for licensed advisors; the widget's e-mailed transcript."""
import pytest
from django.core import mail
from rest_framework.test import APIClient

from conversations import services
from conversations.models import Conversation, Visitor
from conversations.tests.conftest import ORIGIN, escalated, new_id, start_session

SEARCH = "/api/inbox/search"


@pytest.fixture(params=["listed", "walked", "names walked", "first word common"])
def search_path(request, monkeypatch):
    """The ways the search finds items and visitors on PostgreSQL: the indexes' hits listed (rare words), or a walk
    over the newest conversations (common words, past LISTED_HITS and LISTED_VISITORS), or items listed and names
    walked, or the hits of every word but the first (which the statistics call common) listed, and that one
    checked on them. SQLite always walks."""
    from productivity import selectors

    if request.param == "first word common":
        def estimated(words):
            return {word: (selectors.LISTED_HITS + 1 if n == 0 and len(words) > 1 else 0)
                    for n, word in enumerate(words)}

        monkeypatch.setattr(selectors, "_estimated_item_hits", estimated)
    if request.param == "walked":
        monkeypatch.setattr(selectors, "LISTED_HITS", 0)
    if request.param in ("walked", "names walked"):
        monkeypatch.setattr(selectors, "LISTED_VISITORS", 0)
    return request.param
CONVERSATIONS = "/api/inbox/conversations"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [r["conversation"]["id"] for r in response.json()["results"]]


def test_item_texts_match_whatever_the_accents_case_and_word_order(demo, api_as, search_path):
    conversation = escalated()
    services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                  client_id=new_id(), text="Votre commande n°4521 est expédiée à Besançon")
    other = escalated(first_name="Paul")
    services.advisor_message_send(conversation_id=other.pk, advisor=demo.advisors["alice"], client_id=new_id(),
                                  text="Rien à voir")
    alice = api_as("alice")
    for q in ("EXPEDIEE besancon", "besançon expédiée", "Commande 4521", "expe BESAN"):
        response = alice.get(SEARCH, {"q": q})
        assert ids(response) == [conversation.pk], q
        hit = response.json()["results"][0]
        assert "4521" in hit["message"]["text"] and hit["conversation"]["id"] == conversation.pk
    assert ids(alice.get(SEARCH, {"q": "besancon paris"})) == []  # every word must match
    assert alice.get(SEARCH, {"q": "  ?! "}).status_code == 400


def test_notes_names_and_variables_match_only_for_licensed_advisors(demo, api_as, search_path):
    conversation = escalated(first_name="Élodie", company="Zanzibar")
    services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                  client_id=new_id(), text="secret tangerine", note=True)
    alice, carol = api_as("alice"), api_as("carol")  # both see the shop; carol has no license
    assert ids(alice.get(SEARCH, {"q": "tangerine"})) == [conversation.pk]
    assert alice.get(SEARCH, {"q": "tangerine"}).json()["results"][0]["message"]["kind"] == "note"
    # a variable no item repeats: only the visitor matches (no message); words any order, accents ignored
    Visitor.objects.filter(pk=conversation.visitor_id).update(
        variables={"PRENOM": "Élodie", "SOCIETE": "Zanzibar", "EMAIL": "zorro.ferme@example.com"})
    named = alice.get(SEARCH, {"q": "FERMÉ zorro"})
    assert ids(named) == [conversation.pk] and named.json()["results"][0]["message"] is None
    assert named.json()["results"][0]["conversation"]["visitor"]["name"] == "Élodie (Zanzibar)"
    for q in ("tangerine", "zorro"):
        assert ids(carol.get(SEARCH, {"q": q})) == [], q
    # the bot's visible text "Nice to meet you, Élodie!" is an item: carol may find that one
    assert carol.get(SEARCH, {"q": "elodie"}).json()["results"][0]["message"]["sender"] == "bot"
    # carol finds what she may see, with the conversation as she sees it
    services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["carol"],
                                  client_id=new_id(), text="public clementine")
    found = carol.get(SEARCH, {"q": "clementine"})
    assert ids(found) == [conversation.pk]
    assert found.json()["results"][0]["conversation"]["visitor"]["variables"] == {}
    assert found.json()["results"][0]["conversation"]["visitor"]["name"] == f"Visitor #{conversation.visitor_id}"


def test_words_shorter_than_a_trigram_match_names_too(demo, api_as, search_path):
    conversation = escalated(first_name="Élodie", company="Zanzibar")
    Visitor.objects.filter(pk=conversation.visitor_id).update(
        variables={"PRENOM": "Élodie", "SOCIETE": "Zanzibar", "EMAIL": "qx7@example.com"})
    other = escalated(first_name="Paul", company="Zanzibar")
    alice = api_as("alice")
    for q in ("qx", "QX7", "zanzibar x7", "7 zan"):
        found = alice.get(SEARCH, {"q": q})
        assert ids(found) == [conversation.pk], q
        assert found.json()["results"][0]["message"] is None
    assert set(ids(alice.get(SEARCH, {"q": "zanzibar"}))) == {conversation.pk, other.pk}
    assert ids(alice.get(SEARCH, {"q": "qx zz"})) == []


def test_search_results_are_presented_as_the_full_load(demo, api_as, search_path):
    # given: a reply by an advisor with an avatar, a note, and a visitor matched by name only
    from advisors.models import Advisor
    from conversations.models import Message, ReadState
    from conversations.presenters import conversation_dict, message_dict

    Advisor.objects.filter(user__username="alice").update(avatar="avatars/alice.png")
    replied = escalated(first_name="Walter")
    services.advisor_message_send(conversation_id=replied.pk, advisor=demo.advisors["alice"], client_id=new_id(),
                                  text="walrus reply")
    noted = escalated(first_name="Wanda")
    services.advisor_message_send(conversation_id=noted.pk, advisor=demo.advisors["alice"], client_id=new_id(),
                                  text="walrus note", note=True)
    escalated(first_name="Walrus")
    for username in ("alice", "carol"):
        advisor = Advisor.objects.get(user__username=username)
        # when
        results = api_as(username).get(SEARCH, {"q": "walrus"}).json()["results"]
        # then
        found = {result["conversation"]["id"] for result in results}
        assert len(found) == 3 if advisor.licensed else noted.pk not in found and replied.pk in found
        for result in results:
            full = Conversation.objects.select_related(
                "visitor", "site__chatbot", "assigned__user", "last_message__advisor__user",
                "last_public_message__advisor__user").get(pk=result["conversation"]["id"])
            read = ReadState.objects.filter(advisor=advisor, conversation=full).first()
            assert result["conversation"] == conversation_dict(
                full, licensed=advisor.licensed, read_seq=read.seq if read else 0,
                read_change=read.change if read else 0)
            if result["message"] is not None:
                item = Message.objects.select_related("advisor__user").get(pk=result["message"]["id"])
                assert result["message"] == message_dict(item)
        assert any(r["message"] and r["message"]["advisor"] and r["message"]["advisor"]["avatar_url"]
                   for r in results)


def test_search_keeps_to_the_advisors_sites_and_the_chatbot_lead_rule(demo, api_as, search_path):
    shop, blog = escalated(first_name="Quentin"), escalated("demo-blog", first_name="Quentin")
    bot_led = Visitor.objects.get(pk=start_session()["visitor"]["id"])
    services.visitor_message_send(visitor=bot_led, client_id=new_id(), text="Quentin")  # the bot has the lead
    bot_conversation = Conversation.objects.get(visitor=bot_led)
    assert bot_conversation.status == "bot"
    everything = {shop.pk, blog.pk, bot_conversation.pk}
    assert set(ids(api_as("alice").get(SEARCH, {"q": "quentin"}))) == everything  # sees the bot's conversations
    assert set(ids(api_as("bob").get(SEARCH, {"q": "quentin"}))) == {shop.pk}  # shop only, no chatbot lead
    assert set(ids(api_as("alice").get(SEARCH, {"q": "quentin", "site": "demo-blog"}))) == {blog.pk}
    assert ids(api_as("bob").get(SEARCH, {"q": "quentin", "site": "demo-blog"})) == []
    demo.advisors["alice"].sites.clear()
    assert ids(api_as("alice").get(SEARCH, {"q": "quentin"})) == []  # no site, nothing (and no error)


def test_search_pages_newest_first_in_a_fixed_number_of_queries(demo, api_as, django_assert_max_num_queries,
                                                               settings):
    from productivity import selectors

    made = []
    for i in range(5):
        conversation = escalated(first_name=f"Page{i}")
        services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors["alice"],
                                      client_id=new_id(), text="walrus")
        made.append(conversation.pk)
    alice = api_as("alice")
    original = selectors.SEARCH_PAGE
    selectors.SEARCH_PAGE = 2
    try:
        seen, cursor = [], None
        while True:
            # auth, statistics (every 10 min), in a transaction (or savepoint) with SET LOCAL: the indexes' hits, the
            # page's CONVs, the advisors they name, its newest hits
            with django_assert_max_num_queries(9):
                response = alice.get(SEARCH, {"q": "walrus", **({"cursor": cursor} if cursor else {})})
            seen += ids(response)
            cursor = response.json()["next"]
            if not cursor:
                break
    finally:
        selectors.SEARCH_PAGE = original
    assert seen == list(reversed(made))
    assert alice.get(SEARCH, {"q": "walrus", "cursor": "garbage"}).status_code == 400


def test_transcript_marks_notes_and_keeps_them_from_unlicensed_advisors(demo, api_as):
    conversation = escalated()
    alice = demo.advisors["alice"]
    services.advisor_message_send(conversation_id=conversation.pk, advisor=alice, client_id=new_id(),
                                  text="Hello <b>there</b>")
    services.advisor_message_send(conversation_id=conversation.pk, advisor=alice, client_id=new_id(),
                                  text="private remark", note=True)
    path = f"{CONVERSATIONS}/{conversation.pk}/transcript"
    text = api_as("alice").get(path, {"format": "txt"})
    assert text.status_code == 200 and text["Content-Type"].startswith("text/plain")
    body = text.content.decode()
    assert "Note by Alice: private remark" in body and "Alice: Hello <b>there</b>" in body
    assert "Jean (ACME)" in body
    html = api_as("alice").get(path, {"format": "html"}).content.decode()
    assert 'class="note"' in html and "private remark" in html and "&lt;b&gt;there" in html
    for fmt in ("txt", "html"):
        hidden = api_as("carol").get(path, {"format": fmt}).content.decode()
        assert "private remark" not in hidden and "Hello" in hidden and "Jean (ACME)" not in hidden
    assert api_as("alice").get(path, {"format": "pdf"}).status_code == 400
    blog = escalated("demo-blog")
    assert api_as("bob").get(f"{CONVERSATIONS}/{blog.pk}/transcript").status_code == 404


def _widget(token: str | None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ORIGIN=ORIGIN)
    return client


def test_the_visitor_gets_the_transcript_by_email_once_closed_without_notes_three_an_hour(
        demo, django_capture_on_commit_callbacks):
    session = start_session()
    visitor = Visitor.objects.get(pk=session["visitor"]["id"])
    for text in ("Jean", "ACME"):
        services.visitor_message_send(visitor=visitor, client_id=new_id(), text=text)
    conversation = Conversation.objects.get(visitor=visitor)
    alice = demo.advisors["alice"]
    services.conversation_take(conversation_id=conversation.pk, advisor=alice)
    services.advisor_message_send(conversation_id=conversation.pk, advisor=alice, client_id=new_id(),
                                  text="Here is your answer")
    services.advisor_message_send(conversation_id=conversation.pk, advisor=alice, client_id=new_id(),
                                  text="internal only", note=True)
    client = _widget(session["token"])
    assert _widget(None).post("/api/widget/transcript", {"email": "jean@example.com"}, format="json").status_code == 401
    early = client.post("/api/widget/transcript", {"email": "jean@example.com"}, format="json")
    assert early.status_code == 409 and not mail.outbox
    services.conversation_close(conversation_id=conversation.pk, advisor=alice)
    assert client.post("/api/widget/transcript", {"email": "nope"}, format="json").status_code == 400
    mail.outbox.clear()
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/widget/transcript", {"email": "jean@example.com"}, format="json")
        assert response.status_code == 202
    assert len(mail.outbox) == 3
    sent = mail.outbox[0]
    assert sent.to == ["jean@example.com"]
    assert "Here is your answer" in sent.body and "You: Jean" in sent.body
    assert "internal only" not in sent.body and "internal only" not in sent.alternatives[0][0]
    refused = client.post("/api/widget/transcript", {"email": "jean@example.com"}, format="json")
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert len(mail.outbox) == 3
    other_origin = APIClient()
    other_origin.credentials(HTTP_AUTHORIZATION=f"Bearer {session['token']}", HTTP_ORIGIN="https://evil.example")
    assert other_origin.post("/api/widget/transcript", {"email": "x@example.com"}, format="json").status_code == 403
