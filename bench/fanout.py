"""The inbox fan-out's cost per event, in one process: N inbox sockets (in-process WebsocketCommunicator on the full
ASGI application), visitor messages and conversation changes sent through the services, CPU time of the whole
process per event until every socket has read every frame.

    .venv/bin/python bench/fanout.py --sockets 20 --messages 300 --changes 60

Without DATABASE_URL it uses a fresh SQLite file under /tmp (the embedded defaults otherwise: the in-memory layer).
With DATABASE_URL (PostgreSQL) and REDIS_URL it measures the production shape; the database is flushed first.
"""
import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--changes", type=int, default=100, help="assign/unassign round trips (conversation frames)")
    parser.add_argument("--conversations", type=int, default=20)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/fanout.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livechat.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if os.environ["DATABASE_URL"].startswith("postgres"):
        call_command("flush", interactive=False, verbosity=0)
    asyncio.run(run(args))


def prepare(count: int):
    from rest_framework.authtoken.models import Token

    from advisors.demo import seed_demo
    from advisors.models import Advisor, Site
    from conversations import services

    seed_demo()
    Site.objects.update(livechat_only=True)
    sessions = [services.visitor_session_start(site=Site.objects.get(key="demo-shop")) for _ in range(count)]
    Site.objects.update(livechat_only=False)
    advisors = list(Advisor.objects.select_related("user").filter(user__username__in=["alice", "admin", "bob"]))
    tokens = [Token.objects.get_or_create(user=a.user)[0].key for a in advisors]
    return [s.visitor for s in sessions], tokens, next(a for a in advisors if a.username == "admin")


async def run(args) -> None:
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from conversations import services
    from livechat.asgi import application
    from livechat.db import database_call

    visitors, tokens, admin = await sync_to_async(prepare)(args.conversations)
    sockets = []
    for i in range(args.sockets):
        communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=[
            (b"authorization", f"Token {tokens[i % len(tokens)]}".encode()), (b"host", b"testserver")])
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        sockets.append(communicator)
    counts = {"message": [0] * len(sockets), "conversation": [0] * len(sockets)}

    async def read(index: int, communicator) -> None:
        while True:
            output = await communicator.receive_output(timeout=600)
            if output["type"] != "websocket.send":
                return
            kind = json.loads(output["text"])["type"]
            if kind in counts:
                counts[kind][index] += 1

    readers = [asyncio.ensure_future(read(i, c)) for i, c in enumerate(sockets)]
    send = database_call(services.visitor_message_send)
    assign = database_call(services.conversation_assign)

    async def settle(kind: str, expected: int) -> None:
        while min(counts[kind]) < expected:
            await asyncio.sleep(0.01)

    # Messages: every socket forwards each message frame.
    await asyncio.sleep(0.5)
    cpu, wall = time.process_time(), time.monotonic()
    for n in range(args.messages):
        await send(visitor=visitors[n % len(visitors)], client_id=uuid.uuid4().hex, text=f"message {n}")
    await settle("message", args.messages)
    message_cpu, message_wall = time.process_time() - cpu, time.monotonic() - wall

    # Conversation changes: assign to admin, then back to nobody (each a conversation frame per socket).
    base = [c for c in counts["message"]]
    cpu, wall = time.process_time(), time.monotonic()
    for n in range(args.changes):
        conversation_id = visitors[n % len(visitors)].conversation.pk
        await assign(conversation_id=conversation_id, by=admin, username="admin")
        await assign(conversation_id=conversation_id, by=admin, username=None)
    await settle("conversation", 2 * args.changes)
    change_cpu, change_wall = time.process_time() - cpu, time.monotonic() - wall
    del base

    for reader in readers:
        reader.cancel()
    for communicator in sockets:
        await communicator.disconnect()
    print(json.dumps({
        "database": os.environ["DATABASE_URL"].split(":")[0], "sockets": args.sockets,
        "message_cpu_ms_per_message": round(1000 * message_cpu / args.messages, 3),
        "message_wall_ms_per_message": round(1000 * message_wall / args.messages, 3),
        "change_cpu_ms_per_change": round(1000 * change_cpu / (2 * args.changes), 3),
        "change_wall_ms_per_change": round(1000 * change_wall / (2 * args.changes), 3),
    }))


if __name__ == "__main__":
    main()
