"""A layer message for an idle socket is handled in place (livechat.layers._Backlog's taker, JsonSocket.frame_now):
the socket's task is not woken for it. Whatever takes which path, a socket's client hears every message once and
in the order the group was sent them, and a message the socket is not ready for waits its turn in the queue."""
import asyncio
import contextlib
import json
import os

import pytest
from django.conf import settings

from conversations.consumers import JsonSocket
from livechat.layers import _Backlog
from livechat.tests.test_server_protocol import _serving


async def test_the_taker_is_asked_only_while_the_reader_waits_on_an_empty_queue():
    backlog, offered = _Backlog(), []

    def taker(data: bytes) -> bool:
        offered.append(data)
        return data.startswith(b"take")

    backlog.taker = taker
    backlog.offer(b"take 1", b"overflow")  # nobody reads yet: queued, the taker not asked
    assert offered == [] and backlog.qsize() == 1
    assert await backlog.get() == b"take 1"

    reader = asyncio.ensure_future(backlog.get())
    await asyncio.sleep(0)
    backlog.offer(b"take 2", b"overflow")  # the reader waits, the queue is empty: taken in place
    assert offered == [b"take 2"] and backlog.empty() and not reader.done()
    backlog.offer(b"keep 3", b"overflow")  # the taker declines: queued, and the reader wakes for it
    backlog.offer(b"take 4", b"overflow")  # something waits before it: queued behind it, the taker not asked
    assert offered == [b"take 2", b"keep 3"]
    assert await reader == b"keep 3"
    assert await backlog.get() == b"take 4"
    assert backlog.bytes == 0


async def _frames(client, count: int) -> list[dict]:
    return [json.loads(await asyncio.wait_for(client.recv(), 5)) for _ in range(count)]


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL: the in-memory layer has no taker")
async def test_a_socket_hears_every_group_message_once_and_in_order_whichever_path_it_took():
    import websockets
    from channels.layers import get_channel_layer

    group = f"in-place-{os.getpid()}-{id(asyncio.get_running_loop())}"
    dispatched: list[dict] = []
    hold = asyncio.Event()
    hold.set()

    class Socket(JsonSocket):
        async def connect(self):
            await self.channel_layer.group_add(group, self.channel_name)
            await self.accept()

        async def disconnect(self, code):
            await self.channel_layer.group_discard(group, self.channel_name)

        def frame_now(self, message):
            if message["type"] != "news":
                return None
            return message.get("frame") or json.dumps({"n": message["n"]})

        async def news(self, event):
            dispatched.append(event)
            await self.send_text(json.dumps({"n": event["n"]}))

        async def other(self, event):  # no frame_now for it: always through the socket's task
            dispatched.append(event)
            await hold.wait()  # a busy socket: what comes meanwhile must wait in the queue, in order
            await self.send_text(json.dumps({"n": event["n"], "other": True}))

    layer = get_channel_layer()
    async with _serving(Socket.as_asgi()) as port:
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as client:
            await asyncio.sleep(0.1)  # the group joined

            async def receive(count: int) -> list[dict]:
                return [json.loads(await asyncio.wait_for(client.recv(), 5)) for _ in range(count)]

            # idle: each news is taken in place, never dispatched by the socket's task; a second socket of the
            # group is handed the same message (deserialized and framed once for both) and hears it all the same
            async with websockets.connect(f"ws://127.0.0.1:{port}/") as second:
                await asyncio.sleep(0.1)
                for n in range(1, 51):
                    frame = json.dumps({"n": n, "text": "é" * n}, ensure_ascii=False)  # serialized once, as the
                    await layer.group_send(group, {"type": "news", "n": n, "frame": frame})  # inbox's events are
                for reader in (receive, lambda count: _frames(second, count)):
                    assert [(frame["n"], frame["text"]) for frame in await reader(50)] == [
                        (n, "é" * n) for n in range(1, 51)]
            assert dispatched == []

            # one the socket has no frame for goes through its task, and what follows keeps its place
            await layer.group_send(group, {"type": "other", "n": 51})
            await layer.group_send(group, {"type": "news", "n": 52})
            assert await receive(2) == [{"n": 51, "other": True}, {"n": 52}]

            # busy: the socket's task holds a message that had to be dispatched; the rest queue behind it
            hold.clear()
            await layer.group_send(group, {"type": "other", "n": 53})
            for n in range(54, 60):
                await layer.group_send(group, {"type": "news", "n": n})
            await asyncio.sleep(0.2)
            hold.set()
            assert [frame["n"] for frame in await receive(7)] == list(range(53, 60))
            assert [event["n"] for event in dispatched] == [51, 53, *range(54, 60)]
            with contextlib.suppress(asyncio.TimeoutError):
                extra = await asyncio.wait_for(client.recv(), 0.3)
                raise AssertionError(f"heard twice: {extra}")
