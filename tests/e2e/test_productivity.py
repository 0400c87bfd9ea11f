"""Issue 16 in the browser: a canned response inserted with `/` (variables filled, a missing one selected), labels
on a conversation, and a search that opens the conversation at the matching item."""
import pytest
from playwright.sync_api import expect

from tests.e2e.test_inbox import (  # noqa: F401 - fixtures
    advisor_page,
    api_as,
    row,
    unique,
    visitors,
)

pytestmark = pytest.mark.e2e


def test_slash_inserts_a_canned_response_with_the_conversations_variables(
        live_server, advisor_page, visitors, context):  # noqa: F811 - fixtures
    admin = api_as(live_server, "admin")
    shortcut = unique("greet").lower().replace(" ", "")[:30]
    r = admin.post("/api/inbox/canned", json={"shortcut": shortcut, "scope": "account",
                                              "text": "Hello {{PRENOM}} from {{SOCIETE}}, order {{ORDER}}?"})
    assert r.status_code == 201, r.text
    name = unique("Slash")
    visitor = visitors().walk_to_human(name, "Initech")
    page, watch = advisor_page("alice")
    row(page, visitor.conversation_id).click()
    expect(page.locator("#timeline")).to_contain_text("Talk to a human")  # the thread is loaded
    text = page.locator("#composer-text")
    text.click()

    # "/" then part of the shortcut lists it; Escape closes the list and keeps the text
    text.type(f"/{shortcut[:4]}")
    options = page.locator("#canned-list [role=option]")
    expect(options.filter(has_text=f"/{shortcut}")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#canned-list")).to_be_hidden()
    expect(text).to_have_value(f"/{shortcut[:4]}")

    # typing on opens it again; arrows move, Enter inserts the chosen one instead of sending
    text.type(shortcut[4:])
    expect(options.first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    expect(page.locator("#canned-list")).to_be_hidden()
    expect(text).to_have_value(f"Hello {name} from Initech, order {{{{ORDER}}}}?")
    # the missing variable is named and selected: typing replaces it
    expect(page.locator("#canned-missing")).to_contain_text("{{ORDER}}")
    page.keyboard.type("42")
    expect(text).to_have_value(f"Hello {name} from Initech, order 42?")
    expect(page.locator("#canned-missing")).to_be_hidden()
    page.keyboard.press("Enter")
    visitor.wait_for(lambda f: f.get("type") == "message" and f["message"]["text"] == f"Hello {name} from Initech, "
                     "order 42?", "the canned reply")

    # in a note too
    page.locator("#note-toggle").click()
    text.type(f"/{shortcut}")
    page.keyboard.press("Enter")
    expect(text).to_have_value(f"Hello {name} from Initech, order {{{{ORDER}}}}?")
    assert page.locator("#composer").evaluate("f => f.classList.contains('is-note')")
    watch.assert_clean()

    # an advisor without a license sees no variables: the placeholders stay
    other = context.browser.new_context(viewport={"width": 1280, "height": 720})
    carol, carol_watch = advisor_page("carol", other)
    row(carol, visitor.conversation_id).click()
    expect(carol.locator("#timeline")).to_contain_text("Talk to a human")
    carol_text = carol.locator("#composer-text")
    carol_text.click()
    carol_text.type(f"/{shortcut}")
    expect(carol.locator("#canned-list [role=option]").first).to_be_visible()
    carol.keyboard.press("Enter")
    expect(carol_text).to_have_value("Hello {{PRENOM}} from {{SOCIETE}}, order {{ORDER}}?")
    carol_watch.assert_clean()
    other.close()


def test_search_then_open_at_the_matching_item(live_server, advisor_page, visitors):  # noqa: F811
    admin = api_as(live_server, "admin")
    label = unique("vip").lower().replace(" ", "")[:20]
    assert admin.post(f"/api/inbox/labels/{label}", json={"color": "#b42318"}).status_code == 201
    word = unique("Zeppelin").replace(" ", "")
    visitor = visitors().walk_to_human(unique("Search"), "Globex")
    for i in range(3):
        visitor.say(f"filler message {i}")
    visitor.say(f"My crème brûlée {word} arrived cold")
    for i in range(3):
        visitor.say(f"later message {i}")
    page, watch = advisor_page("alice")
    expect(row(page, visitor.conversation_id)).to_be_visible()

    # labels from the thread header show on the row
    row(page, visitor.conversation_id).click()
    page.locator("#act-labels").click()
    page.locator("#labels-menu [role=menuitemcheckbox]", has_text=label).click()
    expect(page.locator("#thread-labels")).to_contain_text(label)
    expect(row(page, visitor.conversation_id).locator(".label-chip")).to_have_text(label)
    page.keyboard.press("Escape")

    # "?" lists the shortcuts
    page.locator("#timeline-scroll").focus()
    page.keyboard.press("?")
    expect(page.locator("#shortcuts-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts-dialog")).to_be_hidden()

    # "/" on the list goes to the search; words in any order, accents and case ignored
    page.locator("#timeline-scroll").focus()
    page.keyboard.press("/")
    expect(page.locator("#search")).to_be_focused()
    page.keyboard.type(f"{word.upper()} creme BRULEE")
    result = page.locator(f'#search-results button.row[data-id="{visitor.conversation_id}"]')
    expect(result).to_be_visible()
    expect(result).to_contain_text("crème brûlée")
    expect(page.locator("#conversation-list")).to_be_hidden()
    result.click()
    found = page.locator("#timeline li.is-found")
    expect(found).to_contain_text(word)
    expect(found).to_be_in_viewport()

    # Escape leaves the search for the list; Ctrl+K comes back to it
    page.locator("#search").focus()
    page.keyboard.press("Escape")
    expect(page.locator("#conversation-list")).to_be_visible()
    page.keyboard.press("Control+k")
    expect(page.locator("#search")).to_be_focused()
    watch.assert_clean()


def test_the_visitor_asks_for_the_transcript_once_the_conversation_is_closed(live_server, page):
    from tests.e2e.test_widget import AdvisorApi, conversation_id, customer_page, escalate, open_widget, walk_bot

    page.goto(customer_page(live_server, "transcript.html"))
    panel = open_widget(page)
    walk_bot(page, unique("Mail"), "Hooli")
    escalate(page)
    form = panel.locator("form.tr")
    expect(form).to_be_hidden()  # not while the conversation is open
    advisor = AdvisorApi(live_server, "alice")
    try:
        advisor.call("POST", f"/api/inbox/conversations/{conversation_id(live_server, page)}/close")
    finally:
        advisor.close()
    expect(form).to_be_visible()
    form.get_by_label("Your e-mail for the transcript").fill("visitor@example.com")
    form.get_by_role("button").click()
    expect(form.get_by_role("button")).to_have_text("Sent ✓")
