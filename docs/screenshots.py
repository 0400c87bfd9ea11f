"""The README's screenshots, taken from a running server with the demo data (`make run`), in Debian's Chromium:

    .venv/bin/python docs/screenshots.py [http://127.0.0.1:8000]

A visitor of the demo shop talks to the bot and asks for a human (over the widget API, as the widget does),
Alice answers and leaves a note in the inbox, then: docs/inbox.png (1280x720), docs/inbox-phone.png (390x844),
docs/widget.png (the demo shop with the widget open, 1280x720), and in French docs/inbox-fr.png (Bob's inbox in a
French browser) and docs/widget-fr.png (/demo/?lang=fr).
"""
import re
import sys
import types
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.test_inbox import Visitor  # noqa: E402 - after the path

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"


def sign_in(page, username="alice"):
    page.goto(BASE + "/inbox/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill("demo1234")
    page.locator("button[type=submit]").click()
    page.wait_for_selector("body.is-ready")
    page.wait_for_selector("#conn.is-online")


def main() -> None:
    server = types.SimpleNamespace(base=BASE, ws=BASE.replace("http", "ws", 1))
    visitor = Visitor(server, page="https://northwind.example/cart").start()
    visitor.walk_to_human("Nina", "Northwind")
    visitor.say("Hello! Will my order ship before Friday?")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        desk = browser.new_context(viewport={"width": 1280, "height": 720})
        page = desk.new_page()
        page.add_init_script("Notification.requestPermission = async () => 'default';")
        sign_in(page)
        page.locator(f'#conversation-list button.row[data-id="{visitor.conversation_id}"]').click()
        text = page.locator("#composer-text")
        text.fill("Hi Nina! Alice here. Your order leaves the warehouse tomorrow.")
        text.press("Enter")
        page.get_by_role("switch", name="Leave a note").click()
        text.fill("Returning customer: offer free shipping if she asks.")
        text.press("Enter")
        expect(page.locator("#timeline .msg--note", has_text="free shipping")).to_be_visible()
        page.locator("#notify-dismiss").click() if page.locator("#notify-dismiss").is_visible() else None
        page.mouse.click(700, 300)
        page.wait_for_timeout(600)
        page.screenshot(path=str(ROOT / "docs" / "inbox.png"))

        phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
        small = phone.new_page()
        sign_in(small)
        small.locator("#notify-dismiss").click() if small.locator("#notify-dismiss").is_visible() else None
        small.locator(f'#conversation-list button.row[data-id="{visitor.conversation_id}"]').click()
        expect(small.locator("#timeline .msg--note", has_text="free shipping")).to_be_visible()
        small.wait_for_timeout(600)
        small.screenshot(path=str(ROOT / "docs" / "inbox-phone.png"))

        shop = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        shop.goto(BASE + "/demo/?page=cart")
        shop.evaluate("([key, token]) => localStorage.setItem(key, JSON.stringify(token))",
                      ["lcw:demo-shop:token", visitor.token])
        shop.reload()
        widget = shop.locator("[data-livechat-widget]")
        widget.locator("button.l").click()
        expect(widget.get_by_text("leaves the warehouse tomorrow")).to_be_visible()
        widget.get_by_label("Your message").fill("Perfect, thank you!")
        widget.get_by_label("Your message").press("Enter")
        expect(widget.locator(".m.me:not(.pend)", has_text="Perfect, thank you!")).to_be_visible()
        shop.wait_for_timeout(600)
        shop.screenshot(path=str(ROOT / "docs" / "widget.png"))
        # In French: the inbox of an advisor whose browser asks for French, and the widget embedded with
        # data-lang="fr" (/demo/?lang=fr). The conversation's own words stay as they were written.
        french = browser.new_context(viewport={"width": 1280, "height": 720}, locale="fr-FR")
        page = french.new_page()
        page.add_init_script("Notification.requestPermission = async () => 'default';")
        sign_in(page, "bob")
        page.locator("#notify-dismiss").click() if page.locator("#notify-dismiss").is_visible() else None
        page.locator(f'#conversation-list button.row[data-id="{visitor.conversation_id}"]').click()
        expect(page.locator("#composer-text")).to_have_attribute("placeholder", re.compile("Répondre"))
        page.mouse.click(700, 300)
        page.wait_for_timeout(600)
        page.screenshot(path=str(ROOT / "docs" / "inbox-fr.png"))

        shop = french.new_page()
        shop.goto(BASE + "/demo/?page=cart&lang=fr")
        shop.evaluate("([key, token]) => localStorage.setItem(key, JSON.stringify(token))",
                      ["lcw:demo-shop:token", visitor.token])
        shop.reload()
        widget = shop.locator("[data-livechat-widget]")
        widget.locator("button.l").click()
        expect(widget.get_by_text("Perfect, thank you!")).to_be_visible()
        shop.wait_for_timeout(600)
        shop.screenshot(path=str(ROOT / "docs" / "widget-fr.png"))
        browser.close()
    visitor.close()
    print("docs/inbox.png, docs/inbox-phone.png, docs/widget.png, docs/inbox-fr.png, docs/widget-fr.png")


if __name__ == "__main__":
    main()
