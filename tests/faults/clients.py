"""Clients that behave like the real widget and inbox, for the fault tests.

A `Visitor` keeps what the widget keeps (widget/static/widget/panel.js): its token, the highest `seq` it holds
(sent as `after` on every reconnect), and an outbox of unacknowledged sends that goes again, with the same
client_id, after each reconnect until the echo carrying that client_id arrives. An `Advisor` replies over REST
with a client_id it reuses when a reply must be sent again, and listens on the inbox socket.

Every frame is recorded: what arrived twice, what was refused and how each socket closed, so a test can say
"nothing acknowledged was lost or doubled" from the clients' side and check it against the database.
"""
import asyncio
import contextlib
import json
import socket
import uuid
from collections import Counter, deque

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from tests.faults.servers import ORIGIN

WS_OPTIONS = {"compression": None, "proxy": None, "open_timeout": 30, "close_timeout": 5, "ping_interval": None,
              "max_size": 2 ** 22}
# Worth another try when (re)connecting: refused or reset connections, refused handshakes, a server too slow.
RETRY_ON = (OSError, TimeoutError, WebSocketException, AssertionError)


def new_id() -> str:
    return uuid.uuid4().hex


async def _open(url: str, rcvbuf: int | None, **options):
    """A client socket; with `rcvbuf`, a small kernel buffer that a client which stops reading fills at once."""
    sock = None
    if rcvbuf is not None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.connect(("127.0.0.1", int(url.split("/")[2].rsplit(":", 1)[1])))
    return await connect(url, sock=sock, **options, **WS_OPTIONS)


class Frames:
    """The last frames of one client (for a failure's message), with waiting on a condition."""

    def __init__(self):
        self.frames: deque[dict] = deque(maxlen=20)
        self.changed = asyncio.Event()

    def add(self, frame: dict) -> None:
        self.frames.append(frame)
        self.changed.set()

    async def wait(self, predicate, timeout: float, what: str):
        """Wait until predicate() is truthy (re-checked on each frame and every half second)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (result := predicate()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last frames: "
                                     f"{json.dumps(list(self.frames)[-5:])[:1500]}")
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.5))
        return result


async def start_session(http: httpx.AsyncClient, base: str, site: str = "demo-shop", token: str | None = None) -> dict:
    body = {"site": site, **({"token": token} if token else {})}
    response = await http.post(f"{base}/api/widget/sessions", json=body, headers={"Origin": ORIGIN})
    assert response.status_code in (200, 201), response.text
    return response.json()


async def all_messages(http: httpx.AsyncClient, url: str, headers: dict, after: int = 0) -> list[dict]:
    """Every item a messages endpoint (widget or inbox) lists after `after`, a page of 100 at a time."""
    items = []
    while True:
        response = await http.get(f"{url}?after={after}&limit=100", headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()["messages"]
        items += page
        if len(page) < 100:
            return items
        after = page[-1]["seq"]


class _SocketClient:
    """What both clients do with their socket: read and record every frame, send, reconnect, close."""

    name = "client"
    reconnect_options: dict = {}  # what each attempt of reconnect() passes to connect()

    def __init__(self):
        self.closes: list[int | None] = []
        self.events = Frames()
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.reading = asyncio.Event()  # cleared: the client stops reading (a frozen tab, a slow consumer)
        self.reading.set()

    async def connect(self, ws_base: str, **options) -> None:
        raise NotImplementedError

    def on_frame(self, frame: dict) -> None:
        """Keep what this client keeps of a frame (every frame is also recorded in `events`)."""

    async def reconnect(self, ws_bases: list[str], *, timeout: float = 90) -> None:
        """Reconnect to the first server that takes the socket, trying again (as the clients' backoff does)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.2
        while True:
            for ws_base in ws_bases:
                try:
                    await self.connect(ws_base, **self.reconnect_options)
                    return
                except RETRY_ON as error:
                    last = error
            if loop.time() > deadline:
                raise AssertionError(f"{self.name} could not reconnect within {timeout} s: {last!r}")
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)

    async def _read(self, ws) -> None:
        try:
            while True:
                await self.reading.wait()
                frame = json.loads(await ws.recv())
                self.on_frame(frame)
                self.events.add(frame)
        except ConnectionClosed:
            pass
        finally:
            self.closes.append(ws.close_code)
            if self.ws is ws:
                self.ws = None
            self.events.add({"type": "closed", "code": ws.close_code})

    async def send_frame(self, frame: dict) -> None:
        if self.ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(json.dumps(frame))

    async def wait_closed(self, timeout: float = 60) -> int | None:
        await self.events.wait(lambda: self.ws is None, timeout, f"{self.name}'s socket to close")
        return self.closes[-1]

    async def disconnect(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader
            self.reader = None


class Visitor(_SocketClient):
    name = "visitor"
    reconnect_options = {"timeout": 30}

    def __init__(self, session: dict, site: str = "demo-shop"):
        super().__init__()
        self.token = session["token"]
        self.conversation_id = session["conversation"]["id"]
        self.site = site
        self.messages: dict[int, dict] = {}  # seq -> item, each visible item once
        self.seq_counts: Counter = Counter()  # how many times each seq arrived: 1 everywhere, or a bug
        self.outbox: dict[str, dict] = {}  # client_id -> frame, until its echo arrives
        self.acked: dict[str, int] = {}  # client_id -> seq of the stored item
        self.errors: list[dict] = []
        self.authed = False

    @property
    def last_seq(self) -> int:
        return max(self.messages, default=0)

    async def connect(self, ws_base: str, *, timeout: float = 60, rcvbuf: int | None = None, max_queue=16) -> None:
        """Open a socket, authenticate with `after` = the last seq held, then resend the outbox."""
        await self.disconnect()
        self.authed = False
        self.ws = await _open(f"{ws_base}/ws/widget/?site={self.site}", rcvbuf, origin=ORIGIN, max_queue=max_queue)
        self.reader = asyncio.create_task(self._read(self.ws))
        await self.ws.send(json.dumps({"type": "auth", "token": self.token, "after": self.last_seq}))
        await self.events.wait(lambda: self.authed or self.ws is None, timeout, "the conversation frame")
        if self.ws is None:
            raise ConnectionError(f"socket closed with {self.closes[-1]} before auth")
        for frame in list(self.outbox.values()):
            await self.send_frame(frame)

    def on_frame(self, frame: dict) -> None:
        if frame["type"] == "conversation":
            self.authed = True
        elif frame["type"] == "message":
            item = frame["message"]
            self.seq_counts[item["seq"]] += 1
            self.messages.setdefault(item["seq"], item)
            if item.get("client_id") in self.outbox:
                del self.outbox[item["client_id"]]
                self.acked[item["client_id"]] = item["seq"]
        elif frame["type"] == "error":
            self.errors.append(frame)

    async def send(self, text: str, client_id: str | None = None) -> str:
        """Queue a message in the outbox and send it if a socket is open; its echo acknowledges it."""
        frame = {"type": "message", "client_id": client_id or new_id(), "text": text}
        self.outbox[frame["client_id"]] = frame
        await self.send_frame(frame)
        return frame["client_id"]

    async def press(self, label: str) -> str:
        """Press the button with this label on the latest item that offers it (an outbox send too)."""
        button = next(b["id"] for seq in sorted(self.messages, reverse=True) for b in self.messages[seq]["buttons"]
                      if b["label"] == label)
        frame = {"type": "button", "client_id": new_id(), "button": button}
        self.outbox[frame["client_id"]] = frame
        await self.send_frame(frame)
        return frame["client_id"]

    async def wait_item(self, predicate, timeout: float = 60) -> dict:
        """The latest item received that matches, waiting for it."""
        def found():
            return next((self.messages[seq] for seq in sorted(self.messages, reverse=True)
                         if predicate(self.messages[seq])), None)
        return await self.events.wait(found, timeout, "an item")

    async def walk_to_human(self, first_name: str = "Jean", company: str = "ACME") -> None:
        """Answer the demo bot and press "Talk to a human" (CONTRACT section 2)."""
        await self.wait_item(lambda m: (m["input"] or {}).get("variable") == "PRENOM")
        await self.wait_acked([await self.send(first_name)])
        await self.wait_item(lambda m: (m["input"] or {}).get("variable") == "SOCIETE")
        await self.wait_acked([await self.send(company)])
        await self.wait_item(lambda m: any(b["label"] == "Talk to a human" for b in m["buttons"]))
        await self.wait_acked([await self.press("Talk to a human")])

    async def resend(self) -> None:
        for frame in list(self.outbox.values()):
            await self.send_frame(frame)

    async def wait_acked(self, client_ids, timeout: float = 60) -> None:
        wanted = set(client_ids)
        await self.events.wait(lambda: wanted <= self.acked.keys(), timeout,
                               f"acknowledgement of {len(wanted - self.acked.keys())} sends")

    async def wait_seq(self, seq: int, timeout: float = 60) -> None:
        await self.events.wait(lambda: self.last_seq >= seq, timeout, f"seq {seq} (holding {self.last_seq})")

    def doubles(self) -> list[int]:
        return sorted(seq for seq, count in self.seq_counts.items() if count > 1)

    async def history(self, http: httpx.AsyncClient, base: str) -> list[dict]:
        """Every item the visitor may see, from the REST API (the database's answer)."""
        return await all_messages(http, f"{base}/api/widget/messages",
                                  {"Authorization": f"Bearer {self.token}", "Origin": ORIGIN})


class Advisor(_SocketClient):
    def __init__(self, username: str, token: str):
        super().__init__()
        self.username = self.name = username
        self.token = token
        self.seen: dict[int, Counter] = {}  # conversation -> Counter of seqs seen on the inbox socket

    @classmethod
    async def login(cls, http: httpx.AsyncClient, base: str, username: str) -> "Advisor":
        response = await http.post(f"{base}/api/auth/token", json={"username": username, "password": "demo1234"})
        assert response.status_code == 200, response.text
        return cls(username, response.json()["token"])

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Token {self.token}"}

    async def reply(self, http: httpx.AsyncClient, bases: list[str], conversation_id: int, text: str,
                    client_id: str | None = None, *, timeout: float = 90) -> dict:
        """POST a reply; on a dead server or a 503, again with the same client_id, to the next server."""
        client_id = client_id or new_id()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        attempt = 0
        while True:
            base = bases[attempt % len(bases)]
            attempt += 1
            try:
                response = await http.post(f"{base}/api/inbox/conversations/{conversation_id}/messages",
                                           json={"client_id": client_id, "text": text}, headers=self.headers)
                if response.status_code in (200, 201):
                    return response.json()["message"]
                assert response.status_code >= 500, response.text
                last = response.text
            except httpx.TransportError as error:
                last = repr(error)
            if loop.time() > deadline:
                raise AssertionError(f"reply {client_id} not stored within {timeout} s: {last}")
            await asyncio.sleep(min(2.0, 0.1 * attempt))

    async def messages(self, http: httpx.AsyncClient, base: str, conversation_id: int, after: int = 0) -> list[dict]:
        return await all_messages(http, f"{base}/api/inbox/conversations/{conversation_id}/messages", self.headers,
                                  after=after)

    async def connect(self, ws_base: str, *, rcvbuf: int | None = None, max_queue=16) -> None:
        await self.disconnect()
        self.ws = await _open(f"{ws_base}/ws/inbox/", rcvbuf, additional_headers=self.headers, max_queue=max_queue)
        self.reader = asyncio.create_task(self._read(self.ws))

    def on_frame(self, frame: dict) -> None:
        if frame["type"] == "message":
            item = frame["message"]
            self.seen.setdefault(item["conversation"], Counter())[item["seq"]] += 1

    def last_seen(self, conversation_id: int) -> int:
        return max(self.seen.get(conversation_id, {0: 0}))

    async def wait_seen(self, conversation_id: int, seq: int, timeout: float = 60) -> None:
        await self.events.wait(lambda: self.last_seen(conversation_id) >= seq, timeout,
                               f"{self.username} to see seq {seq} of conversation {conversation_id}")

