"""English and French (CONTRACT section 7, "Languages"): who gets which language, through the real services."""
import pytest
from django.core import mail
from rest_framework.test import APIClient

from advisors import services as advisor_services
from conversations import services
from conversations.models import Conversation, Visitor
from conversations.tests.conftest import ORIGIN, escalated, new_id
from routing.models import DEFAULT_AWAY_MESSAGE

pytestmark = pytest.mark.django_db

NO_SUCH_CONVERSATION = "/api/inbox/conversations/999999999"


def widget_session(language: str | None) -> dict:
    headers = {"HTTP_ORIGIN": ORIGIN, **({"HTTP_ACCEPT_LANGUAGE": language} if language else {})}
    response = APIClient().post("/api/widget/sessions", {"site": "demo-shop"}, format="json", **headers)
    assert response.status_code == 201, response.content
    return response.json()


def test_an_advisor_picks_french_and_the_api_answers_in_french(api_as):
    alice = api_as("alice")
    assert alice.get("/api/inbox/me").json()["language"] == ""
    assert alice.get(NO_SUCH_CONVERSATION).json()["detail"] == "No such conversation."

    assert alice.patch("/api/inbox/me", {"language": "fr"}, format="json").json()["language"] == "fr"
    answer = alice.get(NO_SUCH_CONVERSATION)
    assert answer.json() == {"code": "not_found", "detail": "Cette conversation n'existe pas."}
    assert answer["Content-Language"] == "fr"
    # the code stays the contract's: only the words change
    refused = alice.get("/api/inbox/conversations?box=nope").json()
    assert refused["code"] == "bad_request" and refused["detail"].startswith("box doit valoir")

    # "" goes back to the browser's language
    alice.patch("/api/inbox/me", {"language": ""}, format="json")
    assert alice.get(NO_SUCH_CONVERSATION, HTTP_ACCEPT_LANGUAGE="en-GB").json()["detail"] == "No such conversation."
    assert alice.get(NO_SUCH_CONVERSATION, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").json()["detail"] == \
        "Cette conversation n'existe pas."


def test_an_unknown_language_is_refused_and_changes_nothing(demo, api_as):
    alice = api_as("alice")
    alice.patch("/api/inbox/me", {"language": "fr"}, format="json")
    for wrong in ("de", "FR", "fr-FR", 3, None, "<script>"):
        response = alice.patch("/api/inbox/me", {"language": wrong}, format="json")
        assert response.status_code == 400, wrong
        assert response.json()["code"] == "bad_request"
        assert "language" in response.json()["fields"]
    demo.advisors["alice"].refresh_from_db()
    assert demo.advisors["alice"].language == "fr"


def test_the_advisors_choice_wins_over_the_browser_in_a_session(demo, client, django_capture_on_commit_callbacks):
    client.force_login(demo.advisors["alice"].user)
    page = client.get("/inbox/", HTTP_ACCEPT_LANGUAGE="fr")
    assert '<html lang="fr">' in page.content.decode() and "/jsi18n/?lang=fr" in page.content.decode()

    with django_capture_on_commit_callbacks(execute=True):  # the choice is cached, and forgotten as it commits
        client.patch("/api/inbox/me", {"language": "en"}, content_type="application/json", HTTP_ACCEPT_LANGUAGE="fr")
    page = client.get("/inbox/", HTTP_ACCEPT_LANGUAGE="fr")
    assert '<html lang="en">' in page.content.decode()
    assert page["Content-Language"] == "en"
    # the same session's API calls follow the choice too
    assert client.get(NO_SUCH_CONVERSATION, HTTP_ACCEPT_LANGUAGE="fr").json()["detail"] == "No such conversation."


def test_one_advisor_gets_the_escalation_email_in_french_the_others_in_english(
        demo, django_capture_on_commit_callbacks):
    alice = demo.advisors["alice"]
    advisor_services.advisor_update_preferences(advisor=alice, language="fr")
    with django_capture_on_commit_callbacks(execute=True):
        escalated()
    by_address = {message.to[0]: message for message in mail.outbox}
    french = by_address["alice@demo.example"]
    assert french.subject == "[Shop] Jean (ACME) demande à parler à un conseiller"
    assert french.body.startswith("Bonjour Alice,") and "Ouvrir la conversation :" in french.body
    assert "Ouvrir la conversation</a>" in french.alternatives[0][0]
    english = by_address["bob@demo.example"]
    assert english.subject == "[Shop] Jean (ACME) asks for a human" and "Open the conversation:" in english.body


def test_a_french_visitor_reads_events_and_gets_the_transcript_in_french(demo, django_capture_on_commit_callbacks):
    session = widget_session("fr-FR,fr;q=0.9,en;q=0.5")
    visitor = Visitor.objects.get(pk=session["visitor"]["id"])
    assert visitor.language == "fr"
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="Jean")
    conversation = Conversation.objects.get(visitor=visitor)
    alice = demo.advisors["alice"]  # English: the line is the visitor's, stored once for everyone
    services.conversation_take(conversation_id=conversation.pk, advisor=alice)
    services.conversation_close(conversation_id=conversation.pk, advisor=alice)
    events = list(conversation.messages.filter(kind="event").values_list("text", flat=True))
    assert events == ["Alice a rejoint la conversation", "Alice a fermé la conversation"]

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {session['token']}", HTTP_ORIGIN=ORIGIN)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/widget/transcript", {"email": "jean@example.com"}, format="json").status_code == 202
    (sent,) = mail.outbox
    assert sent.subject == "Votre conversation avec Shop"
    assert "Vous: Jean" in sent.body and "Conversation n°" in sent.body
    assert '<html lang="fr">' in sent.alternatives[0][0]


def test_a_visitor_with_an_english_or_unknown_browser_stays_in_english(demo):
    for header in (None, "de-DE,de;q=0.9", "en-US"):
        visitor = Visitor.objects.get(pk=widget_session(header)["visitor"]["id"])
        assert visitor.language == "en", header


def test_the_visitor_language_follows_the_widget_when_it_comes_back(demo):
    first = widget_session("en")
    again = APIClient().post("/api/widget/sessions", {"site": "demo-shop", "token": first["token"]}, format="json",
                             HTTP_ORIGIN=ORIGIN, HTTP_ACCEPT_LANGUAGE="fr")
    assert again.status_code == 200
    assert Visitor.objects.get(pk=first["visitor"]["id"]).language == "fr"


def test_the_default_away_message_is_the_one_marked_for_translation(demo):
    """The away message is translated only while it is ours (routing.services.away_send compares the two)."""
    from django.utils import translation

    with translation.override("fr"):
        from django.utils.translation import gettext

        french = gettext(DEFAULT_AWAY_MESSAGE)
    assert french != DEFAULT_AWAY_MESSAGE and french.startswith("Personne de notre équipe")


def test_the_invitation_email_is_worded_in_the_inviters_language(demo, django_capture_on_commit_callbacks):
    from django.utils import translation

    account = demo.sites["shop"].account
    with translation.override("fr"), django_capture_on_commit_callbacks(execute=True):
        advisor_services.invitation_create(account=account, email="dan@example.com", sites=[demo.sites["shop"]],
                                           licensed=False)
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        advisor_services.invitation_create(account=account, email="eve@example.com", sites=[demo.sites["shop"]])
    by_address = {message.to[0]: message for message in mail.outbox}
    assert by_address["dan@example.com"].subject.startswith("Vous êtes invité")
    assert f"répondre aux visiteurs de {account.name} sur Shop." in by_address["dan@example.com"].body
    assert by_address["eve@example.com"].subject.startswith("You are invited")
    assert f"answer visitors of {account.name} on Shop." in by_address["eve@example.com"].body
