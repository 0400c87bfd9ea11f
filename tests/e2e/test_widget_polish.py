"""The widget as visitors meet it (issue 14): the composer keeps its size, refused files are said plainly."""
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_widget import customer_page, open_widget, panel, say

pytestmark = pytest.mark.e2e


def box_of(locator) -> dict:
    return locator.evaluate("e => { const r = e.getBoundingClientRect(); return {top: r.top, height: r.height}; }")


def test_the_composer_keeps_its_height_after_a_send(live_server, page):
    page.goto(customer_page(live_server, "composer.html"))
    open_widget(page)
    form = panel(page).locator("form.f")
    box = panel(page).get_by_label("Your message")
    expect(panel(page).locator(".log .b", has_text="first name")).to_be_visible()
    page.wait_for_timeout(300)
    before = box_of(form)
    textarea_before = box_of(box)
    screenshot(page, "widget-composer-before")

    say(page, "Jean")
    expect(panel(page).locator(".log .b", has_text="Which company")).to_be_visible()
    page.wait_for_timeout(300)
    screenshot(page, "widget-composer-after")
    assert box_of(box)["height"] == textarea_before["height"]
    assert box_of(form) == before
