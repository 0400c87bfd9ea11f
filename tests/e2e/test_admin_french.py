"""The admin in French for a French browser (issue 19): what only a browser shows, the flow editor's labels, which
chatbots/flow_editor.js writes from the server's translated labels when a step's kind changes."""
import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.e2e.test_admin_team import admin_login, shell, shown, step_box
from tests.e2e.test_inbox import Watch

pytestmark = pytest.mark.e2e

NBSP = "\u00a0"


@pytest.fixture
def french_admin(live_server, browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="fr-FR")
    page = context.new_page()
    watch = Watch(page)
    admin_login(page, live_server)
    yield page, watch
    context.close()


def test_the_flow_editor_labels_each_steps_text_in_french(live_server, french_admin):
    page, watch = french_admin
    name = f"Robot {secrets.token_hex(3)}"
    chatbot_id = shell(live_server, (
        "import copy; from chatbots.demo import DEMO_FLOW; from chatbots.services import flow_import; "
        f"d = copy.deepcopy(DEMO_FLOW); d['name'] = '{name}'; print(flow_import(data=d).pk)"))
    page.goto(f"{live_server.base}/admin/chatbots/sequence/?chatbot__id__exact={chatbot_id}")
    expect(page.locator("h1")).to_contain_text("séquence")  # our model's name in Django's French title
    page.get_by_role("link", name="human", exact=True).click()
    escalate = step_box(page, "escalate")
    # the step kinds and the labels of the text field, from the French catalogue, Django's suffix included
    expect(escalate.locator("select[name$='-kind'] option:checked")).to_have_text("transfert à un humain")
    expect(escalate.locator(".field-text label")).to_have_text(f"Message au visiteur{NBSP}:")
    expect(escalate.locator(".field-assign_to label")).to_have_text(f"Attribuer à{NBSP}:")
    expect(escalate.locator("[id$=-return_to_helptext]")).to_contain_text("où ramène le bouton de retour au chatbot")
    # a step whose kind changes is relabelled at once by the script
    note = step_box(page, "note")
    expect(note.locator(".field-text label")).to_have_text(f"Note pour le conseiller{NBSP}:")
    note.locator("select[name$='-kind']").select_option("input")
    changed = step_box(page, "input")
    expect(changed.locator(".field-text label")).to_have_text(f"Question{NBSP}:")
    assert shown(changed, "variable") and shown(changed, "input_type") and not shown(changed, "assign_to")
    assert changed.locator("select[name$='-input_type'] option").all_inner_texts() == [
        "---------", "texte", "e-mail", "nombre"]
    watch.assert_clean()


def test_the_advisors_page_and_the_invitation_form_are_french(live_server, french_admin):
    page, watch = french_admin
    page.goto(live_server.base + "/admin/advisors/advisor/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", name="Vos collaborateurs")).to_be_visible()
    expect(page.locator("#result_list thead")).to_contain_text("Dernière activité")
    page.get_by_role("link", name="Inviter un collaborateur").click()
    expect(page).to_have_url(re.compile(r"/admin/advisors/invitation/add/"))
    expect(page.locator("h1")).to_have_text("Inviter un collaborateur")
    expect(page.locator(".field-licensed")).to_contain_text("Attribuer une licence quand l'invitation est acceptée")
    watch.assert_clean()
