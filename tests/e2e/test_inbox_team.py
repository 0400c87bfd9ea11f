"""The inbox as a busy support team meets it (issue 14): sounds, links across the login, the chatbot box,
the small things that looked wrong."""
import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.test_inbox import (  # noqa: F401 - fixtures
    PASSWORD,
    Watch,
    advisor_page,
    api_as,
    calls,
    row,
    unique,
    visitors,
    wait_until,
)

pytestmark = pytest.mark.e2e


def held_by(page, conversation_id):
    return page.evaluate("(id) => window.inbox.store.conversations.get(id)?.assigned?.username || null",
                         conversation_id)


def test_sound_rings_for_escalations_assignments_and_my_conversations_not_colleagues(
        live_server, advisor_page, visitors):  # noqa: F811 - fixtures of test_inbox
    page, watch = advisor_page("alice")
    bob_api = api_as(live_server, "bob")
    plays = calls(page)["plays"]

    # given a new escalation: one sound
    visitor = visitors()
    visitor.walk_to_human(unique("Ring"), "Initech")
    expect(row(page, visitor.conversation_id)).to_be_visible()
    wait_until(lambda: calls(page)["plays"] == plays + 1, "one sound for the escalation")
    time.sleep(0.5)
    assert calls(page)["plays"] == plays + 1, "one escalation, one sound"

    # when a colleague takes it, the visitor's messages are the colleague's to hear
    assert bob_api.post(f"/api/inbox/conversations/{visitor.conversation_id}/take").status_code == 200
    wait_until(lambda: held_by(page, visitor.conversation_id) == "bob", "bob's conversation", page=page)
    visitor.say("a question for Bob")
    expect(row(page, visitor.conversation_id)).to_contain_text("a question for Bob")
    time.sleep(0.5)
    assert calls(page)["plays"] == plays + 1, "no sound for a colleague's conversation"

    # when the colleague gives it to me: a sound, and then for every visitor message
    r = bob_api.post(f"/api/inbox/conversations/{visitor.conversation_id}/assign", json={"advisor": "alice"})
    assert r.status_code == 200, r.text
    wait_until(lambda: calls(page)["plays"] == plays + 2, "a sound for the assignment to me", page=page)
    time.sleep(0.5)  # a burst of frames within a few hundred ms is one event, one sound
    visitor.say("now for Alice")
    wait_until(lambda: calls(page)["plays"] == plays + 3, "a sound for a message in my conversation", page=page)

    # taking one myself is no news: no sound for that
    other = visitors()
    other.walk_to_human(unique("Mine"), "Hooli")
    wait_until(lambda: calls(page)["plays"] == plays + 4, "a sound for the second escalation", page=page)
    time.sleep(0.5)
    row(page, other.conversation_id).click()
    page.get_by_role("button", name="Take", exact=True).click()
    expect(page.locator("#thread-assignee")).to_have_attribute("title", "Assigned to you")
    time.sleep(1)
    assert calls(page)["plays"] == plays + 4, "no sound for my own take"
    watch.assert_clean()


def test_a_conversation_link_survives_the_login(live_server, page, visitors):  # noqa: F811 - fixtures of test_inbox
    # given the escalation e-mail's link, opened while signed out
    visitor = visitors()
    name = unique("Link")
    visitor.walk_to_human(name, "Globex")
    watch = Watch(page)
    page.goto(f"{live_server.base}/inbox/#conversation-{visitor.conversation_id}")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/inbox/#conversation-\d+$"))

    # when the advisor signs in, after one wrong password (the form is posted twice)
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # then the inbox opens on that conversation
    expect(page).to_have_url(f"{live_server.base}/inbox/#conversation-{visitor.conversation_id}")
    expect(page.locator("#thread-name")).to_have_text(f"{name} (Globex)")
    watch.assert_clean()


def test_the_chatbot_box_shows_what_the_bot_answered_as_answered_and_read(live_server, advisor_page, visitors):  # noqa: F811 - fixtures of test_inbox
    page, watch = advisor_page("alice")
    page.get_by_role("button", name=re.compile("Chatbot")).click()

    # a visitor talks with the bot while the box is open: live frames
    visitor = visitors()
    visitor.wait_for(visitor.asked_for("PRENOM"), "the first-name prompt")
    visitor.say(unique("Bot"))
    visitor.wait_for(visitor.asked_for("SOCIETE"), "the company prompt")
    conv_row = row(page, visitor.conversation_id)
    expect(conv_row).to_contain_text("Which company")
    expect(conv_row).not_to_have_class(re.compile(r"\bis-(unread|unanswered)\b"))
    expect(conv_row.locator(".avatar.is-unanswered")).to_have_count(0)

    # and as the API lists it
    page.reload()
    expect(page.locator("body.is-ready")).to_have_count(1)
    page.get_by_role("button", name=re.compile("Chatbot")).click()
    expect(conv_row).to_be_visible()
    expect(conv_row).not_to_have_class(re.compile(r"\bis-(unread|unanswered)\b"))
    expect(conv_row.locator(".avatar.is-unanswered")).to_have_count(0)
    watch.assert_clean()


def test_the_side_panel_follows_the_visitor_to_another_page(live_server, advisor_page, visitors):  # noqa: F811 - fixtures of test_inbox
    visitor = visitors(page="https://shop.example.com/")
    visitor.walk_to_human(unique("Nav"), "Acme")
    page, watch = advisor_page("alice")
    row(page, visitor.conversation_id).click()
    page_row = page.locator("#side-panel .facts__row", has_text="Page").locator("a")
    expect(page_row).to_have_attribute("href", "https://shop.example.com/")
    expect(page.locator("#timeline .msg--note", has_text="asked for a human")).to_be_visible()
    wait_until(lambda: not page.evaluate("window.inbox.pane.loading || window.inbox.pane.reading"),
               "the conversation loaded and read", page=page)
    page.wait_for_timeout(1000)  # nothing else in flight that could bring the new page by chance

    # the widget starts its session again on every page the visitor opens
    r = httpx.post(live_server.base + "/api/widget/sessions", headers={"Origin": "http://127.0.0.1:8000"},
                   json={"site": "demo-shop", "token": visitor.token, "page": "https://shop.example.com/cart"})
    assert r.status_code == 200, r.text
    expect(page_row).to_have_attribute("href", "https://shop.example.com/cart")
    watch.assert_clean()


def test_site_tabs_and_chips_wear_the_sites_colours(live_server, advisor_page, visitors):  # noqa: F811 - fixtures of test_inbox
    visitor = visitors()
    visitor.walk_to_human(unique("Colour"), "Acme")
    page, watch = advisor_page("alice")  # alice has both demo sites: Shop #2563eb, Blog #16a34a
    shop = page.get_by_role("tab", name=re.compile("Shop")).locator(".site-tab__dot")
    blog = page.get_by_role("tab", name=re.compile("Blog")).locator(".site-tab__dot")
    expect(shop).to_have_css("background-color", "rgb(37, 99, 235)")
    expect(blog).to_have_css("background-color", "rgb(22, 163, 74)")
    chip = row(page, visitor.conversation_id).locator(".site-chip")
    expect(chip).to_have_css("color", re.compile(r"rgb\(28, 74, 176\)|color\(srgb"))
    # the logo is the product's mark, with no dot that reads as a badge
    logo = page.locator(".rail__logo img")
    svg = httpx.get(live_server.base + logo.get_attribute("src")).text
    assert "#f0700f" not in svg
    watch.assert_clean()


def test_a_file_that_is_not_an_image_is_refused_plainly_in_the_inbox(live_server, advisor_page, visitors,  # noqa: F811
                                                                     tmp_path):
    visitor = visitors()
    visitor.walk_to_human(unique("File"), "Acme")
    page, watch = advisor_page("alice")
    row(page, visitor.conversation_id).click()
    expect(page.locator("#thread-name")).to_contain_text("Acme")

    # a text file renamed .png: refused on the spot, nothing attached
    page.locator("#attach-input").set_input_files({"name": "notes.png", "mimeType": "image/png",
                                                   "buffer": b"this is plain text, not an image"})
    expect(page.locator("#toasts .toast")).to_have_text(
        "This file is not an image we can send: use JPEG, PNG, GIF or WebP under 10 MB.")
    expect(page.locator("#attachment")).to_be_hidden()

    # a file that starts like a PNG but is not one: the server says why in plain words, and offers no Retry
    page.locator("#attach-input").set_input_files({"name": "broken.png", "mimeType": "image/png",
                                                   "buffer": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64})
    expect(page.locator("#attachment")).to_be_visible()
    page.get_by_role("button", name="Send", exact=True).click()
    failed = page.locator("#timeline-pending .is-failed")
    expect(failed).to_contain_text("Not sent: The file is not an image we can read. Send a JPEG, PNG, GIF or WebP")
    expect(failed).not_to_contain_text("Error")
    expect(failed.get_by_role("button", name="Retry")).to_have_count(0)
    expect(failed.get_by_role("button", name="Discard")).to_be_visible()
    watch.problems = [p for p in watch.problems if "415" not in p]  # the browser logs the refused POST
    watch.assert_clean()


def picture(width=480, height=360, color=(200, 80, 40)) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def distance_from_end(page) -> float:
    return page.evaluate("() => { const s = document.getElementById('timeline-scroll');"
                         " return s.scrollHeight - s.scrollTop - s.clientHeight; }")


def test_a_thread_with_images_opens_at_its_end_and_keeps_following(live_server, advisor_page, visitors):  # noqa: F811
    visitor = visitors()
    visitor.walk_to_human(unique("Pics"), "Acme")
    for n in range(4):
        r = httpx.post(live_server.base + "/api/widget/images", headers={"Authorization": f"Bearer {visitor.token}",
                                                                        "Origin": "http://127.0.0.1:8000"},
                       data={"client_id": f"pic-{n}-{unique('')}"},
                       files={"image": (f"p{n}.png", picture(color=(40 * n, 80, 40)), "image/png")})
        assert r.status_code == 201, r.text
    visitor.say("and here is my question")

    page, watch = advisor_page("alice")
    row(page, visitor.conversation_id).click()
    expect(page.locator("#timeline .bubble__text", has_text="and here is my question")).to_be_visible()
    page.wait_for_function("() => [...document.querySelectorAll('#timeline img.bubble__image')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    page.wait_for_timeout(300)
    assert distance_from_end(page) < 5, "opened at the end of the thread"
    expect(page.locator("#new-below")).to_be_hidden()

    # and it keeps following what arrives
    visitor.say("one more thing")
    expect(page.locator("#timeline .bubble__text", has_text="one more thing")).to_be_visible()
    wait_until(lambda: distance_from_end(page) < 5, "still at the end", page=page)
    expect(page.locator("#new-below")).to_be_hidden()
    watch.assert_clean()
