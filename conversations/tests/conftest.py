"""Helpers for the conversation tests: real sockets on the full ASGI application, real services."""
import asyncio
import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

ORIGIN = "http://127.0.0.1:8000"


def new_id() -> str:
    return str(uuid.uuid4())


def at_once(count: int, work) -> list[BaseException]:
    """`work(n)` for n in range(count), each in its own thread, all released together; what they raised. Each
    thread closes its database connection when done (PostgreSQL row locks are what such tests exercise)."""
    import threading

    from django.db import connection

    barrier, errors = threading.Barrier(count), []

    def run(n: int) -> None:
        try:
            barrier.wait()
            work(n)
        except BaseException as error:  # noqa: BLE001 - returned to the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def start_session(site_key: str = "demo-shop", token: str | None = None, origin: str | None = ORIGIN):
    client = APIClient()
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    body = {"site": site_key, **({"token": token} if token else {})}
    response = client.post("/api/widget/sessions", body, format="json", **headers)
    assert response.status_code in (200, 201), response.content
    return response.json()


def escalated(site_key: str = "demo-shop", first_name: str = "Jean", company: str = "ACME", *,
              start=start_session):
    """A conversation walked through the demo bot to "Talk to a human", through the services."""
    from conversations import services
    from conversations.models import Conversation, Visitor

    visitor = Visitor.objects.get(pk=start(site_key)["visitor"]["id"])
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text=first_name)
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text=company)
    conversation = Conversation.objects.get(visitor=visitor)
    menu = conversation.messages.exclude(buttons=[]).last()
    human = next(b["id"] for b in menu.buttons if b["label"] == "Talk to a human")
    services.visitor_button_press(visitor=visitor, client_id=new_id(), button=human)
    conversation.refresh_from_db()
    assert conversation.status == "live"
    return conversation


class Socket:
    """A WebSocket client on the ASGI app that keeps every frame it receives."""

    def __init__(self, path: str, headers: list[tuple[bytes, bytes]]):
        from livechat.asgi import application

        self.communicator = WebsocketCommunicator(application, path, headers=headers)
        self.frames: list[dict] = []
        self.closed_with = None

    async def connect(self):
        connected, code = await self.communicator.connect(timeout=5)
        return connected, code

    async def send(self, frame: dict | str):
        await self.communicator.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    async def receive(self, timeout: float = 3) -> dict | None:
        output = await self.communicator.receive_output(timeout)
        if output["type"] == "websocket.close":
            self.closed_with = output.get("code")
            return None
        frame = json.loads(output["text"])
        self.frames.append(frame)
        return frame

    async def wait_for(self, predicate, timeout: float = 5, since: int = 0) -> dict:
        """The first frame from index `since` on that matches, waiting for more up to `timeout` seconds."""
        for frame in self.frames[since:]:
            if predicate(frame):
                return frame
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no matching frame; got {self.frames[-10:]}")
            frame = await self.receive(timeout=remaining)
            if frame is None:
                raise AssertionError(f"socket closed with {self.closed_with}; got {self.frames[-10:]}")
            if predicate(frame):
                return frame

    async def drain(self, timeout: float = 0.3) -> list[dict]:
        """Every frame that arrives within `timeout` seconds of quiet."""
        got = []
        while not await self.communicator.receive_nothing(timeout=timeout):
            frame = await self.receive()
            if frame is None:
                break
            got.append(frame)
        return got

    async def close_code(self, timeout: float = 5):
        while self.closed_with is None:
            if await self.receive(timeout) is None:
                break
        return self.closed_with

    async def disconnect(self):
        await self.communicator.disconnect()


async def widget_socket(token: str, site_key: str = "demo-shop", after: int = 0, origin: str = ORIGIN) -> Socket:
    socket = Socket(f"/ws/widget/?site={site_key}", [(b"origin", origin.encode())])
    connected, _ = await socket.connect()
    assert connected
    await socket.send({"type": "auth", "token": token, "after": after})
    await socket.wait_for(lambda f: f["type"] == "conversation")
    return socket


async def inbox_socket(token: str) -> Socket:
    socket = Socket("/ws/inbox/", [(b"authorization", f"Token {token}".encode()), (b"host", b"testserver")])
    connected, _ = await socket.connect()
    assert connected
    return socket


def message_with(predicate):
    return lambda f: f["type"] == "message" and predicate(f["message"])


def asks_for(variable):
    return message_with(lambda m: (m.get("input") or {}).get("variable") == variable)


def button_id(frames, label):
    for frame in reversed(frames):
        for button in (frame.get("message") or {}).get("buttons") or []:
            if button["label"] == label:
                return button["id"]
    raise AssertionError(f"no button {label!r}")


async def walk_to_human(socket: Socket, first_name="Jean", company="ACME"):
    """Answer the demo bot and press "Talk to a human"; returns the live conversation frame."""
    await socket.wait_for(asks_for("PRENOM"))
    await socket.send({"type": "message", "client_id": new_id(), "text": first_name})
    await socket.wait_for(asks_for("SOCIETE"))
    await socket.send({"type": "message", "client_id": new_id(), "text": company})
    await socket.wait_for(message_with(lambda m: any(b["label"] == "Talk to a human" for b in m["buttons"])))
    await socket.send({"type": "button", "client_id": new_id(), "button": button_id(socket.frames, "Talk to a human")})
    return await socket.wait_for(lambda f: f["type"] == "conversation" and f["conversation"]["status"] == "live")


@pytest.fixture
def loop_writes_postgresql_only():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the loop writes on PostgreSQL only; SQLite's one writer works in one thread (CI runs both)")


@pytest.fixture
def tokens(demo):
    from rest_framework.authtoken.models import Token

    return {name: Token.objects.get_or_create(user=advisor.user)[0].key for name, advisor in demo.advisors.items()}


def call(client, method: str, path: str, data=None, **kw):
    """A REST call from async test code (the services broadcast through the test's event loop)."""
    return sync_to_async(getattr(client, method))(path, data, format="json", **kw)


@pytest.fixture
def api(tokens):
    """api["alice"] -> an APIClient with alice's token, built before any event loop runs."""
    clients = {}
    for name, key in tokens.items():
        clients[name] = APIClient()
        clients[name].credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return clients
