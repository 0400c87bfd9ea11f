"""The embeddable widget in real Chromium (issue 6): a customer page on a second origin embeds /widget.js.

The advisor side is driven through the inbox REST API (and its socket for typing), as an integrator would.
"""
import gzip
import io
import json
import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e

W = "[data-livechat-widget]"
PASSWORD = "demo1234"
EVIL_IMG = "<img src=x onerror=alert(1)>"
EVIL_SCRIPT = "<script>alert(2)</script>"
LOADER_BUDGET = 3 * 1024
TOTAL_BUDGET = 20 * 1024


# ------------------------------------------------------------------------------ helpers



def customer_page(live_server, name: str, *, site: str = "demo-shop", head: str = "", body: str = "") -> str:
    """Write a customer's HTML page on the second origin and return its URL."""
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Customer page {name}</title>{head}</head>
<body><h1>A customer's page</h1><p><a href="#top">A link of the host page</a></p>{body}
<script src="{live_server.base}/widget.js" data-site="{site}" async></script>
</body></html>"""
    (live_server.page_root / name).write_text(html, encoding="utf-8")
    return f"{live_server.page_origin}/{name}"


class AdvisorApi:
    """An advisor using the inbox REST API with a DRF token."""

    def __init__(self, live_server, username: str = "alice"):
        self.live_server = live_server
        self.http = httpx.Client(base_url=live_server.base, timeout=30)
        r = self.http.post("/api/auth/token", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.token = r.json()["token"]
        self.http.headers["Authorization"] = f"Token {self.token}"

    def call(self, method: str, path: str, **kwargs):
        r = self.http.request(method, path, **kwargs)
        assert r.status_code < 300, f"{method} {path} -> {r.status_code} {r.text[:300]}"
        return r.json()

    def take(self, cid: int):
        return self.call("POST", f"/api/inbox/conversations/{cid}/take")

    def reply(self, cid: int, text: str):
        return self.call("POST", f"/api/inbox/conversations/{cid}/messages",
                         json={"client_id": f"e2e-{time.monotonic_ns()}", "text": text, "kind": "text"})["message"]

    def history(self, cid: int) -> list[dict]:
        items, after = [], 0
        while True:
            page = self.call("GET", f"/api/inbox/conversations/{cid}/messages", params={"after": after})["messages"]
            if not page:
                return items
            items += page
            after = page[-1]["seq"]

    def close(self):
        self.http.close()


@pytest.fixture
def alice(live_server):
    advisor = AdvisorApi(live_server, "alice")
    yield advisor
    advisor.close()


@pytest.fixture
def page_errors(page):
    """Uncaught errors of the host page (the widget must never throw into it)."""
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def widget(page):
    return page.locator(W)


def launcher(page):
    return widget(page).locator("button.l")


def panel(page):
    return widget(page).locator("section.p")


def open_widget(page):
    launcher(page).click()
    expect(panel(page)).to_be_visible()
    return panel(page)


def say(page, text: str):
    box = panel(page).get_by_label("Your message")
    box.fill(text)
    box.press("Enter")


def log(page):
    return panel(page).locator(".log")


def bubbles(page, who: str) -> list[str]:
    """The texts shown in the widget for one kind of sender: me, bot, adv (acknowledged items only)."""
    return log(page).locator(f".m.{who}:not(.pend):not(.fail) .b").all_inner_texts()


def status(page):
    return panel(page).locator(".st")


def token_of(page, site: str = "demo-shop") -> str | None:
    return page.evaluate(f"JSON.parse(localStorage.getItem('lcw:{site}:token'))")


def conversation_id(live_server, page, site: str = "demo-shop") -> int:
    r = httpx.post(f"{live_server.base}/api/widget/sessions", json={"site": site, "token": token_of(page, site)})
    assert r.status_code == 200, r.text
    return r.json()["conversation"]["id"]


def walk_bot(page, first: str, company: str):
    """The demo bot's questions through the UI, up to the menu."""
    expect(log(page)).to_contain_text("Hi! I'm the Demo bot. What's your first name?")
    expect(status(page)).to_have_text("Connected")
    say(page, first)
    expect(log(page)).to_contain_text(f"Nice to meet you, {first}! Which company are you with?")
    say(page, company)
    expect(log(page)).to_contain_text(f"How can I help, {first}?")
    expect(panel(page).get_by_role("button", name="Talk to a human")).to_be_visible()


def escalate(page):
    panel(page).get_by_role("button", name="Talk to a human").click()
    expect(log(page)).to_contain_text("I'm connecting you with an advisor…")
    expect(panel(page).get_by_role("button", name="Back to chatbot")).to_be_visible()
    expect(panel(page).locator(".sub")).to_have_text("Waiting for an advisor…")


def gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=6))


def png_bytes(color=(37, 99, 235)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, format="PNG")
    return out.getvalue()


# ------------------------------------------------------------------------------ the journey


def test_bot_journey_escalation_advisor_reply_and_back_to_bot_on_a_second_origin(
        live_server, context, page, page_errors, alice):
    # given: a customer page on another origin, and a record of what the widget fetches from the server
    loaded, encodings = {}, {}
    api_calls = []

    def on_response(response):
        url = response.url
        if not url.startswith(live_server.base):
            return
        path = url[len(live_server.base):]
        if path.startswith("/api/"):
            api_calls.append(path)
        elif not path.startswith("/media/"):
            encodings[path] = response.headers.get("content-encoding")
            try:
                loaded[path] = response.body()
            except Exception:  # noqa: BLE001  (a body Chromium did not keep; sizes are also unit-tested)
                pass

    page.on("response", on_response)
    page.goto(customer_page(live_server, "journey.html"))

    # the launcher is drawn; the panel code loads when the page is idle; the API is not called yet
    expect(launcher(page)).to_be_visible()
    expect(launcher(page)).to_have_attribute("aria-label", "Open chat")
    page.wait_for_function("() => !!(window.LivechatWidget && window.LivechatWidget.mount)")
    page.wait_for_timeout(300)
    assert api_calls == [], f"the widget called the API before being opened: {api_calls}"

    # when: the visitor opens it
    open_widget(page)
    expect(panel(page).locator("h2")).to_have_text("Shop")
    expect(launcher(page)).to_have_attribute("aria-expanded", "true")
    assert page.evaluate(f"() => getComputedStyle(document.querySelector('{W}').shadowRoot"
                         ".querySelector('.h')).backgroundColor") == "rgb(37, 99, 235)"

    # then: the whole bot journey through the UI
    walk_bot(page, "Jean", "ACME")
    panel(page).get_by_role("button", name="Pricing").click()
    expect(log(page)).to_contain_text("Plans start at 29 €/month.")
    expect(panel(page).get_by_role("button", name="Talk to a human")).to_be_visible()
    escalate(page)

    # an advisor takes it and replies: name in the header, reply with the advisor's name
    cid = conversation_id(live_server, page)
    alice.take(cid)
    expect(panel(page).locator(".sub")).to_have_text("Alice")
    alice.reply(cid, "Hello Jean, Alice here. See https://example.com/pricing?x=1.")
    expect(log(page).locator(".m.adv").last).to_contain_text("Hello Jean, Alice here.")
    expect(log(page).locator(".m.adv .who").last).to_contain_text("Alice")
    link = log(page).locator(".m.adv .b a").last
    expect(link).to_have_attribute("href", "https://example.com/pricing?x=1")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")
    expect(log(page).locator(".m.adv time").last).to_have_attribute("datetime", re.compile(r"\d{4}-\d\d-\d\dT"))

    # the visitor answers; the advisor gets it once
    say(page, "Thanks, I need a quote.")
    expect(log(page).locator(".m.me:not(.pend)").last).to_contain_text("Thanks, I need a quote.")
    texts = [m["text"] for m in alice.history(cid) if m["sender"] == "visitor"]
    assert texts.count("Thanks, I need a quote.") == 1, texts

    # back to the chatbot: the button goes, the menu comes back
    panel(page).get_by_role("button", name="Back to chatbot").click()
    expect(panel(page).get_by_role("button", name="Back to chatbot")).to_be_hidden()
    expect(panel(page).get_by_role("button", name="Talk to a human")).to_be_visible()
    assert alice.call("GET", f"/api/inbox/conversations/{cid}")["status"] == "bot"

    # nothing twice, nothing thrown, no cookie, and what the widget loaded fits its budgets
    assert bubbles(page, "me").count("Jean") == 1 and bubbles(page, "me").count("ACME") == 1
    assert not page_errors, page_errors
    assert context.cookies() == []
    assert "/widget.js" in loaded and any(p.startswith("/widget.js?panel=") for p in loaded), loaded.keys()
    assert set(encodings.values()) == {"gzip"}, encodings  # what travels is what the budgets measure
    assert gz(loaded["/widget.js"]) <= LOADER_BUDGET
    total = sum(gz(body) for body in loaded.values())
    assert total <= TOTAL_BUDGET, {p: gz(b) for p, b in loaded.items()}
    assert all(c.startswith(("/api/widget/sessions", "/api/widget/messages")) for c in api_calls), api_calls


def test_typing_indicators_both_ways(live_server, page, alice):
    from websockets.sync.client import connect

    page.goto(customer_page(live_server, "typing.html"))
    open_widget(page)
    walk_bot(page, "Tina", "Typo Inc")
    escalate(page)
    cid = conversation_id(live_server, page)
    alice.take(cid)
    expect(panel(page).locator(".sub")).to_have_text("Alice")

    with connect(f"{live_server.ws}/ws/inbox/", additional_headers={"Authorization": f"Token {alice.token}"}) as ws:
        # the advisor types: the visitor sees it
        ws.send(json.dumps({"type": "typing", "conversation": cid, "note": False}))
        expect(panel(page).locator(".ty")).to_have_text("Alice is typing…")
        # the visitor types (past the 2 s throttle of the answers typed above): the advisor's socket hears it
        page.wait_for_timeout(2100)
        panel(page).get_by_label("Your message").press_sequentially("Hel", delay=50)
        deadline = time.monotonic() + 10
        while True:
            assert time.monotonic() < deadline, "no typing frame reached the inbox"
            frame = json.loads(ws.recv(timeout=10))
            if frame.get("type") == "typing" and frame.get("conversation") == cid:
                break
    # an advisor's message clears the indicator
    alice.reply(cid, "Yes?")
    expect(panel(page).locator(".ty")).to_have_text("")

    # the panel closed, a reply shows as an unread count on the launcher, cleared on opening
    panel(page).get_by_role("button", name="Minimize chat").click()
    expect(panel(page)).to_be_hidden()
    alice.reply(cid, "Still there?")
    expect(widget(page).locator(".n")).to_have_text("1")
    expect(launcher(page)).to_have_attribute("aria-label", "Open chat, 1 unread message")
    launcher(page).click()
    expect(widget(page).locator(".n")).to_be_hidden()
    expect(log(page).locator(".m.adv").last).to_contain_text("Still there?")


# ------------------------------------------------------------------------------ resilience


def test_offline_and_back_sends_each_message_once_even_across_a_reload(live_server, context, page, alice):
    url = customer_page(live_server, "offline.html")
    page.goto(url)
    open_widget(page)
    expect(log(page)).to_contain_text("What's your first name?")
    expect(status(page)).to_have_text("Connected")

    # offline: what is typed is shown as pending and kept in the outbox
    context.set_offline(True)
    expect(status(page)).to_contain_text("Offline")
    say(page, "Olga")
    expect(log(page).locator(".m.pend")).to_have_count(1)
    expect(log(page).locator(".m.pend .nt")).to_contain_text("Not sent yet")
    outbox = page.evaluate("JSON.parse(localStorage.getItem('lcw:demo-shop:outbox'))")
    assert [item["text"] for item in outbox] == ["Olga"] and outbox[0]["client_id"]

    # back online: sent once, acknowledged, and the bot answers
    context.set_offline(False)
    expect(status(page)).to_have_text("Connected")
    expect(log(page)).to_contain_text("Nice to meet you, Olga!")
    expect(log(page).locator(".m.pend")).to_have_count(0)
    assert page.evaluate("localStorage.getItem('lcw:demo-shop:outbox')") is None

    # offline again, type, and leave the page before the connection comes back
    context.set_offline(True)
    expect(status(page)).to_contain_text("Offline")
    say(page, "Offline Corp")
    expect(log(page).locator(".m.pend")).to_have_count(1)
    page.close()
    context.set_offline(False)

    # a new page of the site: the panel reopens, the history is restored, the outbox is sent once
    again = context.new_page()
    errors = []
    again.on("pageerror", lambda e: errors.append(str(e)))
    again.goto(url)
    expect(panel(again)).to_be_visible()
    expect(log(again)).to_contain_text("Nice to meet you, Olga!")
    expect(log(again)).to_contain_text("How can I help, Olga?")
    expect(log(again).locator(".m.pend")).to_have_count(0)
    assert bubbles(again, "me") == ["Olga", "Offline Corp"]

    cid = conversation_id(live_server, again)
    history = alice.history(cid)
    visitor_texts = [m["text"] for m in history if m["sender"] == "visitor"]
    assert visitor_texts == ["Olga", "Offline Corp"], visitor_texts
    assert [m["seq"] for m in history] == list(range(1, len(history) + 1))
    # and the widget shows each stored item once
    assert len(log(again).locator(".m:not(.pend)").all()) == len([m for m in history if m["kind"] != "note"])
    assert not errors, errors


def test_a_dropped_socket_reconnects_with_auth_first_and_resumes_after_the_last_seq(live_server, page, alice):
    connections = []

    def route(ws):
        server = ws.connect_to_server()
        frames = []
        connections.append({"url": ws.url, "frames": frames, "page": ws, "server": server})

        def from_page(message):
            frames.append(json.loads(message))
            server.send(message)

        ws.on_message(from_page)
        server.on_message(lambda message: ws.send(message))

    page.route_web_socket(re.compile(r".*/ws/widget/.*"), route)
    page.goto(customer_page(live_server, "drop.html"))
    open_widget(page)
    walk_bot(page, "Dora", "Drop Ltd")
    assert len(connections) == 1

    # the server side drops the socket; meanwhile an advisor-free bot answer is produced by a button press
    first = connections[0]
    first["page"].close(code=1011, reason="test drop")
    first["server"].close()
    expect(status(page)).not_to_have_text("Connected")
    expect(status(page)).to_have_text("Connected", timeout=20000)
    panel(page).get_by_role("button", name="Pricing").click()
    expect(log(page)).to_contain_text("Plans start at 29 €/month.")

    # then: two connections, the token only ever in the first frame, the second resuming after a seq
    assert len(connections) == 2
    token = token_of(page)
    for c in connections:
        assert token not in c["url"]
        assert c["frames"][0]["type"] == "auth" and c["frames"][0]["token"] == token
    # the first socket resumes after the history loaded over REST, the second after what the first delivered
    assert connections[1]["frames"][0]["after"] > connections[0]["frames"][0]["after"] >= 1
    cid = conversation_id(live_server, page)
    visitor_texts = [m["text"] for m in alice.history(cid) if m["sender"] == "visitor"]
    assert visitor_texts == ["Dora", "Drop Ltd", "Pricing"], visitor_texts
    assert bubbles(page, "me") == ["Dora", "Drop Ltd", "Pricing"]


def test_error_frames_hold_then_resend_with_the_same_client_id_or_drop(live_server, page, alice):
    # given: a route between the page and the server that refuses some frames the way the server may
    refuse = {"Slow down": "rate_limited", "Busy now": "unavailable", "Refuse me": "too_long"}
    refused, seen = set(), []

    def route(ws):
        server = ws.connect_to_server()

        def from_page(message):
            frame = json.loads(message)
            if frame.get("type") == "message":
                seen.append((time.monotonic(), frame))
                code = refuse.get(frame["text"])
                if code and (code == "too_long" or frame["client_id"] not in refused):
                    refused.add(frame["client_id"])
                    error = {"type": "error", "code": code, "detail": "refused by the test",
                             "client_id": frame["client_id"]}
                    if code == "rate_limited":
                        error["retry_after"] = 1
                    ws.send(json.dumps(error))
                    return
            server.send(message)

        ws.on_message(from_page)
        server.on_message(lambda message: ws.send(message))

    page.route_web_socket(re.compile(r".*/ws/widget/.*"), route)
    page.goto(customer_page(live_server, "errors.html"))
    open_widget(page)
    walk_bot(page, "Rita", "Rate Co")
    escalate(page)

    def sends(text):
        return [(t, f["client_id"]) for t, f in seen if f["text"] == text]

    # rate_limited: sent again after retry_after, with the same client_id; unavailable: again, later
    for text, delay in (("Slow down", 1.0), ("Busy now", 1.0)):
        say(page, text)
        expect(log(page).locator(".m.me:not(.pend)", has_text=text)).to_have_count(1, timeout=15000)
        attempts = sends(text)
        assert len(attempts) == 2 and attempts[0][1] == attempts[1][1], attempts
        assert attempts[1][0] - attempts[0][0] >= delay, attempts

    # too_long: shown as not sent and dropped from the outbox, never sent again
    say(page, "Refuse me")
    failed = log(page).locator(".m.fail", has_text="Refuse me")
    expect(failed).to_have_count(1)
    expect(failed.locator(".nt")).to_contain_text("Not sent: the message is too long")
    assert page.evaluate("localStorage.getItem('lcw:demo-shop:outbox')") is None
    page.wait_for_timeout(1500)
    assert len(sends("Refuse me")) == 1

    # a text over 4,000 characters never leaves the page
    say(page, "x" * 4001)
    expect(panel(page).locator(".er")).to_contain_text("too long")
    assert not [f for _, f in seen if len(f["text"]) > 4000]

    visitor_texts = [m["text"] for m in alice.history(conversation_id(live_server, page)) if m["sender"] == "visitor"]
    assert visitor_texts.count("Slow down") == 1 and visitor_texts.count("Busy now") == 1, visitor_texts
    assert "Refuse me" not in visitor_texts


def test_navigation_to_another_page_of_the_demo_shop_keeps_the_conversation(live_server, page, page_errors, alice):
    page.goto(f"{live_server.base}/demo/")
    open_widget(page)
    walk_bot(page, "Nina", "Navi GmbH")

    page.get_by_role("link", name="Cart (2)").click()
    page.wait_for_url(re.compile(r"page=cart"))
    expect(panel(page)).to_be_visible()
    assert page.evaluate("document.activeElement === document.body")  # reopened without taking the focus
    expect(log(page)).to_contain_text("How can I help, Nina?")
    assert bubbles(page, "me") == ["Nina", "Navi GmbH"]
    escalate(page)
    cid = conversation_id(live_server, page)
    alice.take(cid)
    alice.reply(cid, "Hi Nina! Alice from Northwind here. Your cart ships tomorrow: https://example.com/track")
    expect(log(page).locator(".m.adv").last).to_contain_text("Your cart ships tomorrow")
    expect(panel(page).locator(".sub")).to_have_text("Alice")
    page.wait_for_timeout(300)
    path = screenshot(page, "widget")
    assert path.exists()
    assert not page_errors, page_errors


# ------------------------------------------------------------------------------ images


def test_images_sent_with_a_preview_and_received(live_server, page, alice, tmp_path):
    page.goto(customer_page(live_server, "images.html"))
    open_widget(page)
    walk_bot(page, "Ida", "Imago")
    image = tmp_path / "photo.png"
    image.write_bytes(png_bytes())

    with page.expect_file_chooser() as chooser:
        panel(page).get_by_role("button", name="Attach an image").click()
    chooser.value.set_files(str(image))
    expect(panel(page).locator(".pv img")).to_be_visible()
    panel(page).get_by_role("button", name="Send image").click()
    sent = log(page).locator(".m.me:not(.pend) .b img")
    expect(sent).to_have_count(1)
    expect(sent).to_have_attribute("src", re.compile(r"^" + re.escape(live_server.base) + r"/media/"))

    cid = conversation_id(live_server, page)
    images = [m for m in alice.history(cid) if m["kind"] == "image"]
    assert len(images) == 1 and images[0]["sender"] == "visitor"

    escalate(page)
    alice.take(cid)
    r = alice.http.post(f"/api/inbox/conversations/{cid}/messages", data={"client_id": "e2e-img"},
                        files={"image": ("red.png", png_bytes((220, 38, 38)), "image/png")})
    assert r.status_code == 201, r.text
    received = log(page).locator(".m.adv .b img")
    expect(received).to_have_count(1)
    expect(received).to_have_attribute("alt", "Image from Alice")
    # both images actually load cross-origin from the server's media URLs
    page.wait_for_function(f"() => [...document.querySelector('{W}').shadowRoot.querySelectorAll('.log .b img')]"
                           ".map(i => i.complete && i.naturalWidth).join() === '64,64'")


# ------------------------------------------------------------------------------ polite to the host page


def test_hostile_css_on_the_host_page_leaves_the_widget_intact(live_server, page, page_errors):
    hostile = """<style>
      * { all: unset !important; }
      div, section, button, textarea { display: none !important; visibility: hidden !important;
                                       transform: scale(0) !important; opacity: 0 !important; }
      body > * { position: static !important; z-index: -1 !important; }
    </style>"""
    page.goto(customer_page(live_server, "hostile.html", head=hostile))
    expect(launcher(page)).to_be_visible()
    box = launcher(page).bounding_box()
    assert 50 <= box["width"] <= 62 and 50 <= box["height"] <= 62, box
    assert box["x"] + box["width"] > 1280 - 40 and box["y"] + box["height"] > 720 - 40, box

    open_widget(page)
    panel_box = panel(page).bounding_box()
    assert 360 <= panel_box["width"] <= 380 and panel_box["height"] >= 400, panel_box
    walk_bot(page, "Hana", "Hostile SA")
    font = page.evaluate(f"() => getComputedStyle(document.querySelector('{W}').shadowRoot.querySelector('.b'))"
                         ".fontSize")
    assert font == "14px"
    assert not page_errors, page_errors


def test_a_disallowed_origin_fails_quietly(live_server, page, page_errors):
    live_server.manage("shell", "-c", (
        "from advisors.models import Account, Site; "
        "Site.objects.update_or_create(key='elsewhere', defaults={'account': Account.objects.first(), "
        "'name': 'Elsewhere', 'allowed_origins': ['https://elsewhere.example']})"))
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(customer_page(live_server, "disallowed.html", site="elsewhere"))

    open_widget(page)
    expect(status(page)).to_have_text("Chat unavailable right now")
    expect(panel(page).get_by_role("button", name="Try again")).to_be_visible()
    panel(page).get_by_role("button", name="Try again").click()
    expect(status(page)).to_have_text("Chat unavailable right now")
    page.wait_for_timeout(500)
    assert token_of(page, "elsewhere") is None
    assert sockets == []
    assert not page_errors, page_errors


def test_post_messages_from_other_frames_are_ignored(live_server, page, page_errors):
    page.goto(customer_page(live_server, "postmessage.html"))
    open_widget(page)
    expect(log(page)).to_contain_text("What's your first name?")
    before = bubbles(page, "me")
    page.evaluate("""() => {
        for (const data of [{type: 'message', text: 'injected'}, {type: 'open'}, 'close', {type: 'auth'}]) {
            window.postMessage(data, '*');
        }
    }""")
    page.wait_for_timeout(500)
    assert bubbles(page, "me") == before
    expect(panel(page)).to_be_visible()
    assert not page_errors, page_errors


# ------------------------------------------------------------------------------ safe by construction


HOSTILE_FLOW = {
    "format": 1,
    "name": "Hostile bot",
    "pseudonym_template": "",
    "welcome": "welcome",
    "fallback": "fallback",
    "sequences": [
        {"key": "welcome", "steps": [
            {"kind": "text", "text": f"Bot says {EVIL_IMG} and {EVIL_SCRIPT}"},
            {"kind": "input", "text": "Your e-mail? <b>bold</b>", "variable": "EMAIL", "type": "email"},
            {"kind": "input", "text": "How many seats?", "variable": "SEATS", "type": "number"},
            {"kind": "goto", "target": "menu"},
        ]},
        {"key": "menu", "steps": [
            {"kind": "buttons", "text": "Pick one, {{EMAIL}}", "buttons": [
                {"id": "h-1", "label": EVIL_IMG, "target": "human"},
            ]},
        ]},
        {"key": "human", "steps": [
            {"kind": "escalate", "message": EVIL_SCRIPT, "assign_to": "mallory", "back_label": EVIL_IMG,
             "return_to": "menu"},
        ]},
        {"key": "fallback", "steps": [{"kind": "text", "text": "Sorry?"}, {"kind": "goto", "target": "menu"}]},
    ],
}


@pytest.fixture(scope="module")
def hostile_site(live_server, tmp_path_factory):
    live_server.manage("shell", "-c", (
        "from advisors.models import Account, Advisor, Site; from advisors import services; "
        "account = Account.objects.first(); "
        "Advisor.objects.filter(user__username='mallory').exists() or services.advisor_create("
        f"account=account, username='mallory', email='mallory@demo.example', display_name={EVIL_IMG!r}, "
        f"password={PASSWORD!r})"))
    flow = tmp_path_factory.mktemp("flows") / "hostile.json"
    flow.write_text(json.dumps(HOSTILE_FLOW), encoding="utf-8")
    live_server.manage("flow", "import", str(flow))
    live_server.manage("shell", "-c", (
        "from advisors.models import Account, Advisor, Site; from chatbots.models import Chatbot; "
        "site, _ = Site.objects.update_or_create(key='hostile-shop', defaults={"
        "'account': Account.objects.first(), 'name': '<b>Hostile</b> shop', 'color': '#7c3aed', "
        f"'allowed_origins': [{live_server.page_origin!r}], 'chatbot': Chatbot.objects.get(name='Hostile bot')}}); "
        "Advisor.objects.get(user__username='mallory').sites.add(site)"))
    return "hostile-shop"


def test_html_from_bot_advisor_and_visitor_is_shown_as_text_and_never_runs(live_server, page, page_errors,
                                                                             hostile_site):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(customer_page(live_server, "xss.html", site=hostile_site))
    open_widget(page)

    # bot texts, an e-mail then a number prompt with their hints, a button label
    expect(panel(page).locator("h2")).to_have_text("<b>Hostile</b> shop")
    expect(log(page)).to_contain_text(f"Bot says {EVIL_IMG} and {EVIL_SCRIPT}")
    expect(log(page)).to_contain_text("Your e-mail? <b>bold</b>")
    expect(panel(page).locator(".hint")).to_contain_text("e-mail address")
    expect(panel(page).get_by_label("Your message")).to_have_attribute("inputmode", "email")
    say(page, "eve@example.com")
    expect(log(page)).to_contain_text("How many seats?")
    expect(panel(page).locator(".hint")).to_contain_text("number")
    expect(panel(page).get_by_label("Your message")).to_have_attribute("inputmode", "decimal")
    say(page, "3")
    expect(panel(page).get_by_role("button", name=EVIL_IMG)).to_be_visible()
    expect(panel(page).locator(".hint")).to_be_hidden()

    # the escalation assigns mallory, whose display name is HTML; the back button's label too
    panel(page).get_by_role("button", name=EVIL_IMG).click()
    expect(log(page)).to_contain_text(EVIL_SCRIPT)
    expect(panel(page).locator(".bb button")).to_have_text(EVIL_IMG)

    # the visitor writes HTML; mallory answers with HTML and links
    say(page, f"Me: {EVIL_IMG}")
    mallory = AdvisorApi(live_server, "mallory")
    try:
        cid = conversation_id(live_server, page, hostile_site)
        conv = mallory.call("GET", f"/api/inbox/conversations/{cid}")
        if not conv["assigned"]:
            mallory.take(cid)
        reply = f"{EVIL_IMG}{EVIL_SCRIPT} javascript:alert(3) https://example.com/ok"
        mallory.reply(cid, reply)
    finally:
        mallory.close()
    expect(panel(page).locator(".sub")).to_have_text(EVIL_IMG)
    expect(log(page).locator(".m.adv .b").last).to_have_text(reply)
    expect(log(page).locator(".m.adv .who").last).to_contain_text(EVIL_IMG)
    assert bubbles(page, "me")[-1] == f"Me: {EVIL_IMG}"

    page.wait_for_timeout(800)  # an onerror handler would have fired by now
    root = f"document.querySelector('{W}').shadowRoot"
    assert page.evaluate(f"() => {root}.querySelectorAll('script, img[src=\"x\"], b, [onerror]').length") == 0
    hrefs = page.evaluate(f"() => [...{root}.querySelectorAll('.log a')].map(a => a.href)")
    assert hrefs == ["https://example.com/ok"], hrefs
    assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"], [onerror]').length") == 0
    assert dialogs == [], dialogs
    assert not page_errors, page_errors


# ------------------------------------------------------------------------------ accessibility and layout


def test_keyboard_only_use_with_labelled_controls_and_live_region(live_server, page, page_errors):
    page.goto(customer_page(live_server, "keyboard.html"))
    expect(launcher(page)).to_be_visible()
    active = f"() => {{ const a = document.activeElement; return a && a.matches('{W}') ? " \
             "(a.shadowRoot.activeElement && (a.shadowRoot.activeElement.getAttribute('aria-label') || " \
             "a.shadowRoot.activeElement.id)) : a && a.tagName; }"

    for _ in range(5):  # the host page's link, then the launcher
        page.keyboard.press("Tab")
        if page.evaluate(active) == "Open chat":
            break
    assert page.evaluate(active) == "Open chat"
    page.keyboard.press("Enter")
    expect(panel(page)).to_be_visible()
    assert page.evaluate(active) == "lcw-input"  # focus moves into the composer
    expect(log(page)).to_contain_text("What's your first name?")
    page.keyboard.type("Kim")
    page.keyboard.press("Enter")
    expect(log(page)).to_contain_text("Nice to meet you, Kim!")
    page.keyboard.type("Keys Ltd")
    page.keyboard.press("Enter")
    expect(panel(page).get_by_role("button", name="Pricing")).to_be_visible()
    assert page.evaluate(active) == "lcw-input"

    # every control is labelled, the log announces politely, the panel is a labelled dialog
    unnamed = page.evaluate(f"""() => [...document.querySelector('{W}').shadowRoot
        .querySelectorAll('button, textarea, input:not([hidden])')]
        .filter(e => !(e.getAttribute('aria-label') || e.textContent.trim() || e.labels && e.labels.length))
        .map(e => e.outerHTML)""")
    assert unnamed == []
    expect(log(page)).to_have_attribute("role", "log")
    expect(log(page)).to_have_attribute("aria-live", "polite")
    expect(panel(page)).to_have_attribute("aria-label", "Chat with Shop")
    expect(page.get_by_role("dialog", name="Chat with Shop")).to_be_visible()

    # Escape closes and gives the focus back to the launcher; Enter reopens
    page.keyboard.press("Escape")
    expect(panel(page)).to_be_hidden()
    assert page.evaluate(active) == "Open chat"
    page.keyboard.press("Enter")
    expect(panel(page)).to_be_visible()
    assert not page_errors, page_errors


def test_full_screen_under_480_pixels(live_server, browser):
    context = browser.new_context(viewport={"width": 375, "height": 700}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(customer_page(live_server, "mobile.html"))
        open_widget(page)
        box = panel(page).bounding_box()
        assert box == {"x": 0, "y": 0, "width": 375, "height": 700}, box
        expect(launcher(page)).to_be_hidden()
        panel(page).get_by_role("button", name="Minimize chat").click()
        expect(panel(page)).to_be_hidden()
        expect(launcher(page)).to_be_visible()
    finally:
        context.close()
