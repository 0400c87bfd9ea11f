"""Issue 19 in the browser: the inbox and the reports page in French, from the browser's Accept-Language or from the
advisor's own choice in the settings (CONTRACT section 7, "Languages"), dates and times included."""
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polib
import pytest
from playwright.sync_api import expect

from tests.e2e.axe import axe_violations, describe
from tests.e2e.conftest import screenshot
from tests.e2e.test_inbox import (  # noqa: F401 - fixtures
    PASSWORD,
    STEP_S,
    Watch,
    api_as,
    row,
    unique,
    visitors,
)

pytestmark = pytest.mark.e2e

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "fr" / "LC_MESSAGES"
TIME_ZONE = "Europe/Paris"
# CLDR's abbreviated French months, as Intl writes them with {dateStyle: "medium"}.
MONTHS_FR = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."]

# Every string of the page that can be read, said or hovered: visible lines, and the attributes people get.
READABLE = """() => {
  const out = document.body.innerText.split("\\n").map((line) => line.trim()).filter(Boolean);
  for (const el of document.querySelectorAll("[title], [aria-label], [placeholder], [alt]")) {
    if (el.closest("[hidden]")) continue;
    for (const name of ["title", "aria-label", "placeholder", "alt"]) {
      const value = el.getAttribute(name);
      if (value) out.push(value.trim());
    }
  }
  out.push(document.title);
  return out;
}"""


def english_only():
    """The English strings of the inbox's catalogues whose French differs: none may show on a French page."""
    words = set()
    for name in ("django.po", "djangojs.po"):
        for entry in polib.pofile(str(LOCALE / name)):
            forms = [(entry.msgid, entry.msgstr)] if not entry.msgid_plural else [
                (entry.msgid, entry.msgstr_plural.get(0, "")), (entry.msgid_plural, entry.msgstr_plural.get(1, ""))]
            for english, french in forms:
                if "%(" not in english and english.strip() != french.strip() and len(english.strip()) > 2:
                    words.add(english.strip())
    return words


def untranslated(page):
    return sorted(set(page.evaluate(READABLE)) & english_only())


def french_medium(iso):
    """What `Intl.DateTimeFormat("fr", {dateStyle: "medium", timeStyle: "short"})` writes, built here on its own:
    "1 déc. 2026, 14:05" in Paris time."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(TIME_ZONE))
    return f"{moment.day} {MONTHS_FR[moment.month - 1]} {moment.year}, {moment:%H:%M}"


def new_context(browser, locale):
    return browser.new_context(viewport={"width": 1280, "height": 800}, locale=locale, timezone_id=TIME_ZONE)


def sign_in(page, server, username):
    """The login form by its fields, whatever language it speaks; then the inbox, ready and connected."""
    page.goto(server.base + "/inbox/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/inbox/"))
    ready(page)


def ready(page):
    expect(page.locator("body.is-ready")).to_have_count(1, timeout=STEP_S * 1000)
    expect(page.locator("#conn.is-online")).to_have_count(1, timeout=STEP_S * 1000)


def choose_language(page, code):
    """Settings -> Language -> Apply: saved, then the page loads again in that language."""
    page.locator("#settings-open").click()
    dialog = page.locator("#settings-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("#settings-language").select_option(code)
    with page.expect_navigation():
        dialog.locator("#settings-language").locator("xpath=..").locator("button[type=submit]").click()
    ready(page)


def test_a_french_browser_gets_the_inbox_in_french_with_french_times(live_server, browser, visitors):  # noqa: F811
    # given a visitor waiting for a human, and alice, who never chose a language, with a French browser
    api_as(live_server, "alice").patch("/api/inbox/me", json={"language": ""}).raise_for_status()
    name = unique("Amélie")
    visitor = visitors().walk_to_human(name, "Société Test")
    context = new_context(browser, "fr-FR")
    page = context.new_page()
    watch = Watch(page)

    # when she signs in
    sign_in(page, live_server, "alice")

    # then the header, the boxes, the filter and the rail speak French
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator(".sidebar__title")).to_have_text("Boîte de réception")
    expect(page.locator('.box[data-box="closed"] .box__label')).to_have_text("Fermées")
    expect(page.locator('#filter option[value="unassigned"]')).to_contain_text("Non attribuées")
    expect(page.locator('#filter option[value="mine"]')).to_contain_text("Les miennes")
    expect(page.locator(".rail__form button")).to_have_attribute("title", "Se déconnecter")
    expect(page.locator("#search")).to_have_attribute("placeholder", "Rechercher…")
    expect(page.locator("#me-status")).to_contain_text("En ligne")
    expect(page.locator("#conn")).to_have_attribute("aria-label", "Connecté")

    # the visitor's row: the waiting pill and a relative time in French
    conversation = row(page, visitor.conversation_id)
    expect(conversation).to_contain_text("En attente")
    expect(conversation.locator("time")).to_have_text(re.compile(r"^(à l’instant|\d+ min)$"))

    # and the open conversation: actions, composer, day separator and times the French way
    conversation.click()
    expect(page.locator("#timeline")).to_contain_text("Talk to a human")  # the bot's own words stay the flow's
    expect(page.locator("#act-take")).to_have_text("Prendre")
    expect(page.locator("#act-assign")).to_have_text("Attribuer…")
    expect(page.locator("#composer-text")).to_have_attribute("placeholder", re.compile(rf"^Répondre à {name}.*…$"))
    expect(page.locator("#send-btn")).to_have_text("Envoyer")
    expect(page.locator("#composer-hint")).to_have_text("Entrée : envoyer · Maj+Entrée : à la ligne")
    expect(page.locator("#lead-bar")).to_contain_text("En attente d’un conseiller")
    expect(page.locator("#timeline .day").first).to_have_text("Aujourd’hui")
    first_time = page.locator("#timeline li.msg time").first
    iso = first_time.get_attribute("datetime")
    expect(first_time).to_have_attribute("title", french_medium(iso))
    expect(first_time).to_have_text(re.compile(r"^\d{2}:\d{2}$"))  # 24-hour clock, no AM/PM
    expect(page.locator("#side-panel")).to_contain_text("Première visite")
    # the longer French actions and the open details panel leave the visitor's name room to be read
    expect(page.locator("#thread-name")).to_contain_text(name)
    assert page.locator("#thread-name").bounding_box()["width"] >= 120

    # the reply goes out from the French composer and reads as a French toast after taking
    page.locator("#act-take").click()
    expect(page.locator("#toasts")).to_contain_text("Vous avez pris cette conversation.")
    assert untranslated(page) == []
    violations = axe_violations(page)
    assert not violations, describe(violations)
    screenshot(page, "inbox-french")
    watch.assert_clean()
    context.close()


def test_an_advisor_who_picks_french_gets_it_whatever_the_browser_then_back_to_english(live_server, browser):
    bob = api_as(live_server, "bob")
    bob.patch("/api/inbox/me", json={"language": ""}).raise_for_status()
    context = new_context(browser, "en-US")
    page = context.new_page()
    watch = Watch(page)
    try:
        # given bob with an English browser, in an English inbox whose settings offer the languages by their own names
        sign_in(page, live_server, "bob")
        expect(page.locator(".sidebar__title")).to_have_text("Inbox")
        assert {"Sign out", "Search…", "Inbox"} <= set(untranslated(page))  # what the check below looks for
        page.locator("#settings-open").click()
        options = page.locator("#settings-language option")
        expect(options).to_have_text(["Browser's language", "English", "Français"])
        expect(page.locator("#settings-language")).to_have_value("")
        page.keyboard.press("Escape")

        # when he picks Français
        choose_language(page, "fr")

        # then the page came back in French, and so does any page he opens later
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.locator(".sidebar__title")).to_have_text("Boîte de réception")
        expect(page.locator("#composer-hint")).to_have_text("Entrée : envoyer · Maj+Entrée : à la ligne")
        assert bob.get("/api/inbox/me").json()["language"] == "fr"
        page.reload()
        ready(page)
        expect(page.locator('.box[data-box="closed"] .box__label')).to_have_text("Fermées")
        page.locator("#settings-open").click()
        expect(page.locator("#settings-dialog h2")).to_have_text("Paramètres")
        expect(page.locator("#settings-language")).to_have_value("fr")
        expect(page.locator("#settings-language option").first).to_have_text("Langue du navigateur")
        assert untranslated(page) == []
        violations = axe_violations(page, include="#settings-dialog")
        assert not violations, describe(violations)
        page.keyboard.press("Escape")

        # and picking English brings the English inbox back
        choose_language(page, "en")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator(".sidebar__title")).to_have_text("Inbox")
        expect(page.locator('.box[data-box="closed"] .box__label')).to_have_text("Closed")
        assert bob.get("/api/inbox/me").json()["language"] == "en"

        # the browser's language again: English here, since the browser is
        choose_language(page, "")
        expect(page.locator(".sidebar__title")).to_have_text("Inbox")
        assert bob.get("/api/inbox/me").json()["language"] == ""
        watch.assert_clean()
    finally:
        bob.patch("/api/inbox/me", json={"language": ""})
        context.close()


def test_the_reports_page_in_french(live_server, browser):
    api_as(live_server, "alice").patch("/api/inbox/me", json={"language": ""}).raise_for_status()
    context = new_context(browser, "fr-FR")
    page = context.new_page()
    watch = Watch(page)
    sign_in(page, live_server, "alice")

    page.locator('a.rail__item[href="/inbox/reports/"]').click()
    expect(page).to_have_url(re.compile(r"/inbox/reports/"))
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page).to_have_title("Rapports")
    expect(page.locator("h1")).to_contain_text("Rapports")
    expect(page.locator("h1")).to_contain_text("vos propres chiffres")  # alice is not staff
    expect(page.locator("#filters button[type=submit]")).to_have_text("Afficher")
    expect(page.locator("#csv")).to_have_text("Exporter en CSV")
    expect(page.locator("#timezone-note")).to_have_text("Les jours sont comptés dans le fuseau horaire du compte.")
    cards = page.locator(".rp-card")
    expect(cards.filter(has_text="Commencées")).to_have_count(1)
    # French agreement: 0 and 1 take the singular
    escalated_closed = re.compile(r"^([01] transférée|([2-9]|\d\d+) transférées), ([01] fermée|([2-9]|\d\d+) fermées)$")
    expect(cards.filter(has_text="Commencées").locator(".rp-card__sub")).to_have_text(escalated_closed)
    expect(cards.filter(has_text="Première réponse")).to_contain_text("médiane · 90 % en moins de")
    expect(page.locator("#csat-chart")).to_contain_text("Très bien")
    expect(page.locator("#advisors-title")).to_have_text("Conseillers")

    # the days of the chart and its table are written the French way ("1 déc.", "1 déc. 2026")
    first_day = page.locator("#by-day-chart table tbody tr td").first
    expect(first_day).to_have_text(re.compile(r"^\d{1,2} (" + "|".join(map(re.escape, MONTHS_FR)) + r") \d{4}$"))
    assert untranslated(page) == []
    screenshot(page, "reports-french")
    watch.assert_clean()
    context.close()
