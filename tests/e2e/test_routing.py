"""Routing in the inbox (issue 15, issue 14.5): the status chooser, the assign menu with the site's advisors and
their real status, "Alice is replying…", and the confirmation before replying to a colleague's conversation."""
import json
import re

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


def test_a_conversation_given_to_me_rings_when_a_rest_answer_brings_the_change_before_the_socket(
        live_server, context, advisor_page, visitors):  # noqa: F811
    """bob gives alice the conversation she has open: its "Alice joined" line reaches her thread, which marks it read,
    and the read's answer (the conversation, now hers) can come before the socket's frame of the same change. She is
    told all the same, once. Here the socket's conversation frames are held back until the read has answered."""
    held, holding = [], {"on": False}

    def through(route):
        server = route.connect_to_server()
        route.on_message(server.send)

        def from_server(message):
            frame = json.loads(message) if isinstance(message, str) else {}
            if holding["on"] and frame.get("type") == "conversation":
                held.append(message)
            else:
                route.send(message)

        server.on_message(from_server)
        holding["route"] = route

    context.route_web_socket(re.compile(r"/ws/inbox/"), through)
    alice, _ = advisor_page("alice")
    bob_api = api_as(live_server, "bob")
    shop = visitors()
    shop.walk_to_human(unique("Shop"), "Hooli")
    assert bob_api.post(f"/api/inbox/conversations/{shop.conversation_id}/take").status_code == 200
    row(alice, shop.conversation_id).click()
    expect(alice.locator("#thread-view")).to_contain_text("Bob joined the conversation")

    reads = []
    alice.on("response", lambda response: reads.append(response)
             if response.url.endswith(f"/api/inbox/conversations/{shop.conversation_id}/read") else None)
    before = calls(alice)
    holding["on"] = True
    assert bob_api.post(f"/api/inbox/conversations/{shop.conversation_id}/assign",
                        json={"advisor": "alice"}).status_code == 200
    wait_until(lambda: any((r.json().get("assigned") or {}).get("username") == "alice" for r in reads),
               "the thread's read answered with the conversation, now alice's", page=alice)
    assert held, "the socket's conversation frames were held back"
    wait_until(lambda: calls(alice)["notifications"] == before["notifications"] + 1, "assigned to you", page=alice)
    assert "was assigned to you" in alice.evaluate("() => window.__calls.notifications.at(-1).title")

    holding["on"] = False
    for message in held:  # the socket's frames, late: not news any more, so no second notification
        holding["route"].send(message)
    alice.wait_for_timeout(500)
    assert calls(alice)["notifications"] == before["notifications"] + 1
