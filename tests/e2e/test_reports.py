"""CSAT and reports in real Chromium: a visitor rates from the widget with the keyboard, and the advisor sees the
rating in the inbox thread and on the reports page."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_widget import (
    PASSWORD,
    AdvisorApi,
    conversation_id,
    customer_page,
    escalate,
    log,
    open_widget,
    panel,
    walk_bot,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def alice(live_server):
    advisor = AdvisorApi(live_server, "alice")
    yield advisor
    advisor.close()


@pytest.fixture
def page_errors(page):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_a_visitor_rates_from_the_widget_and_the_advisor_sees_it_in_the_report(live_server, browser, page,
                                                                               page_errors, alice):
    # given a visitor whose conversation alice answered and closed
    page.goto(customer_page(live_server, "rate.html"))
    open_widget(page)
    walk_bot(page, "Rita", "Rated Inc")
    escalate(page)
    cid = conversation_id(live_server, page)
    alice.take(cid)
    alice.reply(cid, "Glad to help, Rita")
    expect(log(page)).to_contain_text("Glad to help, Rita")
    alice.call("POST", f"/api/inbox/conversations/{cid}/close")

    # when the widget asks, and the visitor answers with the keyboard only
    faces = panel(page).get_by_role("group", name="How was this conversation?")
    expect(faces).to_be_visible()
    panel(page).get_by_role("radio", name="1 out of 5, very bad").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect(panel(page).get_by_role("radio", name="4 out of 5, good")).to_be_checked()
    page.keyboard.press("Tab")
    page.keyboard.type("Quick and kind")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")

    # then the widget thanks, the question is gone, and the inbox has the event and the rating
    expect(panel(page).get_by_role("status").filter(has_text="Thank you for your rating.")).to_be_visible()
    expect(faces).to_be_hidden()
    assert alice.history(cid)[-1]["text"] == "Rated 4/5: Quick and kind"
    assert alice.call("GET", f"/api/inbox/conversations/{cid}")["rating"] == {"score": 4, "comment": "Quick and kind"}
    assert not page_errors

    # and alice finds it from the inbox on the reports page, among her own figures
    inbox = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    inbox.goto(live_server.base + "/inbox/")
    inbox.get_by_label("Username").fill("alice")
    inbox.get_by_label("Password").fill(PASSWORD)
    inbox.get_by_role("button", name="Sign in").click()
    expect(inbox.get_by_role("link", name="Reports")).to_be_visible()
    inbox.get_by_role("link", name="Reports").click()
    expect(inbox).to_have_url(re.compile(r"/inbox/reports/"))
    satisfaction = inbox.locator(".rp-card").filter(has_text="Satisfaction")
    expect(satisfaction).to_contain_text("4 / 5")
    expect(satisfaction).to_contain_text("1 rating")
    expect(inbox.locator("#advisors-table")).to_contain_text("Alice")
    expect(inbox.locator("#by-day-chart svg[role=img]")).to_have_count(1)
    expect(inbox.locator("#csv")).to_have_attribute("href", re.compile(r"format=csv"))
    screenshot(inbox, "reports")
    csv = inbox.request.get(live_server.base + inbox.locator("#csv").get_attribute("href"))
    assert csv.status == 200 and csv.text().startswith("date,started,escalated,closed")
    inbox.context.close()
