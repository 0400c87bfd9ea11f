"""No serious or critical axe-core violation on the inbox (a conversation open, a note, the side panel) and on the
widget open on the demo shop (issue 14, point 12)."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.axe import axe_violations, describe
from tests.e2e.test_inbox import (  # noqa: F401 - fixtures
    advisor_page,
    row,
    unique,
    visitors,
)
from tests.e2e.test_widget import AdvisorApi, conversation_id, escalate, log, open_widget, walk_bot

pytestmark = pytest.mark.e2e


def test_the_inbox_with_a_conversation_a_note_and_the_side_panel_passes_axe(live_server, advisor_page, visitors):  # noqa: F811
    visitor = visitors(page="https://shop.example.com/pricing")
    visitor.walk_to_human(unique("Axe"), "Acme")
    visitor.say("Hello, is anyone there?")
    waiting = visitors(site="demo-blog")  # another one, unassigned and unread: the Waiting pill, the badges
    waiting.walk_to_human(unique("Wait"), "Blog Inc")
    page, watch = advisor_page("alice")
    expect(row(page, waiting.conversation_id)).to_have_class(re.compile(r"\bis-unread\b"))
    row(page, visitor.conversation_id).click()
    expect(page.locator("#timeline .msg--note")).to_have_count(1)
    page.locator("#composer-text").fill("I am here, let me check.")
    page.locator("#composer-text").press("Enter")
    expect(page.locator("#timeline .msg--advisor", has_text="let me check")).to_be_visible()
    page.get_by_role("switch", name="Leave a note").click()
    page.locator("#composer-text").fill("Private: a returning customer.")
    page.locator("#composer-text").press("Enter")
    expect(page.locator("#timeline .msg--note", has_text="returning customer")).to_be_visible()
    page.get_by_role("switch", name="Leave a note").click()  # the yellow composer, as an advisor writing a note
    expect(page.locator("#side-panel")).to_be_visible()
    violations = axe_violations(page)
    assert not violations, describe(violations)
    watch.assert_clean()


def test_the_widget_open_on_the_demo_shop_passes_axe(live_server, page):
    # given the demo shop's widget, open, through the bot to an advisor's answer
    page.goto(live_server.base + "/demo/")
    open_widget(page)
    walk_bot(page, "Ada", "Lovelace Ltd")
    escalate(page)
    alice = AdvisorApi(live_server)
    cid = conversation_id(live_server, page)
    alice.take(cid)
    alice.call("POST", f"/api/inbox/conversations/{cid}/messages",
               json={"client_id": unique("a"), "text": "Hello Ada!"})
    expect(log(page)).to_contain_text("Hello Ada!")
    # then axe finds nothing serious on the page, the widget included (its shadow root is open)
    violations = axe_violations(page)
    assert not violations, describe(violations)
