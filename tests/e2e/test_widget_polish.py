"""The widget as visitors meet it (issue 14): the composer keeps its size, refused files are said plainly."""
import contextlib

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


def attach(page, path):
    with page.expect_file_chooser() as chooser:
        panel(page).get_by_role("button", name="Attach an image").click()
    chooser.value.set_files(str(path))


def test_a_text_file_named_png_is_refused_plainly_before_anything_is_sent(live_server, page, tmp_path):
    page.goto(customer_page(live_server, "refused.html"))
    open_widget(page)
    expect(panel(page).locator(".log .b", has_text="first name")).to_be_visible()
    fake = tmp_path / "holiday.png"
    fake.write_text("this is plain text, not an image")

    attach(page, fake)

    expect(panel(page).locator(".er")).to_have_text(
        "This file is not an image we can send: use JPEG, PNG, GIF or WebP under 10 MB.")
    expect(panel(page).locator(".pv")).to_be_hidden()
    expect(panel(page).get_by_role("button", name="Send image")).to_be_hidden()
    expect(panel(page).locator(".log .m.me")).to_have_count(0)
    screenshot(page, "widget-refused-file")


def test_a_refused_file_stays_said_when_the_history_finishes_loading(live_server, page, tmp_path):
    """The widget clears its own start-up error once history has loaded; it must not clear the visitor's."""
    held = []

    def hold_later_pages(route):
        if "after=0&" in route.request.url:
            route.continue_()
        else:
            held.append(route)

    page.route("**/api/widget/messages?*", hold_later_pages)
    page.goto(customer_page(live_server, "refused-while-loading.html"))
    open_widget(page)
    expect(panel(page).locator(".log .b", has_text="first name")).to_be_visible()
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the history's second page was never asked for"
    fake = tmp_path / "holiday.png"
    fake.write_text("this is plain text, not an image")

    try:
        attach(page, fake)
        expect(panel(page).locator(".er")).to_have_text(
            "This file is not an image we can send: use JPEG, PNG, GIF or WebP under 10 MB.")
        held.pop().continue_()

        expect(panel(page)).to_have_attribute("data-s", "online")
        expect(panel(page).locator(".er")).to_have_text(
            "This file is not an image we can send: use JPEG, PNG, GIF or WebP under 10 MB.")
        expect(panel(page).locator(".er")).to_be_visible()
    finally:
        # No request is left held when the page closes (a page may ask again while one waits): a route never
        # answered is one more thing the browser's teardown would wait on.
        page.unroute_all(behavior="ignoreErrors")
        for route in held:
            with contextlib.suppress(Exception):
                route.continue_()


def test_images_arrive_in_view_in_the_widget(live_server, page, tmp_path):
    import io

    from PIL import Image

    from tests.e2e.test_widget import AdvisorApi, conversation_id, escalate, log, walk_bot

    def picture(color):
        out = io.BytesIO()
        Image.new("RGB", (400, 400), color).save(out, "PNG")
        return out.getvalue()

    page.goto(customer_page(live_server, "pictures.html"))
    open_widget(page)
    walk_bot(page, "Ida", "Imago")
    escalate(page)
    alice = AdvisorApi(live_server, "alice")
    try:
        cid = conversation_id(live_server, page)
        alice.take(cid)
        # the visitor's own image
        own = tmp_path / "own.png"
        own.write_bytes(picture((37, 99, 235)))
        attach(page, own)
        panel(page).get_by_role("button", name="Send image").click()
        expect(log(page).locator(".m.me:not(.pend) .b img")).to_have_count(1)
        # then an advisor's
        r = alice.http.post(f"/api/inbox/conversations/{cid}/messages", data={"client_id": "e2e-pic"},
                            files={"image": ("red.png", picture((220, 38, 38)), "image/png")})
        assert r.status_code == 201, r.text
        expect(log(page).locator(".m.adv .b img")).to_have_count(1)
        page.wait_for_function("() => [...document.querySelector('[data-livechat-widget]').shadowRoot"
                               ".querySelectorAll('.log .b img')].every(i => i.complete && i.naturalWidth > 0)")
        page.wait_for_timeout(300)
        gap = log(page).evaluate("l => l.scrollHeight - l.scrollTop - l.clientHeight")
        assert gap < 5, f"the log ends {gap}px below its view"
        screenshot(page, "widget-images-in-view")
    finally:
        alice.close()
