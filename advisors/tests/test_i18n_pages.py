"""The login page, the invitation pages and the admin speak French when asked (Accept-Language, or the advisor's own
`language`, which wins); English stays the default. The French words checked are ours, not only Django's."""
import html
from pathlib import Path

import polib
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from advisors import security, services
from advisors.models import Account, Advisor
from chatbots.models import Sequence, Step
from conversations.models import Visitor

pytestmark = pytest.mark.django_db

FR = {"HTTP_ACCEPT_LANGUAGE": "fr-FR,fr;q=0.9"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}
CATALOGUE = Path(__file__).resolve().parents[2] / "locale" / "fr" / "LC_MESSAGES" / "django.po"


def text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def owner(demo) -> Client:
    """The demo account's owner (a staff user) signed in, with no language of their own: the browser's decides."""
    client = Client()
    client.force_login(demo.advisors["admin"].user)
    return client


def test_login_page_follows_the_browser_language(client):
    french = text(client.get("/accounts/login/", **FR))
    assert '<html lang="fr">' in french
    assert "Connectez-vous à votre boîte de réception" in french and "Nom d'utilisateur" in french
    assert "Mot de passe" in french and "Se connecter" in french
    english = text(client.get("/accounts/login/", **EN))
    assert '<html lang="en">' in english and "Sign in to your inbox" in english and "Connectez-vous" not in english
    # no Accept-Language at all: English
    assert "Sign in to your inbox" in text(client.get("/accounts/login/"))


def test_login_errors_and_the_throttle_message_are_french(demo, settings):
    settings.LOGIN_SLOW_AFTER = 100  # the lock alone
    security.login_attempt_succeeded(username="alice")
    wrong = Client().post("/accounts/login/", {"username": "alice", "password": "wrong"}, **FR)
    assert wrong.status_code == 200
    assert "Saisissez un nom d’utilisateur et un mot de passe valides" in text(wrong)  # Django's own catalogue
    for _ in range(settings.LOGIN_FAILURES_PER_USERNAME):
        Client().post("/accounts/login/", {"username": "alice", "password": "wrong"}, **FR)
    refused = Client().post("/accounts/login/", {"username": "alice", "password": "demo1234"}, **FR)
    assert refused.status_code == 429
    assert "Trop de tentatives de connexion échouées. Veuillez patienter" in text(refused)
    english = Client().post("/accounts/login/", {"username": "alice", "password": "demo1234"})
    assert "Too many failed sign-in attempts. Please wait" in text(english)


def test_invitation_page_its_errors_and_the_invalid_link_are_french(demo):
    account = Account.objects.get(name="Demo Company")
    link = services.invitation_create(account=account, email="dan@x.example")
    path = f"/invitations/{services.invitation_token(link.invitation)}"
    page = text(Client().get(path, **FR))
    assert "Rejoindre Demo Company" in page and "Choisissez un nom d'utilisateur et un mot de passe" in page
    assert "Confirmation du mot de passe" in page and "Au moins 8 caractères" in page
    refused = text(Client().post(path, {"username": "dan", "password": "a-long-enough-pass-42",
                                        "password_again": "another-long-pass-42"}, **FR))
    assert "Les deux mots de passe sont différents." in refused and "Veuillez vérifier les champs" in refused
    taken = text(Client().post(path, {"username": "alice", "password": "a-long-enough-pass-42",
                                      "password_again": "a-long-enough-pass-42"}, **FR))
    assert "Ce nom d'utilisateur est déjà pris." in taken
    invalid = Client().get("/invitations/forged-token", **FR)
    assert invalid.status_code == 410
    assert "Ce lien d'invitation n'est pas valide." in text(invalid) and "Connectez-vous" in text(invalid)
    assert "This invitation link is not valid." in text(Client().get("/invitations/forged-token"))


def test_used_invitation_says_so_in_french(demo):
    account = Account.objects.get(name="Demo Company")
    link = services.invitation_create(account=account, email="erin@x.example")
    token = services.invitation_token(link.invitation)
    services.invitation_accept(token=token, username="erin", password="a-long-enough-pass-42")
    assert "Cette invitation a déjà été utilisée." in text(Client().get(f"/invitations/{token}", **FR))


def test_advisors_list_in_the_admin_is_french_for_a_french_browser(owner):
    page = text(owner.get(reverse("admin:advisors_advisor_changelist"), **FR))
    # ours: the template, the columns, the action, the quota line
    for words in ("Vos collaborateurs", "Inviter un collaborateur", "Dernière activité", "Nom d'utilisateur / e-mail",
                  "Exporter les données du conseiller (JSON)", "licences attribuées sur", "Statut"):
        assert words in page, words
    assert "Your collaborators" not in page and "Last active" not in page
    # Django's own admin is French too
    assert "Déconnexion" in page or "Se déconnecter" in page


def test_site_change_form_labels_help_texts_and_errors_are_french(owner, demo):
    url = reverse("admin:advisors_site_change", args=[demo.sites["shop"].pk])
    page = text(owner.get(url, **FR))
    for words in ("Mode chat en direct uniquement", "Sans chatbot : les conversations commencent",
                  "Origines autorisées", "Une origine par ligne", "Demander aux visiteurs d'évaluer les conversations",
                  "Modification de site"):
        assert words.replace(" :", "\u00a0:") in page, words
    refused = owner.post(url, {"account": demo.sites["shop"].account_id, "name": "Shop", "key": "demo-shop",
                               "color": "blue", "allowed_origins": "https://shop.example.com/path"}, **FR)
    assert refused.status_code == 200
    errors = text(refused)
    assert "Écrivez la couleur sous la forme #rrggbb." in errors
    assert "n'est pas une origine\u00a0: ni chemin" in errors


def test_an_advisor_who_chose_french_gets_the_french_admin_whatever_the_browser(owner, demo):
    url = reverse("admin:advisors_advisor_changelist")
    assert "Your collaborators" in text(owner.get(url, **EN))
    Advisor.objects.filter(pk=demo.advisors["admin"].pk).update(language="fr")
    from advisors.selectors import advisor_language_forget

    advisor_language_forget(demo.advisors["admin"].user_id)
    page = text(owner.get(url, **EN))
    assert "Vos collaborateurs" in page and "Your collaborators" not in page
    invite = text(owner.get(reverse("admin:advisors_invitation_add"), **EN))
    assert "Inviter un collaborateur" in invite and "Attribuer une licence quand l'invitation est acceptée" in invite


def test_admin_messages_and_actions_are_french(owner, demo, django_capture_on_commit_callbacks):
    Visitor.objects.create(site=demo.sites["shop"], token_hash="0" * 64, last_seen_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post(reverse("admin:advisors_invitation_add"),
                              {"account": demo.sites["shop"].account_id, "email": "fay@x.example",
                               "display_name": "Fay"}, follow=True, **FR)
    assert "Invitation envoyée à fay@x.example." in text(response)
    visitors = text(owner.get(reverse("admin:conversations_visitor_changelist"), **FR))
    assert "Effacer les données du visiteur" in visitors and "Exporter les données du visiteur (JSON)" in visitors


def test_flow_editor_shows_step_kinds_and_text_labels_in_french(owner, demo):
    sequence = Sequence.objects.filter(steps__kind="escalate").first() or Sequence.objects.first()
    assert Step.objects.filter(sequence__chatbot=sequence.chatbot).exists()
    page = text(owner.get(reverse("admin:chatbots_sequence_change", args=[sequence.pk]), **FR))
    assert ">transfert à un humain</option>" in page and ">définir une variable</option>" in page
    assert "Question au-dessus des boutons\u00a0:" in page  # data-text-labels, read by chatbots/flow_editor.js
    assert "boutons (de l'étape boutons qui termine la séquence)" in page.lower()
    english = text(owner.get(reverse("admin:chatbots_sequence_change", args=[sequence.pk]), **EN))
    assert ">set variable</option>" in english and "Question above the buttons:" in english


def test_the_french_catalogue_has_no_empty_or_fuzzy_entry():
    catalogue = polib.pofile(str(CATALOGUE))
    assert catalogue.metadata["Language"] == "fr"
    assert catalogue.metadata["Plural-Forms"] == "nplurals=2; plural=(n > 1);"
    assert [e.msgid for e in catalogue.untranslated_entries()] == []
    assert [e.msgid for e in catalogue.fuzzy_entries()] == []
