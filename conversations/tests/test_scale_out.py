"""Scale-out: two ASGI processes of the product (uvicorn subprocesses, tests/faults/servers.py web_command) on
one Redis and one PostgreSQL database.

A visitor on process A and an advisor on process B converse both ways through the channel layer, each item
delivered once; a note reaches the advisor and never the visitor; a visitor reconnecting to the other process
catches up with `after` on what it missed, once. The database is created for the test and dropped after it.
"""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.faults.servers import WEB_SERVER, web_command

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "http://127.0.0.1:8000"
QUIET_S = 1.0

DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")

pytestmark = pytest.mark.skipif(
    not DATABASE_URL.startswith(("postgres://", "postgresql://")) or not REDIS_URL,
    reason="scale-out needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL) shared by two processes; CI sets both",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_url(database: str) -> str:
    """The same PostgreSQL server as DATABASE_URL, another database."""
    base = DATABASE_URL.split("?")[0].rsplit("/", 1)[0]
    return f"{base}/{database}"


def _admin_connection():
    import psycopg

    return psycopg.connect(_server_url("postgres"), autocommit=True)


@pytest.fixture(scope="module")
def cluster():
    """A fresh database, migrated and seeded, and two web processes on it; all gone afterwards."""
    name = f"livechat_scaleout_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    processes: list[subprocess.Popen] = []
    env = {**os.environ, "DATABASE_URL": _server_url(name), "REDIS_URL": REDIS_URL,
           "CHANNEL_LAYER_PREFIX": f"scaleout-{uuid.uuid4().hex[:8]}", "DJANGO_SETTINGS_MODULE": "livechat.settings",
           "CELERY_TASK_ALWAYS_EAGER": "1", "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
           "LOG_LEVEL": "WARNING"}
    try:
        for command in (["migrate", "--noinput", "-v", "0"], ["seed_demo"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, timeout=180,
                           stdout=subprocess.DEVNULL)
        ports = [_free_port(), _free_port()]
        for port in ports:
            processes.append(subprocess.Popen(
                web_command(WEB_SERVER, port),
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        for port, process in zip(ports, processes):
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, f"{WEB_SERVER} on {port} exited with {process.returncode}"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"{WEB_SERVER} on {port} did not become healthy"
                time.sleep(0.2)
        yield {"a": f"127.0.0.1:{ports[0]}", "b": f"127.0.0.1:{ports[1]}", "pids": [p.pid for p in processes]}
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Frames:
    """A socket that keeps what it receives; waits are bounded."""

    def __init__(self, ws):
        self.ws = ws
        self.frames: list[dict] = []

    async def until(self, predicate, timeout: float = 10) -> dict:
        for frame in self.frames:
            if predicate(frame):
                return frame
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no matching frame; last frames: {self.frames[-8:]}"
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), remaining))
            self.frames.append(frame)
            if predicate(frame):
                return frame

    async def settle(self, quiet: float = QUIET_S, limit: float = 10) -> None:
        """Read until nothing arrives for `quiet` seconds (so a duplicate would have shown up)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                self.frames.append(json.loads(await asyncio.wait_for(self.ws.recv(), quiet)))
            except asyncio.TimeoutError:
                return

    def messages(self, **match) -> list[dict]:
        return [f["message"] for f in self.frames if f.get("type") == "message"
                and all(f["message"].get(k) == v for k, v in match.items())]


def _message(client_id: str):
    return lambda f: f.get("type") == "message" and f["message"].get("client_id") == client_id


async def _visitor_socket(host: str, token: str, after: int) -> Frames:
    ws = await connect(f"ws://{host}/ws/widget/?site=demo-shop", origin=ORIGIN, open_timeout=10)
    socket_ = Frames(ws)
    await ws.send(json.dumps({"type": "auth", "token": token, "after": after}))
    await socket_.until(lambda f: f.get("type") == "conversation")
    return socket_


async def _say(visitor: Frames, text: str) -> dict:
    client_id = f"v-{uuid.uuid4().hex[:12]}"
    await visitor.ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))
    return (await visitor.until(_message(client_id)))["message"]


async def test_visitor_on_one_process_and_advisor_on_another_converse_once_each_way(cluster):
    a, b = cluster["a"], cluster["b"]
    async with httpx.AsyncClient(timeout=10) as http:
        # given: alice's inbox socket on process B
        token = (await http.post(f"http://{b}/api/auth/token",
                                 json={"username": "alice", "password": "demo1234"})).json()["token"]
        auth = {"Authorization": f"Token {token}"}
        inbox = Frames(await connect(f"ws://{b}/ws/inbox/", additional_headers=auth, open_timeout=10))
        # and a visitor on process A who answers the bot and asks for a human
        session = (await http.post(f"http://{a}/api/widget/sessions", json={"site": "demo-shop"},
                                   headers={"Origin": ORIGIN})).json()
        conversation_id = session["conversation"]["id"]
        visitor = await _visitor_socket(a, session["token"], after=0)
        await visitor.until(lambda f: f.get("type") == "message" and f["message"]["input"] is not None)
        await _say(visitor, "Jean")
        await visitor.until(lambda f: f.get("type") == "message" and "company" in f["message"]["text"])
        await _say(visitor, "ACME")
        menu = await visitor.until(lambda f: f.get("type") == "message" and any(
            b_["label"] == "Talk to a human" for b_ in f["message"]["buttons"]))
        human = next(b_ for b_ in menu["message"]["buttons"] if b_["label"] == "Talk to a human")
        await visitor.ws.send(json.dumps({"type": "button", "client_id": "press-human", "button": human["id"]}))
        await visitor.until(lambda f: f.get("type") == "conversation" and f["conversation"]["status"] == "live")
        await inbox.until(lambda f: f.get("type") == "conversation" and f["conversation"]["id"] == conversation_id
                          and f["conversation"]["status"] == "live")

        # when: the visitor writes on A
        sent = await _say(visitor, "Hello from process A")
        # then: the advisor on B hears it once
        await inbox.until(_message(sent["client_id"]))

        # when: the advisor replies through B
        reply = await http.post(f"http://{b}/api/inbox/conversations/{conversation_id}/messages", headers=auth,
                                json={"client_id": "reply-1", "text": "Hello from process B"})
        assert reply.status_code == 201, reply.text
        # then: the visitor on A hears it once, and the advisor's own inbox too
        await visitor.until(_message("reply-1"))
        await inbox.until(_message("reply-1"))

        # when: the advisor writes a private note through B
        note = await http.post(f"http://{b}/api/inbox/conversations/{conversation_id}/messages", headers=auth,
                               json={"client_id": "note-1", "text": "private: VIP customer", "kind": "note"})
        assert note.status_code == 201, note.text
        await inbox.until(_message("note-1"))
        await visitor.settle()
        await inbox.settle()

        # then: each item once on each side, and the note never on the visitor's side
        assert len(inbox.messages(client_id=sent["client_id"])) == 1
        assert len(inbox.messages(client_id="reply-1")) == 1
        assert len(inbox.messages(client_id="note-1")) == 1
        assert len(visitor.messages(client_id=sent["client_id"])) == 1
        assert len(visitor.messages(client_id="reply-1")) == 1
        assert not visitor.messages(kind="note")
        assert not [f for f in visitor.frames if "VIP" in json.dumps(f)]
        visitor_seqs = [m["seq"] for m in visitor.messages()]
        assert visitor_seqs == sorted(set(visitor_seqs)), "each visible item once, in order"
        last_seen = visitor_seqs[-1]

        # when: the visitor drops; the advisor replies and notes meanwhile; the visitor comes back on B
        await visitor.ws.close()
        for client_id, kind in (("reply-2", "text"), ("note-2", "note"), ("reply-3", "text")):
            answer = await http.post(f"http://{b}/api/inbox/conversations/{conversation_id}/messages", headers=auth,
                                     json={"client_id": client_id, "text": f"while away {client_id}", "kind": kind})
            assert answer.status_code == 201, answer.text
        back = await _visitor_socket(b, session["token"], after=last_seen)
        await back.until(_message("reply-3"))
        await back.settle()
        # then: exactly what it missed, in order, once, without the note
        missed = back.messages()
        assert [m["client_id"] for m in missed] == ["reply-2", "reply-3"]
        assert all(m["seq"] > last_seen for m in missed)
        assert not back.messages(kind="note")

        # and: live traffic keeps flowing after the move, to the advisor's sockets on both processes, once each
        inbox_a = Frames(await connect(f"ws://{a}/ws/inbox/", additional_headers=auth, open_timeout=10))
        sent_again = await _say(back, "Back, now on process B")
        await inbox.until(_message(sent_again["client_id"]))
        await inbox_a.until(_message(sent_again["client_id"]))
        await inbox.settle()
        await inbox_a.settle()
        assert len(inbox.messages(client_id=sent_again["client_id"])) == 1
        assert len(inbox_a.messages(client_id=sent_again["client_id"])) == 1
        for ws in (back.ws, inbox.ws, inbox_a.ws):
            await ws.close()
