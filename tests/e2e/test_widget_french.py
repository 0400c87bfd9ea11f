"""The widget in French (issue 19): from the embed's data-lang, else from the browser's language.

The bot's texts are the flow's own (the demo bot speaks English): only the widget's words change."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_widget import (
    AdvisorApi,
    W,
    conversation_id,
    customer_page,
    launcher,
    log,
    open_widget,
    panel,
    status,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def bob(live_server):
    """Bob, not alice: the reports test counts alice's ratings on the same server."""
    advisor = AdvisorApi(live_server, "bob")
    yield advisor
    advisor.close()

NBSP = "\u00a0"


def root_lang(page) -> str:
    return page.evaluate(f"() => document.querySelector('{W}').shadowRoot.querySelector('.w').lang")


def api_languages(page, live_server) -> list[str]:
    """The Accept-Language of every widget API call the page makes from now on."""
    seen = []
    page.on("request", lambda r: seen.append(r.headers.get("accept-language", "")) if r.url.startswith(
        live_server.base + "/api/widget/") and r.method != "OPTIONS" else None)
    return seen


def say(page, text: str):
    box = panel(page).get_by_label("Votre message")
    box.fill(text)
    box.press("Enter")


def walk_bot_in_french(page, first: str, company: str):
    """The demo bot asks in English (its flow's words); the widget around it speaks French."""
    expect(log(page)).to_contain_text("Hi! I'm the Demo bot. What's your first name?")
    expect(status(page)).to_have_text("Connecté")
    say(page, first)
    expect(log(page)).to_contain_text(f"Nice to meet you, {first}! Which company are you with?")
    say(page, company)
    expect(panel(page).get_by_role("button", name="Talk to a human")).to_be_visible()


def test_the_demo_in_french_from_the_first_word_to_the_rating(live_server, page, bob):
    # given: the demo shop asking for the French widget, in an English browser
    assert page.evaluate("navigator.language").startswith("en")
    languages = api_languages(page, live_server)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.base}/demo/?lang=fr")

    # then: the launcher is French before the panel is even loaded, and says what it is in French
    expect(launcher(page)).to_have_attribute("aria-label", "Ouvrir la discussion")
    assert root_lang(page) == "fr"

    # when: the visitor opens it and talks to the bot
    open_widget(page)
    expect(launcher(page)).to_have_attribute("aria-label", "Fermer la discussion")
    expect(page.get_by_role("dialog", name="Discussion avec Shop")).to_be_visible()
    composer = panel(page).get_by_label("Votre message")
    expect(composer).to_have_attribute("placeholder", "Écrivez un message…")
    expect(panel(page).get_by_role("button", name="Envoyer", exact=True)).to_be_visible()
    expect(panel(page).get_by_role("button", name="Joindre une image")).to_be_visible()
    expect(panel(page).get_by_role("button", name="Réduire la discussion")).to_be_visible()
    expect(log(page)).to_have_attribute("aria-label", "Messages")
    walk_bot_in_french(page, "Jeanne", "Dupont SA")
    expect(log(page).locator(".m.me .sr").first).to_have_text(f"Vous avez dit{NBSP}:")

    # a message over the limit is refused in French, before anything is sent
    composer.fill("x" * 4001)
    composer.press("Enter")
    expect(panel(page).locator(".er")).to_have_text(
        f"Votre message est trop long{NBSP}: 4000 caractères au maximum (4001 actuellement).")
    composer.fill("")

    # escalation: the widget's status line is French, the flow's own button label stays the flow's
    panel(page).get_by_role("button", name="Talk to a human").click()
    expect(panel(page).locator(".sub")).to_have_text("En attente d’un conseiller…")
    expect(panel(page).get_by_role("button", name="Back to chatbot")).to_be_visible()

    # an advisor answers: the time is written the French way (Intl), the reply is announced in French
    cid = conversation_id(live_server, page)
    bob.take(cid)
    bob.reply(cid, "Bonjour Jeanne, Bob à votre service.")
    reply = log(page).locator(".m.adv").last
    expect(reply).to_contain_text("Bonjour Jeanne")
    expect(reply.locator(".who .sr")).to_have_text(f" a dit{NBSP}:")
    stamp = reply.locator("time")
    shown, sent_at = stamp.inner_text(), stamp.get_attribute("datetime")
    assert shown == page.evaluate(
        "ts => new Date(ts).toLocaleString('fr', {hour: '2-digit', minute: '2-digit'})", sent_at)
    assert re.fullmatch(r"\d\d:\d\d", shown), shown
    assert not re.search(r"AM|PM", stamp.get_attribute("title") or "")

    # closed with the panel folded: the unread count and the rating question are French
    panel(page).get_by_role("button", name="Réduire la discussion").click()
    bob.reply(cid, "Je clôture, bonne journée.")
    expect(launcher(page)).to_have_attribute("aria-label", "Ouvrir la discussion, 1 message non lu")
    bob.reply(cid, "À bientôt.")
    expect(launcher(page)).to_have_attribute("aria-label", "Ouvrir la discussion, 2 messages non lus")
    bob.call("POST", f"/api/inbox/conversations/{cid}/close")
    launcher(page).click()
    expect(panel(page).get_by_role("group", name=f"Comment s’est passé cet échange{NBSP}?")).to_be_visible()
    panel(page).get_by_role("button", name="Envoyer la note").click()
    expect(panel(page).locator(".er")).to_have_text("Choisissez d’abord un visage, de 1 à 5.")
    panel(page).locator("label", has_text="4 sur 5, bon").click()
    expect(panel(page).get_by_role("radio", name="4 sur 5, bon")).to_be_checked()
    panel(page).get_by_role("button", name="Envoyer la note").click()
    expect(panel(page).get_by_role("status").filter(has_text="Merci pour votre note.")).to_be_visible()
    expect(panel(page).get_by_role("button", name="M’envoyer la transcription")).to_be_visible()
    screenshot(page, "widget-french")

    # every API call asked for French, whatever the browser's own language
    assert languages and set(languages) == {"fr"}, languages
    assert not errors, errors


def test_a_french_browser_gets_the_french_widget_without_data_lang(live_server, browser):
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.goto(customer_page(live_server, "french-browser.html"))

        expect(launcher(page)).to_have_attribute("aria-label", "Ouvrir la discussion")
        open_widget(page)
        expect(status(page)).to_have_text("Connecté")
        expect(panel(page).get_by_label("Votre message")).to_have_attribute("placeholder", "Écrivez un message…")
        expect(panel(page).get_by_role("button", name="Envoyer", exact=True)).to_be_visible()
        assert root_lang(page) == "fr"
    finally:
        context.close()


def test_data_lang_en_wins_over_a_french_browser(live_server, browser):
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        languages = api_languages(page, live_server)
        page.goto(f"{live_server.base}/demo/?lang=en")
        assert page.evaluate("navigator.language") == "fr-FR"

        expect(launcher(page)).to_have_attribute("aria-label", "Open chat")
        open_widget(page)
        expect(status(page)).to_have_text("Connected")
        expect(panel(page).get_by_label("Your message")).to_have_attribute("placeholder", "Write a message…")
        expect(panel(page).get_by_role("button", name="Send", exact=True)).to_be_visible()
        expect(page.get_by_role("dialog", name="Chat with Shop")).to_be_visible()
        assert root_lang(page) == "en"
        assert languages and set(languages) == {"en"}, languages
    finally:
        context.close()
