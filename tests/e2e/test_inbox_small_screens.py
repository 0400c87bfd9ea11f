"""The inbox on a phone and on a small laptop (issue 14, point 8)."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.axe import axe_violations, describe
from tests.e2e.test_inbox import (  # noqa: F401 - fixtures
    Watch,
    login,
    row,
    unique,
    visitors,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def sized_page(live_server, browser):
    contexts = []

    def open_at(width, height, username="alice"):
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        watch = Watch(page)
        login(page, live_server, username)
        return page, watch

    yield open_at
    for context in contexts:
        context.close()


def fits_on_one_line(page, selector) -> dict:
    return page.evaluate("""(sel) => {
        const el = document.querySelector(sel);
        const r = el.getBoundingClientRect();
        const line = parseFloat(getComputedStyle(el).lineHeight) || 18;
        return {width: r.width, height: r.height, line, clipped: el.scrollWidth > el.clientWidth + 1,
                text: el.textContent};
    }""", selector)


def test_on_a_phone_the_list_then_the_thread_with_a_back_button(live_server, sized_page, visitors):  # noqa: F811
    first = unique("Phone")
    visitor = visitors()
    visitor.walk_to_human(first, "Acme")
    visitor.say("Are you there? I am on my phone too.")
    page, watch = sized_page(390, 844)

    # the list fills the screen; no conversation pane beside it
    conv_row = row(page, visitor.conversation_id)
    expect(conv_row).to_be_visible()
    assert conv_row.bounding_box()["width"] > 300
    expect(page.locator("#thread")).to_be_hidden()

    # opening a conversation shows it, on screen, at its end
    conv_row.click()
    expect(page.locator("#thread-name")).to_have_text(f"{first} (Acme)")
    expect(page.locator("#thread-name")).to_be_in_viewport()
    expect(page.locator("#conversation-list")).to_be_hidden()
    expect(page.locator("#timeline .msg--in", has_text="on my phone too")).to_be_in_viewport()
    expect(page.locator("#side-panel")).to_be_hidden()  # the details wait to be asked for
    text = page.get_by_label("Reply")
    expect(text).to_be_in_viewport()
    text.fill("Yes, I am here.")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#timeline .msg--advisor", has_text="Yes, I am here.")).to_be_in_viewport()
    visitor.wait_for(lambda f: f.get("type") == "message" and f["message"].get("text") == "Yes, I am here.",
                     "the reply sent from the phone")

    # the details open over the conversation and close again
    page.get_by_role("button", name="Show visitor details").click()
    expect(page.locator("#side-panel")).to_be_in_viewport()
    page.keyboard.press("Escape")
    expect(page.locator("#side-panel")).to_be_hidden()

    violations = axe_violations(page)
    assert not violations, describe(violations)

    # back to the list, on the row just left
    page.get_by_role("button", name="Back to the conversations").click()
    expect(conv_row).to_be_in_viewport()
    expect(conv_row).to_be_focused()
    expect(page.locator("#thread")).to_be_hidden()
    expect(page).not_to_have_url(re.compile("#conversation-"))

    # the phone's own back button does the same, and stays in the inbox
    conv_row.click()
    expect(page.locator("#thread-name")).to_be_in_viewport()
    page.go_back()
    expect(conv_row).to_be_in_viewport()
    expect(page.locator("#thread")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/inbox/$"))
    watch.assert_clean()


def test_on_a_1024_pixel_laptop_the_name_shows_and_the_hint_keeps_one_line(
        live_server, sized_page, visitors):  # noqa: F811
    first = unique("Laptop")
    visitor = visitors()
    visitor.walk_to_human(first, "Acme Corporation")
    page, watch = sized_page(1024, 768)
    expect(page.locator("#conversation-list")).to_be_visible()
    row(page, visitor.conversation_id).click()
    name = page.locator("#thread-name")
    expect(name).to_have_text(f"{first} (Acme Corporation)")
    expect(page.locator("#timeline .msg--note", has_text="asked for a human")).to_be_visible()
    shown = fits_on_one_line(page, "#thread-name")
    assert shown["width"] > 150 and not shown["clipped"], shown
    hint = fits_on_one_line(page, "#composer-hint")
    assert hint["text"].startswith("Enter to send") and not hint["clipped"], hint
    assert hint["height"] < 2 * hint["line"], hint
    for action in ("Take", "Assign to…", "Close"):
        expect(page.get_by_role("button", name=action, exact=True)).to_be_in_viewport()

    # the visitor's details are a drawer: asked for, they come over the thread without squeezing it
    toggle = page.get_by_role("button", name="Show visitor details")
    expect(page.locator("#side-panel")).to_be_hidden()
    toggle.click()
    panel = page.locator("#side-panel")
    expect(panel).to_be_in_viewport()
    expect(panel.locator(".facts__row", has_text="PRENOM")).to_contain_text(first)
    assert not fits_on_one_line(page, "#thread-name")["clipped"]
    panel.get_by_role("button", name="Hide visitor details").click()
    expect(panel).to_be_hidden()
    watch.assert_clean()
