"""Nothing is missed silently (CONTRACT section 5): change numbers, `resume`, and bursts that overflow a socket."""
import asyncio
import json
import random
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from conversations.models import Message
from conversations.tests.conftest import Socket, call, escalated, inbox_socket, new_id

pytestmark = pytest.mark.django_db(transaction=True)


def _frames_of(socket: Socket, kind: str) -> list[dict]:
    return [f for f in socket.frames if f["type"] == kind]


async def test_every_conv_carries_a_change_that_grows_with_each_change(demo, api):
    conversation = await sync_to_async(escalated)()
    first = (await call(api["alice"], "get", f"/api/inbox/conversations/{conversation.pk}")).json()
    await call(api["alice"], "post", f"/api/inbox/conversations/{conversation.pk}/take")
    taken = (await call(api["alice"], "get", f"/api/inbox/conversations/{conversation.pk}")).json()
    read = (await call(api["alice"], "post", f"/api/inbox/conversations/{conversation.pk}/read",
                       {"seq": taken["last_message"]["seq"]})).json()
    bobs = (await call(api["bob"], "get", f"/api/inbox/conversations/{conversation.pk}")).json()
    assert 0 < first["change"] < taken["change"] < read["change"]
    assert bobs["change"] == taken["change"]  # alice's reading is news for alice only


async def test_resume_sends_each_conversation_changed_since_then_resumed(demo, tokens, api):
    # given: two conversations, and a position taken after the first changed
    older = await sync_to_async(escalated)()
    since = (await call(api["alice"], "get", f"/api/inbox/conversations/{older.pk}")).json()["change"]
    newer = await sync_to_async(escalated)("demo-blog")
    await call(api["alice"], "post", f"/api/inbox/conversations/{older.pk}/read", {"seq": 1})
    alice, bob = await inbox_socket(tokens["alice"]), await inbox_socket(tokens["bob"])
    # when
    await alice.send({"type": "resume", "since": since})
    await bob.send({"type": "resume", "since": since})
    resumed = await alice.wait_for(lambda f: f["type"] == "resumed")
    bob_resumed = await bob.wait_for(lambda f: f["type"] == "resumed")
    # then: alice gets the blog conversation and her own read state; bob (shop only) gets nothing new
    got = {f["conversation"]["id"]: f["conversation"] for f in _frames_of(alice, "conversation")}
    assert set(got) == {older.pk, newer.pk}
    assert got[newer.pk]["last_message"]["seq"] == newer.last_seq
    assert resumed["change"] == max(c["change"] for c in got.values())
    assert _frames_of(bob, "conversation") == [] and bob_resumed["change"] == since
    # and a resume from where it ended sends nothing but `resumed`
    await alice.send({"type": "resume", "since": resumed["change"]})
    again = await alice.wait_for(lambda f: f["type"] == "resumed", since=len(alice.frames))
    assert again["change"] == resumed["change"]
    assert len(_frames_of(alice, "conversation")) == 2
    await alice.send({"type": "resume", "since": "yesterday"})
    assert (await alice.wait_for(lambda f: f["type"] == "error"))["code"] == "bad_request"
    for socket in (alice, bob):
        await socket.disconnect()


async def test_a_conversation_frame_says_unread_from_the_advisors_own_read_position(demo, tokens, api):
    conversation = await sync_to_async(escalated)()
    path = f"/api/inbox/conversations/{conversation.pk}"
    alice, bob = await inbox_socket(tokens["alice"]), await inbox_socket(tokens["bob"])
    # bob's reply assigns it to him and reads up to itself: his frame says read, alice's unread
    await call(api["bob"], "post", f"{path}/messages", {"client_id": new_id(), "text": "Hello"})
    bobs = await bob.wait_for(lambda f: f["type"] == "conversation")
    alices = await alice.wait_for(lambda f: f["type"] == "conversation")
    assert bobs["conversation"]["assigned"]["username"] == "bob"
    assert (bobs["conversation"]["unread"], alices["conversation"]["unread"]) == (False, True)
    # a second reply changes neither status nor assignment (no frame), but moves bob's read position
    await call(api["bob"], "post", f"{path}/messages", {"client_id": new_id(), "text": "Still there?"})
    await call(api["carol"], "post", f"{path}/assign", {"advisor": None})  # no item: last_seq stays
    bobs = await bob.wait_for(lambda f: f["type"] == "conversation" and f["conversation"]["assigned"] is None)
    alices = await alice.wait_for(lambda f: f["type"] == "conversation" and f["conversation"]["assigned"] is None)
    assert (bobs["conversation"]["unread"], alices["conversation"]["unread"]) == (False, True)
    # alice reads: her socket hears it, with her read state's change
    read = (await call(api["alice"], "post", f"{path}/read", {"seq": alices["conversation"]["last_message"]["seq"]})
            ).json()
    mine = await alice.wait_for(lambda f: f["type"] == "conversation" and f["conversation"]["unread"] is False)
    assert mine["conversation"]["change"] == read["change"] > alices["conversation"]["change"]
    for socket in (alice, bob):
        await socket.disconnect()


# ------------------------------------------------------------------------------ bursts


class Inbox:
    """What an inbox page keeps from its socket: CONVs by id, updated by `conversation` frames (newer `change`
    wins) and `message` frames (newer `seq` wins), as static/inbox/js/main.js does."""

    def __init__(self, socket: Socket, loaded: list[dict]):
        self.socket = socket
        self.conversations: dict[int, dict] = {c["id"]: c for c in loaded}  # the page's first load
        self.message_ids: list[int] = []
        self.resumed = 0
        self.applied = 0

    def apply(self) -> None:
        for frame in self.socket.frames[self.applied:]:
            if frame["type"] == "conversation":
                conv = frame["conversation"]
                known = self.conversations.get(conv["id"])
                if known is None or conv["change"] >= known.get("change", 0):
                    last = known and known.get("last_message")
                    if last and (conv["last_message"] is None or conv["last_message"]["seq"] < last["seq"]):
                        conv = dict(conv, last_message=last)
                    self.conversations[conv["id"]] = conv
            elif frame["type"] == "message":
                message = frame["message"]
                self.message_ids.append(message["id"])
                known = self.conversations.setdefault(message["conversation"], {"id": message["conversation"]})
                if not known.get("last_message") or message["seq"] >= known["last_message"]["seq"]:
                    known["last_message"] = message
                    if message["kind"] not in ("note", "event") and message["sender"] in ("visitor", "advisor"):
                        known["unanswered"] = message["sender"] == "visitor"
            elif frame["type"] == "resumed":
                self.resumed += 1
        self.applied = len(self.socket.frames)

    def live(self) -> dict[int, tuple]:
        return {cid: _essentials(c) for cid, c in self.conversations.items() if c.get("status") == "live"}


def _essentials(conv: dict) -> tuple:
    return (conv["status"], (conv["assigned"] or {}).get("username"), conv["last_message"]["id"], conv["unanswered"])


def _live_list(client) -> list[dict]:
    """The live box as a page load sees it."""
    found, cursor = [], None
    while True:
        params = {"box": "live", "limit": 100, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/inbox/conversations", params).json()
        found += page["results"]
        cursor = page["next"]
        if not cursor:
            return found


def _fresh_live(client) -> dict[int, tuple]:
    return {c["id"]: _essentials(c) for c in _live_list(client)}


STALL_S = 4


def stalling(application, *, every: int, stall_s: float):
    """The ASGI application behind a client that stalls: every `every` frames, sending one takes `stall_s`
    seconds (a browser tab in the background, a congested link). Meanwhile the socket's channel fills up."""

    async def app(scope, receive, send):
        sent = 0

        async def slow_send(message):
            nonlocal sent
            if message["type"] == "websocket.send":
                sent += 1
                if sent % every == 0:
                    await asyncio.sleep(stall_s)
            await send(message)

        await application(scope, receive, slow_send)

    return app


class Page:
    """An inbox page's socket, as static/inbox/js/main.js drives it: it reads every frame as it comes, sends
    `resume` on every (re)connect (from the last `resumed` change, else the newest `change` of its first load),
    and reconnects when the server closes it (4503: a layer outage or recovery; 4008: too slow)."""

    def __init__(self, token: str, *, stall_every: int | None = None):
        self.token, self.stall_every = token, stall_every
        self.frames: list[dict] = []
        self.resume_point: int | None = None
        self.reconnects = 0
        self.communicator = None

    async def connect(self, loaded: list[dict]) -> None:
        from livechat.asgi import application

        app = application if self.stall_every is None else stalling(application, every=self.stall_every,
                                                                    stall_s=STALL_S)
        self.communicator = WebsocketCommunicator(app, "/ws/inbox/", headers=[
            (b"authorization", f"Token {self.token}".encode()), (b"host", b"testserver")])
        connected, _ = await self.communicator.connect(timeout=10)
        assert connected
        since = self.resume_point if self.resume_point is not None else max(c["change"] for c in loaded)
        await self.communicator.send_to(text_data=json.dumps({"type": "resume", "since": since}))
        self.loaded = loaded

    async def read_until_quiet(self, stop: asyncio.Event, quiet_s: float) -> None:
        quiet_since = None
        while True:
            if await self.communicator.receive_nothing(timeout=0.25):  # (receive_output's timeout kills the app)
                now = time.monotonic()
                quiet_since = quiet_since or now
                if stop.is_set() and now - quiet_since > quiet_s:
                    return
                continue
            quiet_since = None
            output = await self.communicator.receive_output(1)
            if output["type"] == "websocket.close":
                assert output.get("code") in (4503, 4008), output
                self.reconnects += 1
                await self.connect(self.loaded)
                continue
            frame = json.loads(output["text"])
            if frame["type"] == "resumed":
                self.resume_point = frame["change"]
            self.frames.append(frame)

    async def disconnect(self) -> None:
        await self.communicator.disconnect()


async def _collect(pages: list[Page], stop: asyncio.Event, quiet_s: float) -> None:
    """Read every page's socket until told to stop and all are quiet for `quiet_s`."""
    await asyncio.gather(*(page.read_until_quiet(stop, quiet_s) for page in pages))


def _session(site_key: str) -> dict:
    """A new visitor through the service (the REST door rate-limits sessions per address: all ours are one)."""
    from advisors.models import Site
    from conversations import services

    session = services.visitor_session_start(site=Site.objects.get(key=site_key))
    return {"token": session.token, "visitor": {"id": session.visitor.pk}}


def _visitors_waiting(count: int) -> list:
    """`count` visitors whose conversations wait for a human, half on each site: started while the sites are
    live-chat only (one write each, rather than a walk through the bot), then the sites get their bot back."""
    from advisors.models import Site
    from conversations.models import Visitor

    Site.objects.update(livechat_only=True)
    try:
        ids = [_session("demo-shop" if i % 2 else "demo-blog")["visitor"]["id"] for i in range(count)]
    finally:
        Site.objects.update(livechat_only=False)
    return list(Visitor.objects.select_related("site", "conversation").filter(pk__in=ids))


async def test_a_burst_reaches_every_inbox_socket_or_comes_back_through_a_resume(demo, tokens, api):
    """50 visitors send 20 messages each while 30 others escalate, within 10 s; alice (both sites, sees the
    chatbot) has a normal socket and one whose client stalls now and then, bob (the shop only) a normal one. The slow
    socket's queue overflows (the in-memory layer drops, Channels' capacity 100): the events it lost come back
    through a resume, and every socket's list ends equal to a fresh load."""
    from conversations import services
    from livechat.db import database_call

    rng = random.Random(13)
    started_setup = time.monotonic()
    visitors = await sync_to_async(_visitors_waiting)(50)
    prepared = time.monotonic()
    loaded = {name: await sync_to_async(_live_list)(api[name]) for name in ("alice", "bob")}
    alice, bob, slow = Page(tokens["alice"]), Page(tokens["bob"]), Page(tokens["alice"], stall_every=500)
    for page, name in ((alice, "alice"), (bob, "bob"), (slow, "alice")):
        await page.connect(loaded[name])
    stop = asyncio.Event()
    # Longer than a stall, plus the second quiet tick (a stalled socket's queue may drop the first) and a resume.
    reading = asyncio.ensure_future(_collect([alice, bob, slow], stop, quiet_s=STALL_S + 1.5))
    send = database_call(services.visitor_message_send)
    press = database_call(services.visitor_button_press)

    async def chat(visitor) -> None:
        await asyncio.sleep(rng.random())
        for n in range(20):
            await send(visitor=visitor, client_id=new_id(), text=f"message {n}")
            await asyncio.sleep(0.3 + rng.random() * 0.1)  # 20 in about 7 s: under the 20 per 10 s limit

    async def escalate(k: int) -> None:
        await asyncio.sleep(rng.random() * 7)
        site_key = "demo-shop" if k % 2 else "demo-blog"
        session = await sync_to_async(_session)(site_key)
        visitor = await database_call(services.visitor_for_token)(site_key=site_key, token=session["token"])
        await send(visitor=visitor, client_id=new_id(), text=f"Name{k}")
        await send(visitor=visitor, client_id=new_id(), text="ACME")
        menu = await database_call(lambda: visitor.conversation.messages.exclude(buttons=[]).last())()
        human = next(b["id"] for b in menu.buttons if b["label"] == "Talk to a human")
        await press(visitor=visitor, client_id=new_id(), button=human)

    started = time.monotonic()
    await asyncio.gather(*(chat(v) for v in visitors), *(escalate(k) for k in range(30)))
    burst_s = time.monotonic() - started
    stop.set()
    await asyncio.wait_for(reading, 60)
    print(f"setup {prepared - started_setup:.1f} s, burst {burst_s:.1f} s, "
          f"drained {time.monotonic() - started - burst_s:.1f} s after")

    chats = await database_call(lambda: list(Message.objects.filter(
        conversation__visitor__in=visitors, sender="visitor").values_list("id", "conversation_id", "seq",
                                                                          "conversation__site__key")))()
    assert len(chats) == 1000
    for name, socket in (("alice", alice), ("alice", slow), ("bob", bob)):
        covered = _covered(socket)
        lost = [m for m in chats if (name == "alice" or m[3] == "demo-shop") and not covered(*m[:3])]
        assert not lost, f"{name}: {len(lost)} items never arrived, not even through a resume"
    fresh = {name: await sync_to_async(_fresh_live)(api[name]) for name in ("alice", "bob")}
    assert len(fresh["alice"]) == 80 and len(fresh["bob"]) == 40
    for name, socket in (("alice", alice), ("alice", slow), ("bob", bob)):
        inbox = Inbox(socket, loaded[name])
        inbox.apply()
        assert len(inbox.message_ids) == len(set(inbox.message_ids)), f"{name}: an item came twice"
        assert inbox.live() == fresh[name], f"{name}: the list differs from a fresh load"
    # the slow socket did lose events on the way, and got them back by resuming
    slow_inbox = Inbox(slow, loaded["alice"])
    slow_inbox.apply()
    alice_inbox = Inbox(alice, loaded["alice"])
    alice_inbox.apply()
    print("frames", {n: len(x.frames) for n, x in (("alice", alice), ("bob", bob), ("slow", slow))},
          "reconnects", [p.reconnects for p in (alice, bob, slow)], "resumes", slow_inbox.resumed,
          "items", len(slow_inbox.message_ids), len(alice_inbox.message_ids))
    if _drops_when_full() and not any(page.reconnects for page in (alice, bob, slow)):
        # (a reconnect, e.g. the layer's health check timing out on a loaded machine, resumes every socket anyway)
        assert len(slow_inbox.message_ids) < len(alice_inbox.message_ids) and slow_inbox.resumed > 1
    for socket in (alice, bob, slow):
        await socket.disconnect()


def _covered(socket: Socket):
    """Whether an item reached the socket as a `message` frame, or a later `conversation` frame of its conversation
    (a resume sends those) shows a last item at least as recent."""
    delivered = {f["message"]["id"] for f in socket.frames if f["type"] == "message"}
    newest: dict[int, int] = {}
    for frame in socket.frames:
        if frame["type"] == "conversation" and frame["conversation"]["last_message"]:
            conv = frame["conversation"]
            newest[conv["id"]] = max(newest.get(conv["id"], 0), conv["last_message"]["seq"])
    return lambda message_id, conversation_id, seq: message_id in delivered or newest.get(conversation_id, 0) >= seq


def _drops_when_full() -> bool:
    """Whether this run's channel layer drops events for a full channel (in-memory, core Redis); the Redis
    Pub/Sub layer queues without bound in the process, so a slow socket lags there instead of losing events."""
    from channels.layers import get_channel_layer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    return not isinstance(get_channel_layer(), RedisPubSubChannelLayer)
