"""Routing in the inbox (issue 15, issue 14.5): the status chooser, the assign menu with the site's advisors and
their real status, "Alice is replying…", and the confirmation before replying to a colleague's conversation."""
import pytest
from playwright.sync_api import expect

from tests.e2e.test_inbox import (  # noqa: F401 - fixtures
    advisor_page,
    api_as,
    calls,
    row,
    unique,
    visitors,
    wait_until,
)

pytestmark = pytest.mark.e2e


def test_status_assign_menu_replying_and_the_confirmation(live_server, browser, advisor_page,  # noqa: F811
                                                           visitors):  # noqa: F811
    alice, alice_watch = advisor_page("alice")
    bob_context = browser.new_context(viewport={"width": 1280, "height": 720})
    bob, bob_watch = advisor_page("bob", bob_context)
    alice_api, bob_api = api_as(live_server, "alice"), api_as(live_server, "bob")
    blog, shop = visitors(site="demo-blog"), visitors()
    blog.walk_to_human(unique("Blog"), "Initech")
    shop.walk_to_human(unique("Shop"), "Hooli")

    # the status chooser beside the avatar: online, then away (the API agrees), then online again
    status = alice.locator("#me-status")
    expect(status).to_have_attribute("data-status", "online")
    status.click()
    expect(status).to_have_attribute("data-status", "away")
    assert alice_api.get("/api/inbox/me").json()["status"] == "away"
    status.click()
    expect(status).to_have_attribute("data-status", "online")

    # the assign menu of a blog conversation: the blog's advisors only (bob works on the shop), real statuses
    row(alice, blog.conversation_id).click()
    alice.locator("#act-assign").click()
    menu = alice.locator("#assign-menu")
    expect(menu.get_by_role("menuitemradio", name="Alice")).to_be_visible()
    expect(menu.get_by_role("menuitemradio", name="Bob")).to_have_count(0)
    expect(menu.get_by_role("menuitemradio", name="Alice")).to_contain_text("online")
    alice.keyboard.press("Escape")

    # bob takes the shop conversation; alice starts typing there: bob sees who is replying, on the row and thread
    assert bob_api.post(f"/api/inbox/conversations/{shop.conversation_id}/take").status_code == 200
    row(bob, shop.conversation_id).click()
    row(alice, shop.conversation_id).click()
    alice.locator("#composer-text").fill("Let me check")
    alice.locator("#composer-text").press("k")
    expect(bob.locator("#typing-text")).to_have_text("Alice is replying…")
    expect(row(bob, shop.conversation_id)).to_contain_text("Alice is replying…")

    # replying to bob's conversation asks first: the first send says so and sends nothing; a second one sends
    alice.locator("#composer-text").press("Enter")
    expect(alice.locator("#composer-hint")).to_have_text("Bob has this conversation: send again to reply anyway.")
    alice.wait_for_timeout(500)
    assert not any(m["text"].startswith("Let me check") for m in shop.messages())
    alice.locator("#composer-text").press("Enter")
    wait_until(lambda: any(m["text"].startswith("Let me check") for m in shop.messages()),
               "the reply reached the visitor")

    # a conversation given to alice by someone else: a notification "assigned to you" (and a sound)
    before = calls(alice)
    answer = bob_api.post(f"/api/inbox/conversations/{blog.conversation_id}/assign", json={"advisor": "alice"})
    assert answer.status_code == 404  # bob does not work on the blog: he cannot see it
    assert bob_api.post(f"/api/inbox/conversations/{shop.conversation_id}/assign",
                        json={"advisor": "alice"}).status_code == 200
    wait_until(lambda: calls(alice)["notifications"] == before["notifications"] + 1, "assigned to you", page=alice)
    wait_until(lambda: calls(alice)["plays"] == before["plays"] + 1, "a sound for it", page=alice)
    alice_watch.assert_clean()
    bob_watch.assert_clean()
    bob_context.close()
