"""The advisor inbox in real Chromium (issue 5): visitors are driven over the widget API and socket (CONTRACT
section 4) while advisors use /inbox/ as people do, with the mouse and the keyboard."""
import asyncio
import json
import re
import threading
import time
import uuid

import httpx
import pytest
from playwright.sync_api import expect
from websockets.asyncio.client import connect

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e

ORIGIN = "http://127.0.0.1:8000"  # allowed on the demo sites by seed_demo
PASSWORD = "demo1234"
STEP_S = 10
XSS = '<img src=x onerror=alert(1)>'
XSS_SCRIPT = '<script>alert(2)</script>'
XSS_LINK = 'javascript:alert(3)'

# Counts what the page does with notifications and sound; installed before any script of the page runs.
COUNTERS = """
(() => {
  window.__calls = {notifications: [], plays: 0};
  const Original = window.Notification;
  if (Original) {
    class Counted extends Original {
      constructor(title, options) {
        super(title, options);
        window.__calls.notifications.push({title, body: options && options.body});
      }
    }
    window.Notification = Counted;
  }
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function (...args) {
    window.__calls.plays += 1;
    return play.apply(this, args);
  };
})();
"""


expect.set_options(timeout=STEP_S * 1000)


# --------------------------------------------------------------------------- a visitor, over the widget API


class Visitor:
    """A widget client on its own event-loop thread, with a blocking API for the (sync) Playwright tests."""

    def __init__(self, server, site="demo-shop", page=None):
        self.server = server
        self.site = site
        self.page_url = page
        self.frames = []
        self.token = None
        self.session = None
        self.ws = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def _run(self, coro, timeout=STEP_S + 5):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def conversation_id(self):
        return self.session["conversation"]["id"]

    def start(self):
        body = {"site": self.site}
        if self.page_url:
            body["page"] = self.page_url
        r = httpx.post(self.server.base + "/api/widget/sessions", json=body, headers={"Origin": ORIGIN}, timeout=STEP_S)
        assert r.status_code in (200, 201), r.text
        self.session = r.json()
        self.token = self.session["token"]
        self._run(self._connect())
        return self

    async def _connect(self):
        self.ws = await connect(f"{self.server.ws}/ws/widget/?site={self.site}", origin=ORIGIN, open_timeout=STEP_S)
        await self.ws.send(json.dumps({"type": "auth", "token": self.token, "after": 0}))
        self.loop.create_task(self._read())

    async def _read(self):
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
        except Exception:  # noqa: BLE001 - the socket closed; the frames so far stay
            pass

    def send(self, frame):
        self._run(self.ws.send(json.dumps(frame)))

    def say(self, text):
        client_id = str(uuid.uuid4())
        self.send({"type": "message", "client_id": client_id, "text": text})
        self.wait_for(lambda f: f.get("type") == "message" and f["message"].get("client_id") == client_id,
                      f"the acknowledgement of {text!r}")
        return client_id

    def typing(self):
        self.send({"type": "typing"})

    def wait_for(self, pred, what, timeout=STEP_S, since=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in list(self.frames[since:]):
                if pred(frame):
                    return frame
            time.sleep(0.05)
        raise AssertionError(f"visitor: no {what} within {timeout}s; last frames: {self.frames[-5:]}")

    def asked_for(self, variable):
        return lambda f: f.get("type") == "message" and (f["message"].get("input") or {}).get("variable") == variable

    def press(self, label):
        shown = [f["message"] for f in self.frames if f.get("type") == "message"
                 and any(b.get("label") == label for b in f["message"].get("buttons") or [])]
        assert shown, f"no button {label!r}"
        button = [b for b in shown[-1]["buttons"] if b["label"] == label][0]
        self.send({"type": "button", "client_id": str(uuid.uuid4()), "button": button["id"]})

    def walk_to_human(self, first_name="Jean", company="ACME"):
        """Answer the demo bot's two prompts, then press 'Talk to a human' and wait for status live."""
        self.wait_for(self.asked_for("PRENOM"), "the first-name prompt")
        self.say(first_name)
        self.wait_for(self.asked_for("SOCIETE"), "the company prompt")
        self.say(company)
        self.wait_for(lambda f: f.get("type") == "message" and any(
            b.get("label") == "Talk to a human" for b in f["message"].get("buttons") or []), "the menu")
        mark = len(self.frames)
        self.press("Talk to a human")
        self.wait_for(lambda f: f.get("type") == "conversation" and f["conversation"]["status"] == "live",
                      "status live", since=mark)
        return self

    def messages(self):
        return [f["message"] for f in self.frames if f.get("type") == "message"]

    def close(self):
        if self.loop.is_closed() or not self.loop.is_running():
            return
        if self.ws is not None:
            ws, self.ws = self.ws, None
            try:
                self._run(ws.close(), timeout=5)
            except Exception:  # noqa: BLE001 - already closed
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def visitors(live_server):
    started = []

    def make(**kw):
        visitor = Visitor(live_server, **kw).start()
        started.append(visitor)
        return visitor

    yield make
    for visitor in started:
        visitor.close()


def api_as(server, username):
    """An httpx client authenticated with a DRF token, for setting the scene (never for what we check)."""
    r = httpx.post(server.base + "/api/auth/token", json={"username": username, "password": PASSWORD}, timeout=STEP_S)
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=server.base, headers={"Authorization": f"Token {r.json()['token']}"}, timeout=STEP_S)


# --------------------------------------------------------------------------- the advisor's browser


class Watch:
    """Every dialog, console error and page error of a page: none is expected, ever."""

    def __init__(self, page):
        self.problems = []
        page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))

    def assert_clean(self):
        assert not self.problems, self.problems


def login(page, server, username):
    page.goto(server.base + "/inbox/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/inbox/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/inbox/"))
    expect(page.locator("body.is-ready")).to_have_count(1, timeout=STEP_S * 1000)
    expect(page.locator("#conn.is-online")).to_have_count(1, timeout=STEP_S * 1000)


@pytest.fixture
def advisor_page(live_server, context):
    """A signed-in inbox page, with the notification permission granted and the counters installed."""
    context.grant_permissions(["notifications"], origin=live_server.base)
    context.add_init_script(COUNTERS)

    def open_as(username, ctx=None):
        page = (ctx or context).new_page()
        watch = Watch(page)
        login(page, live_server, username)
        return page, watch

    return open_as


def row(page, conversation_id):
    return page.locator(f'#conversation-list button.row[data-id="{conversation_id}"]')


def calls(page):
    return page.evaluate("() => ({notifications: window.__calls.notifications.length, plays: window.__calls.plays})")


def wait_until(fn, what, timeout=STEP_S, page=None):
    """Poll fn; pass the page when fn reads what its event handlers collect, since Playwright only
    dispatches events while it is being called (time.sleep would starve them)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not so within {timeout}s")
        if page is None:
            time.sleep(0.1)
        else:
            page.wait_for_timeout(100)


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:5]}"


def to_process(client):
    return client.get("/api/inbox/conversations", params={"box": "live", "limit": 1}).json()["counts"]["to_process"]


def title_count(page):
    match = re.match(r"^\((\d+)\) Inbox$", page.title())
    return int(match.group(1)) if match else 0


def visitor_frames_with(visitor, text):
    return [m for m in visitor.messages() if text in (m.get("text") or "")]


# --------------------------------------------------------------------------- tests


def test_login_page_then_inbox_with_csp(live_server, page):
    watch = Watch(page)
    response = page.goto(live_server.base + "/inbox/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/inbox/$"))
    assert "'unsafe-inline'" not in (response.headers.get("content-security-policy") or "")
    expect(page.get_by_role("heading", name="Sign in to your inbox")).to_be_visible()

    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()

    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_response(lambda r: r.url.endswith("/inbox/")) as inbox:
        page.get_by_role("button", name="Sign in").click()
    csp = inbox.value.headers["content-security-policy"]
    script_src = [d for d in csp.split(";") if d.strip().startswith("script-src")][0]
    assert script_src.split()[1:] == ["'self'"], csp
    expect(page).to_have_title(re.compile(r"Inbox$"))
    expect(page.locator("body.is-ready")).to_have_count(1)
    expect(page.get_by_role("tab", name=re.compile("Shop"))).to_be_visible()  # alice has two sites
    expect(page.get_by_role("button", name=re.compile("Chatbot"))).to_be_visible()  # and sees the bot's
    screenshot(page, "inbox-empty")
    watch.assert_clean()


def test_escalation_arrives_live_then_take_reply_note_close_reopen(live_server, advisor_page, visitors):
    page, watch = advisor_page("alice")
    alice_api = api_as(live_server, "alice")
    before = title_count(page)
    assert before == to_process(alice_api)
    first = unique("Jean")

    # A visitor asks for a human: the row arrives without a reload, orange outline, unread, online.
    visitor = visitors(page="https://shop.example.com/pricing")
    visitor.walk_to_human(first, "ACME")
    name = f"{first} (ACME)"
    conv_row = row(page, visitor.conversation_id)
    expect(conv_row).to_contain_text(name)
    expect(conv_row).to_have_class(re.compile(r"\bis-unread\b"))
    expect(conv_row.locator(".avatar.is-unanswered")).to_have_count(1)
    expect(conv_row.locator(".presence")).to_have_count(1)
    expect(page).to_have_title(f"({before + 1}) Inbox")
    expect(page.locator("#to-process")).to_have_text(str(before + 1))
    wait_until(lambda: any(first in n["title"] for n in page.evaluate("window.__calls.notifications")),
               "a browser notification for the escalation")
    time.sleep(0.5)
    plays = calls(page)["plays"]

    # Open it: the bot's automatic note in yellow, "automatic"; the variables in the side panel.
    conv_row.click()
    expect(page.locator("#thread-name")).to_have_text(name)
    note = page.locator("#timeline .msg--note", has_text=f"{first} from ACME asked for a human")
    expect(note).to_be_visible()
    expect(note.locator(".note__author")).to_have_text("automatic")
    panel = page.locator("#side-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".facts__row", has_text="PRENOM")).to_contain_text(first)
    expect(panel.locator(".facts__row", has_text="SOCIETE")).to_contain_text("ACME")
    expect(panel.locator(".facts__row", has_text="Page").locator("a")).to_have_attribute(
        "href", "https://shop.example.com/pricing")
    expect(panel.locator(".facts__row", has_text="Sessions")).to_contain_text("1 session")
    page.get_by_role("button", name="Hide visitor details").first.click()
    expect(panel).to_be_hidden()
    page.locator("#panel-toggle").click()
    expect(panel).to_be_visible()

    # The visitor writes and types: a sound, the message, the typing indicator.
    visitor.say("Hello, I need a quote for 40 seats.")
    expect(page.locator("#timeline .msg--visitor", has_text="I need a quote")).to_be_visible()
    wait_until(lambda: calls(page)["plays"] == plays + 1, "one sound for the visitor's message")
    visitor.typing()
    expect(page.locator("#typing")).to_contain_text(f"{name} is typing")
    expect(page.locator("#typing")).to_be_hidden(timeout=8000)

    # Take: assigned to alice, shown at the top right; the visitor learns the advisor's name.
    mark = len(visitor.frames)
    page.get_by_role("button", name="Take", exact=True).click()
    expect(page.locator("#thread-assignee")).to_have_attribute("title", "Assigned to you")
    expect(page.locator("#thread-sub")).to_contain_text("With you")
    visitor.wait_for(lambda f: f.get("type") == "conversation" and (f["conversation"].get("advisor") or {}).get("name")
                     == "Alice", "the advisor's name", since=mark)
    expect(page).to_have_title(re.compile(rf"^(\({before}\) )?Inbox$"))

    # Reply with Enter; Shift+Enter makes a new line.
    composer = page.get_by_label("Reply", exact=True)
    composer.fill("Hello! Alice here.")
    composer.press("Enter")
    got = visitor.wait_for(lambda f: f.get("type") == "message" and f["message"]["text"] == "Hello! Alice here.",
                           "alice's reply")["message"]
    assert got["sender"] == "advisor" and got["advisor"]["name"] == "Alice"
    assert re.fullmatch(r"[0-9a-f-]{36}", got["client_id"]), got
    expect(page.locator("#timeline .msg--advisor", has_text="Alice here")).to_be_visible()
    expect(composer).to_have_value("")
    composer.type("Line one")
    composer.press("Shift+Enter")
    composer.type("line two")
    composer.press("Enter")
    two = visitor.wait_for(lambda f: f.get("type") == "message" and "line two" in f["message"]["text"],
                           "the two-line reply")["message"]
    assert two["text"] == "Line one\nline two" and two["client_id"] != got["client_id"]

    # The note toggle turns the box yellow and writes a note the visitor never receives.
    toggle = page.get_by_role("switch", name="Leave a note")
    toggle.click()
    expect(toggle).to_have_attribute("aria-checked", "true")
    expect(page.locator("#composer")).to_have_class(re.compile(r"\bis-note\b"))
    expect(page.locator("#composer")).to_have_css("background-color", "rgb(255, 246, 211)")  # yellow
    secret = unique("secret discount code ")
    page.get_by_label("Private note").fill(secret)
    page.get_by_label("Private note").press("Enter")
    my_note = page.locator("#timeline .msg--note", has_text=secret)
    expect(my_note).to_be_visible()
    expect(my_note.locator(".note__author")).to_have_text("Alice")
    expect(toggle).to_have_attribute("aria-checked", "false")  # a sent note turns the toggle off
    expect(page.locator("#composer")).not_to_have_class(re.compile(r"\bis-note\b"))
    expect(page.locator("#toasts .toast")).to_have_count(0)
    expect(page.locator("#composer")).to_have_css("background-color", "rgb(255, 255, 255)")
    screenshot(page, "inbox")  # alice's inbox with an open conversation

    # Close: it leaves Livechat and waits in Closed, from where it is reopened.
    page.get_by_role("button", name="Close", exact=True).click()
    expect(page.locator("#lead-bar")).to_contain_text("This conversation is closed")
    expect(page.locator("#composer")).to_be_hidden()
    expect(conv_row).to_have_count(0)
    visitor.wait_for(lambda f: f.get("type") == "conversation" and f["conversation"]["status"] == "closed",
                     "status closed")
    page.locator('.box[data-box="closed"]').click()
    expect(row(page, visitor.conversation_id)).to_be_visible()
    row(page, visitor.conversation_id).click()
    page.get_by_role("button", name="Reopen", exact=True).click()
    expect(page.locator("#thread-sub")).to_contain_text("With you")
    expect(row(page, visitor.conversation_id)).to_have_count(0)
    page.locator('.box[data-box="live"]').click()
    expect(row(page, visitor.conversation_id)).to_be_visible()
    visitor.wait_for(lambda f: f.get("type") == "conversation" and f["conversation"]["status"] == "live",
                     "status live again", since=mark)

    time.sleep(1)
    assert not visitor_frames_with(visitor, secret), "the visitor received the note"
    assert not [m for m in visitor.messages() if m["kind"] == "note"]
    watch.assert_clean()


def test_filters_and_badge_follow_the_api(live_server, advisor_page, visitors):
    alice_api = api_as(live_server, "alice")
    bob_api = api_as(live_server, "bob")
    waiting, mine, bobs = visitors(), visitors(), visitors()
    names = {}
    for v, prefix in ((waiting, "Wait"), (mine, "Mine"), (bobs, "Bobs")):
        names[v] = unique(prefix)
        v.walk_to_human(names[v], "Initech")
    assert bob_api.post(f"/api/inbox/conversations/{bobs.conversation_id}/take").status_code == 200

    page, watch = advisor_page("alice")
    expect(row(page, waiting.conversation_id)).to_be_visible()
    expect(page).to_have_title(f"({to_process(alice_api)}) Inbox")

    # Take one and read it: it becomes Mine, and no longer counts in the badge.
    before = to_process(alice_api)
    row(page, mine.conversation_id).click()
    page.get_by_role("button", name="Take", exact=True).click()
    expect(page.locator("#thread-assignee")).to_have_attribute("title", "Assigned to you")
    wait_until(lambda: to_process(alice_api) == before - 1, "to_process after taking and reading")
    expect(page).to_have_title(f"({before - 1}) Inbox")
    expect(page.locator('[data-badge="to_process"]')).to_have_text(str(before - 1))

    select = page.get_by_label("Show", exact=True)
    select.select_option("unassigned")
    expect(row(page, waiting.conversation_id)).to_be_visible()
    expect(row(page, bobs.conversation_id)).to_have_count(0)
    expect(row(page, mine.conversation_id)).to_have_count(0)
    for r in page.locator("#conversation-list .row").all():
        expect(r.locator(".pill--waiting")).to_have_count(1)

    select.select_option("mine")
    expect(row(page, mine.conversation_id)).to_be_visible()
    expect(row(page, waiting.conversation_id)).to_have_count(0)
    expect(row(page, bobs.conversation_id)).to_have_count(0)

    select.select_option("unread")
    expect(row(page, waiting.conversation_id)).to_be_visible()
    expect(row(page, bobs.conversation_id)).to_be_visible()
    expect(row(page, mine.conversation_id)).to_have_count(0)  # alice read it
    for r in page.locator("#conversation-list .row").all():
        expect(r).to_have_class(re.compile(r"\bis-unread\b"))

    select.select_option("advisor:bob")
    expect(row(page, bobs.conversation_id)).to_be_visible()
    expect(row(page, waiting.conversation_id)).to_have_count(0)

    select.select_option("all")
    for v in (waiting, mine, bobs):
        expect(row(page, v.conversation_id)).to_be_visible()

    # A new escalation raises the badge live; the site tab carries its own count.
    before = to_process(alice_api)
    late = visitors()
    late.walk_to_human(unique("Late"), "Globex")
    expect(page).to_have_title(f"({before + 1}) Inbox")
    expect(page.locator("#rail-badge")).to_have_text(str(before + 1))
    page.get_by_role("tab", name=re.compile("Blog")).click()
    expect(row(page, late.conversation_id)).to_have_count(0)
    page.get_by_role("tab", name=re.compile("Shop")).click()
    expect(row(page, late.conversation_id)).to_be_visible()
    expect(page).to_have_title(f"({before + 1}) Inbox")  # the title counts every site
    watch.assert_clean()


def test_default_mode_of_an_advisor_without_license(live_server, advisor_page, visitors):
    page, watch = advisor_page("carol")
    visitor = visitors()
    visitor.walk_to_human(unique("Anon"), "Hooli")
    anonymous = f"Visitor #{visitor.session['visitor']['id']}"

    conv_row = row(page, visitor.conversation_id)
    expect(conv_row).to_contain_text(anonymous)
    expect(page.locator("#site-tabs")).to_be_hidden()  # carol works on one site
    expect(page.locator('.box[data-box="chatbot"]')).to_be_hidden()
    conv_row.click()
    expect(page.locator("#thread-name")).to_have_text(anonymous)
    expect(page.locator("#timeline .msg--visitor").first).to_be_visible()
    expect(page.locator("#timeline .msg--note")).to_have_count(0)
    expect(page.get_by_role("switch", name="Leave a note")).to_be_hidden()
    expect(page.locator("#panel-toggle")).to_be_hidden()
    expect(page.locator("#side-panel")).to_be_hidden()
    expect(conv_row).not_to_contain_text("Hooli")  # the company is in the timeline, never in the name

    composer = page.get_by_label("Reply", exact=True)
    composer.fill("Hi, Carol here.")
    composer.press("Enter")
    got = visitor.wait_for(lambda f: f.get("type") == "message" and f["message"]["text"] == "Hi, Carol here.",
                           "carol's reply")["message"]
    assert got["advisor"]["name"] == "Carol"
    expect(page.locator("#thread-assignee")).to_have_attribute("title", "Assigned to you")  # replying assigned it
    screenshot(page, "inbox-default-mode")
    watch.assert_clean()


def test_sound_mute_is_remembered_and_notifications_only_on_escalation(live_server, advisor_page, visitors):
    page, watch = advisor_page("bob")
    bob_api = api_as(live_server, "bob")
    visitor = visitors()
    visitor.walk_to_human(unique("Sound"), "Umbrella")
    expect(row(page, visitor.conversation_id)).to_be_visible()
    wait_until(lambda: calls(page)["notifications"] == 1, "one notification")
    time.sleep(0.5)
    plays = calls(page)["plays"]

    visitor.say("first question")
    wait_until(lambda: calls(page)["plays"] == plays + 1, "a sound")
    page.locator("#sound-toggle").click()
    expect(page.locator("#sound-toggle")).to_have_attribute("aria-pressed", "false")
    wait_until(lambda: bob_api.get("/api/inbox/me").json()["sound"] is False, "sound saved as off")
    visitor.say("second question")
    expect(row(page, visitor.conversation_id)).to_contain_text("second question")
    time.sleep(0.5)
    assert calls(page)["plays"] == plays + 1, "muted, no sound"

    page.reload()
    expect(page.locator("body.is-ready")).to_have_count(1)
    expect(page.locator("#sound-toggle")).to_have_attribute("aria-pressed", "false")
    page.locator("#sound-toggle").click()
    expect(page.locator("#sound-toggle")).to_have_attribute("aria-pressed", "true")
    wait_until(lambda: bob_api.get("/api/inbox/me").json()["sound"] is True, "sound saved as on")
    expect(page.locator("#conn.is-online")).to_have_count(1)
    visitor.say("third question")
    wait_until(lambda: calls(page)["plays"] == 1, "a sound again after unmuting")
    assert calls(page)["notifications"] == 0, "no notification for an ordinary message"
    watch.assert_clean()


def test_notification_permission_is_asked_politely(live_server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        context.add_init_script("""
          window.__asked = 0;
          const ask = Notification.requestPermission.bind(Notification);
          Notification.requestPermission = (...a) => { window.__asked += 1; return ask(...a); };
        """)
        page = context.new_page()
        watch = Watch(page)
        login(page, live_server, "alice")
        banner = page.locator("#notify-banner")
        expect(banner).to_be_visible()
        assert page.evaluate("window.__asked") == 0, "asked on load"
        banner.get_by_role("button", name="Not now").click()
        expect(banner).to_be_hidden()
        page.reload()
        expect(page.locator("body.is-ready")).to_have_count(1)
        expect(banner).to_be_hidden()
        page.evaluate("localStorage.clear()")
        page.reload()
        expect(banner).to_be_visible()
        banner.get_by_role("button", name="Turn on").click()
        wait_until(lambda: page.evaluate("window.__asked") == 1, "the permission asked once, on request")
        expect(banner).to_be_hidden()
        watch.assert_clean()
    finally:
        context.close()


def test_keyboard_moves_between_conversations(live_server, advisor_page, visitors):
    for prefix in ("KeyA", "KeyB", "KeyC"):
        visitors().walk_to_human(unique(prefix), "Keys")
    page, watch = advisor_page("alice")
    rows = page.locator("#conversation-list button.row")
    expect(rows.nth(2)).to_be_visible()
    ids = [int(x) for x in rows.evaluate_all("rs => rs.map(r => r.dataset.id)")]

    page.keyboard.press("j")
    expect(page.locator("#thread-view")).to_be_visible()
    expect(rows.nth(0)).to_have_attribute("aria-current", "true")
    expect(rows.nth(0)).to_be_focused()
    page.keyboard.press("j")
    expect(row(page, ids[1])).to_have_attribute("aria-current", "true")
    page.keyboard.press("ArrowDown")
    expect(row(page, ids[2])).to_have_attribute("aria-current", "true")
    expect(row(page, ids[2])).to_be_focused()
    page.keyboard.press("k")
    expect(row(page, ids[1])).to_have_attribute("aria-current", "true")
    outline = row(page, ids[1]).evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline != "none", "the focused row shows where the focus is"
    page.keyboard.press("r")
    expect(page.get_by_label("Reply", exact=True)).to_be_focused()
    page.keyboard.press("Escape")
    expect(row(page, ids[1])).to_be_focused()
    watch.assert_clean()


def test_assign_to_a_colleague_with_the_keyboard(live_server, advisor_page, visitors):
    visitor = visitors()
    visitor.walk_to_human(unique("Assign"), "Stark")
    page, watch = advisor_page("alice")
    row(page, visitor.conversation_id).click()
    button = page.get_by_role("button", name="Assign to…")
    button.focus()
    page.keyboard.press("Enter")
    menu = page.get_by_role("menu", name="Assign to")
    expect(menu).to_be_visible()
    expect(menu.get_by_role("menuitemradio", name=re.compile("Bob"))).to_be_visible()
    menu.get_by_role("menuitemradio", name=re.compile("Bob")).focus()
    page.keyboard.press("Enter")
    expect(menu).to_be_hidden()
    expect(page.locator("#thread-sub")).to_contain_text("With Bob")
    expect(page.locator("#thread-assignee")).to_have_attribute("title", "Assigned to Bob")
    expect(row(page, visitor.conversation_id).locator(".avatar--xs")).to_have_attribute("title", "Assigned to Bob")
    page.keyboard.press("Escape")
    watch.assert_clean()


def png_bytes(color=(47, 91, 234)):
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (24, 16), color).save(out, "PNG")
    return out.getvalue()


def test_markup_from_visitors_and_advisors_is_shown_as_text(live_server, advisor_page, visitors, context):
    evil_name = f"{XSS}{XSS_SCRIPT}"
    admin_api = api_as(live_server, "admin")
    assert admin_api.patch("/api/inbox/me", json={"name": evil_name}).status_code == 200

    evil_page = "https://example.com/?q=<img/src=x/onerror=alert(1)>"
    visitor = visitors(page=evil_page)
    visitor.walk_to_human(XSS, XSS_SCRIPT)
    pseudonym = f"{XSS} ({XSS_SCRIPT})"
    message = f'{XSS} {XSS_SCRIPT} <a href="{XSS_LINK}">link</a> [x]({XSS_LINK}) {XSS_LINK} https://example.com/ok'
    visitor.say(message)

    page, watch = advisor_page("admin")
    conv_row = row(page, visitor.conversation_id)
    expect(conv_row.locator(".row__name")).to_have_text(pseudonym)
    conv_row.click()
    expect(page.locator("#thread-name")).to_have_text(pseudonym)
    expect(page.locator("#timeline .msg--visitor .bubble__text", has_text="https://example.com/ok")).to_have_text(message)
    panel = page.locator("#side-panel")
    expect(panel.locator(".facts__row", has_text="PRENOM").locator("dd")).to_have_text(XSS)
    expect(panel.locator(".facts__row", has_text="SOCIETE").locator("dd")).to_have_text(XSS_SCRIPT)
    expect(panel.locator(".panel__name")).to_have_text(pseudonym)

    # The advisor's own name, a reply, a note and an image's file name.
    page.get_by_role("button", name="Take", exact=True).click()
    expect(page.locator("#thread-assignee")).to_have_attribute("title", "Assigned to you")
    composer = page.get_by_label("Reply", exact=True)
    composer.fill(f"reply {XSS} {XSS_SCRIPT} {XSS_LINK}")
    composer.press("Enter")
    expect(page.locator("#timeline .msg--advisor .msg__author").last).to_have_text(evil_name)
    expect(page.locator("#timeline .msg--advisor .bubble__text").last).to_have_text(
        f"reply {XSS} {XSS_SCRIPT} {XSS_LINK}")
    page.get_by_role("switch", name="Leave a note").click()
    page.get_by_label("Private note").fill(f"note {XSS} {XSS_SCRIPT}")
    page.get_by_label("Private note").press("Enter")
    note = page.locator("#timeline .msg--note", has_text="note <img")
    expect(note.locator(".note__text")).to_have_text(f"note {XSS} {XSS_SCRIPT}")
    expect(note.locator(".note__author")).to_have_text(evil_name)
    expect(page.get_by_role("switch", name="Leave a note")).to_have_attribute("aria-checked", "false")
    page.locator("#attach-input").set_input_files({"name": f"{XSS}.png", "mimeType": "image/png",
                                                   "buffer": png_bytes()})
    expect(page.locator("#attachment-name")).to_have_text(f"{XSS}.png")
    expect(page.locator("#attachment-img")).to_have_attribute("src", re.compile(r"^blob:"))
    page.get_by_role("button", name="Send", exact=True).click()
    sent = page.locator("#timeline .msg--advisor .bubble__image").last
    expect(sent).to_have_attribute("src", re.compile(r"^https?://"))
    visitor.wait_for(lambda f: f.get("type") == "message" and f["message"]["kind"] == "image", "the image")
    page.get_by_role("button", name="Assign to…").click()
    expect(page.get_by_role("menu", name="Assign to")).to_contain_text(evil_name)
    page.keyboard.press("Escape")

    # A colleague sees the same strings, as text, in the assignee avatar, the row and the timeline.
    other = context.browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        alice, alice_watch = advisor_page("alice", other)
        row(alice, visitor.conversation_id).click()
        expect(alice.locator("#thread-assignee")).to_have_attribute("title", f"Assigned to {evil_name}")
        expect(alice.locator("#timeline .msg--advisor .msg__author").first).to_have_text(evil_name)
        alice_watch.assert_clean()
    finally:
        other.close()

    # Nothing ran, nothing became markup, every link is http(s).
    screenshot(page, "inbox-xss")
    scripts = page.evaluate("Array.from(document.querySelectorAll('script'), s => new URL(s.src, location).pathname)")
    assert len(scripts) == 2 and scripts[0] == "/jsi18n/" and "/inbox/js/main" in scripts[1], scripts  # ours only
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"], img[onerror], [onerror]').length") == 0
    hrefs = page.evaluate("Array.from(document.querySelectorAll('#thread a, #side-panel a')).map(a => a.href)")
    assert hrefs and all(h.startswith(("http://", "https://")) for h in hrefs), hrefs
    for a in page.locator("#thread a[target=_blank], #side-panel a[target=_blank]").all():
        expect(a).to_have_attribute("rel", "noopener noreferrer")
    page_link = panel.locator(".facts__row", has_text="Page").locator("a")
    expect(page_link).to_have_text(evil_page)
    expect(page_link).to_have_attribute("href", re.compile(r"^https://example\.com/\?q=%3Cimg"))
    watch.assert_clean()
    admin_api.patch("/api/inbox/me", json={"name": "Admin"})


def test_reconnects_and_catches_up_by_seq(live_server, advisor_page, visitors, context):
    visitor = visitors()
    visitor.walk_to_human(unique("Drop"), "Tyrell")
    page, watch = advisor_page("alice")
    row(page, visitor.conversation_id).click()
    page.get_by_role("button", name="Take", exact=True).click()
    expect(page.locator("#thread-assignee")).to_have_attribute("title", "Assigned to you")

    context.set_offline(True)
    page.evaluate("window.inbox.socket.drop()")
    expect(page.locator("#offline")).to_be_visible()
    expect(page.locator("#offline")).to_contain_text("Connection lost")
    visitor.say("sent while you were away (1)")
    visitor.say("sent while you were away (2)")
    composer = page.get_by_label("Reply", exact=True)
    composer.fill("written while offline")
    composer.press("Enter")
    expect(page.locator("#timeline-pending .is-retrying, #timeline-pending .is-sending")).to_have_count(1)
    time.sleep(1.5)

    context.set_offline(False)
    expect(page.locator("#offline")).to_be_hidden(timeout=40000)
    expect(page.locator("#timeline .msg--visitor", has_text="away (1)")).to_be_visible()
    expect(page.locator("#timeline .msg--visitor", has_text="away (2)")).to_be_visible()
    visitor.wait_for(lambda f: f.get("type") == "message" and f["message"]["text"] == "written while offline",
                     "the reply written offline", timeout=40)
    expect(page.locator("#timeline-pending li")).to_have_count(0)
    time.sleep(1)
    assert len(visitor_frames_with(visitor, "written while offline")) == 1, "sent exactly once"
    seqs = page.locator("#timeline [data-seq]").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    assert seqs == sorted(set(seqs)), seqs

    # Live again: the next message arrives by the socket.
    visitor.say("and now live")
    expect(page.locator("#timeline .msg--visitor", has_text="and now live")).to_be_visible()
    expect(row(page, visitor.conversation_id)).to_contain_text("and now live")
    offline_noise = ("ERR_INTERNET_DISCONNECTED", "WebSocket connection", "Failed to load resource")
    assert not [p for p in watch.problems if not any(n in p for n in offline_noise)], watch.problems


def start_sessions(server, n, site="demo-shop"):
    ids = []
    while len(ids) < n:
        r = httpx.post(server.base + "/api/widget/sessions", json={"site": site}, headers={"Origin": ORIGIN},
                       timeout=STEP_S)
        if r.status_code == 429:
            time.sleep(float(r.headers.get("Retry-After", "5")))
            continue
        assert r.status_code == 201, r.text
        ids.append(r.json()["conversation"]["id"])
    return ids


def test_infinite_scroll_and_paging_back(live_server, advisor_page, visitors):
    alice_api = api_as(live_server, "alice")
    start_sessions(live_server, 27)
    total = alice_api.get("/api/inbox/conversations", params={"box": "chatbot", "limit": 1}).json()["counts"]["chatbot"]
    assert total > 25

    visitor = visitors()
    visitor.walk_to_human(unique("Long"), "Wayne")
    for i in range(60):
        r = alice_api.post(f"/api/inbox/conversations/{visitor.conversation_id}/messages",
                           json={"client_id": str(uuid.uuid4()), "text": f"note number {i}", "kind": "note"})
        assert r.status_code == 201, r.text

    page, watch = advisor_page("alice")
    page.locator('.box[data-box="chatbot"]').click()
    rows = page.locator("#conversation-list button.row")
    expect(rows.first).to_be_visible()
    for _ in range(20):
        if rows.count() >= total:
            break
        page.locator("#list-scroll").evaluate("e => e.scrollTo(0, e.scrollHeight)")
        time.sleep(0.3)
    assert rows.count() == total
    ids = rows.evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert len(ids) == len(set(ids))

    page.locator('.box[data-box="live"]').click()
    row(page, visitor.conversation_id).click()
    expect(page.locator("#timeline .msg--note", has_text="note number 59")).to_be_visible()
    expect(page.locator("#timeline-start")).to_be_hidden()
    for _ in range(20):
        if page.locator("#timeline-start").is_visible():
            break
        page.locator("#timeline-scroll").evaluate("e => e.scrollTo(0, 0)")
        time.sleep(0.3)
    expect(page.locator("#timeline-start")).to_be_visible()
    expect(page.locator("#timeline .msg--bot", has_text="What's your first name?")).to_be_visible()
    seqs = page.locator("#timeline [data-seq]").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    watch.assert_clean()


def test_a_lost_answer_is_retried_with_the_same_client_id(live_server, advisor_page, visitors):
    visitor = visitors()
    visitor.walk_to_human(unique("Lost"), "Cyberdyne")
    page, watch = advisor_page("alice")
    row(page, visitor.conversation_id).click()
    expect(page.locator("#thread-name")).to_contain_text("Cyberdyne")

    bodies = []

    def lose_first_answer(route):
        bodies.append(json.loads(route.request.post_data))
        if len(bodies) == 1:
            route.abort("connectionreset")  # the request never reaches the server
        elif len(bodies) == 2:
            route.fetch()  # the server stores it...
            route.abort("connectionreset")  # ...and its answer never reaches the page
        else:
            route.continue_()

    page.route(re.compile(rf"/api/inbox/conversations/{visitor.conversation_id}/messages$"),
               lambda route: lose_first_answer(route) if route.request.method == "POST" else route.continue_())
    composer = page.get_by_label("Reply", exact=True)
    composer.fill("only once, please")
    composer.press("Enter")
    expect(page.locator("#timeline .msg--advisor", has_text="only once, please")).to_have_count(1)
    expect(page.locator("#timeline-pending li")).to_have_count(0, timeout=20000)
    page.wait_for_timeout(1000)  # not time.sleep: the route handler only runs while Playwright is called
    assert len(visitor_frames_with(visitor, "only once, please")) == 1
    assert len(bodies) >= 2, bodies  # then the socket brings the stored item, or a third try gets it back
    assert {b["client_id"] for b in bodies} == {bodies[0]["client_id"]}, bodies
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", bodies[0]["client_id"])

    composer.fill("a second message")
    composer.press("Enter")
    expect(page.locator("#timeline .msg--advisor", has_text="a second message")).to_have_count(1)
    expect(page.locator("#timeline-pending li")).to_have_count(0)
    visitor.wait_for(lambda f: f.get("type") == "message" and f["message"]["text"] == "a second message", "it")
    assert bodies[-1]["client_id"] != bodies[0]["client_id"], "each send has its own client_id"
    assert [p for p in watch.problems if "Failed to load resource" not in p] == []


def test_typing_is_throttled_and_presence_follows_the_visitor(live_server, advisor_page, visitors):
    visitor = visitors()
    visitor.walk_to_human(unique("Pres"), "Soylent")
    page, watch = advisor_page("alice")
    sent = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    page.reload()  # so that the inbox socket is observed from its start
    expect(page.locator("#conn.is-online")).to_have_count(1)
    row(page, visitor.conversation_id).click()
    expect(row(page, visitor.conversation_id).locator(".presence")).to_have_count(1)

    composer = page.get_by_label("Reply", exact=True)
    composer.press_sequentially("typing quite a long sentence here", delay=40)  # about 1.3 s of typing
    typing = [json.loads(p) for p in sent if '"typing"' in p]
    assert 1 <= len(typing) <= 2, typing
    assert typing[0] == {"type": "typing", "conversation": visitor.conversation_id, "note": False}
    page.get_by_role("switch", name="Leave a note").click()
    page.wait_for_timeout(2100)
    composer = page.get_by_label("Private note")
    composer.press_sequentially("!")
    wait_until(lambda: any(json.loads(p).get("note") is True for p in sent if '"typing"' in p), "a note typing frame",
               page=page)
    composer.fill("")

    visitor.close()
    expect(row(page, visitor.conversation_id).locator(".presence")).to_have_count(0, timeout=20000)
    expect(page.locator("#thread-sub .presence-dot.is-online")).to_have_count(0)
    watch.assert_clean()


def test_a_reconnect_resumes_the_list_counts_and_badge_without_a_reload(live_server, advisor_page, visitors, context):
    """While the inbox is offline a visitor escalates: on reconnect the page sends `resume`, and the list, the
    counts and the badge show it, with the escalation's notification, without loading the list again."""
    alice_api = api_as(live_server, "alice")
    page, watch = advisor_page("alice")
    sent = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    list_loads = []
    page.on("request", lambda r: list_loads.append(r.url) if "/api/inbox/conversations?" in r.url
            and "limit=1&" not in r.url + "&" else None)
    wait_until(lambda: page.evaluate("window.inbox.socket.open"), "the socket is open")
    loads_before = len(list_loads)
    notifications_before = calls(page)["notifications"]

    context.set_offline(True)
    page.evaluate("window.inbox.socket.drop()")
    expect(page.locator("#offline")).to_be_visible()
    visitor = visitors()
    visitor.walk_to_human(unique("Away"), "Initech")
    context.set_offline(False)
    expect(page.locator("#offline")).to_be_hidden(timeout=40000)

    expect(row(page, visitor.conversation_id)).to_be_visible()
    assert any('"type":"resume"' in frame.replace(" ", "") for frame in sent), sent
    wait_until(lambda: calls(page)["notifications"] > notifications_before, "the escalation's notification")
    wait_until(lambda: title_count(page) == to_process(alice_api), "the badge equals a fresh load", page=page)
    assert len(list_loads) == loads_before, list_loads[loads_before:]
    offline_noise = ("ERR_INTERNET_DISCONNECTED", "WebSocket connection", "Failed to load resource")
    assert not [p for p in watch.problems if not any(n in p for n in offline_noise)], watch.problems
