"""The lighter per-socket pieces of the web process's WebSocket protocol (livechat/server.py) keep the semantics of
the asyncio.Queue and asyncio.Event that uvicorn uses in their place, and sockets find its flow control."""
import asyncio
import contextlib
import os

import uvicorn
from channels.sessions import SessionMiddlewareStack
from uvicorn.server import ServerState

from conversations.consumers import JsonSocket
from livechat.server import OPTIONS, WebSocketProtocol, _Inbox, _Writable, writable_of


async def test_the_inbox_hands_messages_over_in_order_and_wakes_a_waiting_reader():
    inbox = _Inbox()
    assert inbox.empty()
    reader = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not reader.done()

    inbox.put_nowait({"type": "websocket.connect"})
    inbox.put_nowait({"type": "websocket.receive", "text": "1"})
    inbox.put_nowait({"type": "websocket.receive", "text": "2"})

    assert await asyncio.wait_for(reader, 1) == {"type": "websocket.connect"}
    assert [await inbox.get(), await inbox.get()] == [{"type": "websocket.receive", "text": "1"},
                                                      {"type": "websocket.receive", "text": "2"}]
    assert inbox.empty()


async def test_a_send_waits_while_the_transport_is_paused_and_goes_on_when_it_drains():
    writable = _Writable()
    assert writable.is_set() and await writable.wait() is True  # not paused: no wait at all

    writable.clear()
    waiting = [asyncio.ensure_future(writable.wait()) for _ in range(2)]
    await asyncio.sleep(0.01)
    assert not any(task.done() for task in waiting)

    writable.set()
    assert await asyncio.wait_for(asyncio.gather(*waiting), 1) == [True, True]
    assert writable.waiters is None  # nothing kept once the sends went on


async def test_a_cancelled_wait_leaves_nothing_behind():
    writable = _Writable()
    writable.clear()
    waiting = asyncio.ensure_future(writable.wait())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.sleep(0)
    assert writable.waiters == []
    writable.set()
    assert writable.is_set()


def test_the_server_runs_this_protocol():
    from livechat import server

    assert server.OPTIONS["ws"] is WebSocketProtocol


def _protocol() -> WebSocketProtocol:
    config = uvicorn.Config(app=_never_called, **{**OPTIONS, "loop": "asyncio"})
    config.load()
    return WebSocketProtocol(config=config, server_state=ServerState(), app_state={})


async def _never_called(scope, receive, send):  # the protocol is never connected here
    raise AssertionError("not called")


async def test_a_socket_sends_straight_to_the_server_behind_the_session_middleware():
    """The inbox's cookie sign-in wraps `send` in channels' session middleware, which has nothing to do for a
    socket's frames; the socket sends to the server's own `send` and sees when its transport is paused."""
    protocol = _protocol()
    seen = {}

    class Probe(JsonSocket):
        async def _serve(self, scope, receive, send):
            seen.update(send=send, writable=self.writable)

    scope = {"type": "websocket", "path": "/ws/inbox/", "headers": [(b"cookie", b"sessionid=x")]}
    await SessionMiddlewareStack(Probe.as_asgi())(scope, None, protocol.send)

    assert seen["send"] == protocol.send
    assert seen["writable"] is protocol.writable and writable_of(protocol.send) is protocol.writable


async def test_under_another_server_a_socket_has_no_flow_control_flag_and_times_its_sends():
    async def other_send(message):
        pass

    assert writable_of(other_send) is None


def test_the_web_process_freezes_what_its_imports_built_and_collects_young_objects_less_often():
    """In a process of its own: settle_memory changes the whole interpreter's collector."""
    import subprocess
    import sys

    script = ("import gc; import django; from livechat.server import GC_THRESHOLDS, settle_memory; "
              "from livechat.asgi import application; settle_memory(); "
              "print(gc.get_freeze_count(), len(gc.get_objects()), gc.get_threshold() == GC_THRESHOLDS)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "livechat.settings"}, check=True)
    frozen, still_tracked, thresholds_set = done.stdout.split()
    assert int(frozen) > 50_000  # Django and the apps, out of every collection's walk
    assert int(still_tracked) < 1_000
    assert thresholds_set == "True"


class _CountedWrites:
    """The protocol's real transport, with its writes counted."""

    def __init__(self, transport):
        self.transport, self.writes = transport, []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def __getattr__(self, name):
        return getattr(self.transport, name)


@contextlib.asynccontextmanager
async def _serving(app):
    """The web process's uvicorn server with its protocol, on a free port of loopback: yields the port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, **{**OPTIONS, "loop": "asyncio", "log_level": "warning"})
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await serving


async def test_frames_sent_in_one_turn_leave_together_in_order_and_a_close_follows_them():
    """The protocol writes the frames of a turn of the loop together, at its end or with whatever uvicorn writes
    next; they arrive whole and in order, the close after them, on a real server and a real client."""
    import websockets

    counted = []

    async def app(scope, receive, send):
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        protocol = send.__self__
        protocol.transport = _CountedWrites(protocol.transport)
        counted.append(protocol.transport)
        for turn in range(2):
            for n in range(5):
                await send({"type": "websocket.send", "text": f"turn {turn} frame {n}"})
            if turn == 0:  # the end of the turn writes them: the client answers once it has all five
                assert (await receive())["text"] == "five"
        await send({"type": "websocket.close", "code": 4000})

    received = []
    async with _serving(app) as port:
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as client:
            received = [await asyncio.wait_for(client.recv(), 5) for _ in range(5)]
            await client.send("five")
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:
                    received.append(await client.recv())
            assert client.close_code == 4000

    assert received == [f"turn {turn} frame {n}" for turn in range(2) for n in range(5)]
    # Five frames at the end of the first turn; the close took the five waiting before it: two system calls, not 11
    assert len(counted[0].writes) == 2


async def test_a_socket_whose_client_vanished_while_a_frame_was_on_its_way_ends_quietly_and_once(caplog):
    """The client drops the connection (no close frame) while a group event for it is being handled: the send
    raises uvicorn's ClientDisconnected, an OSError. That is the client's end, not an outage: no 'closing 4503'
    warning, and disconnect() runs once."""
    import websockets
    from channels.layers import get_channel_layer

    group = f"vanish-{os.getpid()}-{id(caplog)}"
    release, event_held = asyncio.Event(), asyncio.Event()
    protocols, disconnects, ended = [], [], asyncio.Event()

    class Socket(JsonSocket):
        async def connect(self):
            await self.channel_layer.group_add(group, self.channel_name)
            protocols.append(self.base_send.__self__)
            await self.accept()

        async def late_news(self, event):
            event_held.set()
            await release.wait()  # holds the socket's dispatch while its client goes away
            await self.send(text_data="too late")

        async def disconnect(self, code):
            disconnects.append(code)
            await self.channel_layer.group_discard(group, self.channel_name)

    socket_app = Socket.as_asgi()

    async def app(scope, receive, send):
        try:
            await socket_app(scope, receive, send)
        finally:
            ended.set()

    async with _serving(app) as port:
        client = await websockets.connect(f"ws://127.0.0.1:{port}/")
        await get_channel_layer().group_send(group, {"type": "late.news"})
        await asyncio.wait_for(event_held.wait(), 5)
        client.transport.abort()  # gone, without a close frame
        while not protocols[0].disconnected:
            await asyncio.sleep(0.01)
        with caplog.at_level("WARNING", logger="conversations.consumers"):
            release.set()
            await asyncio.wait_for(ended.wait(), 5)

    assert len(disconnects) == 1, disconnects  # 1005 or 1006: whichever of the two ends reached it first
    assert not [r for r in caplog.records if r.name == "conversations.consumers"], caplog.text
