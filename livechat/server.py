"""The web process: `python -m livechat.server [--host H] [--port P]`. Every place that serves the product runs this
(`make run`, the Dockerfile, docker-compose.yml, the browser and fault tests, `make bench`), so the server and its
options are chosen here, once.

uvicorn, with
- uvloop and httptools: the event loop and HTTP parser in C. The loop runs every frame of every socket (an inbox
  socket hears every message of its sites), so its per-callback cost is multiplied by the sockets listening;
- websockets' sans-I/O protocol: no task per connection (the legacy protocol keeps three per socket: reader,
  keepalive pinger, closer), keepalive pings from timers; a send waits while the transport is paused (64 KB
  unsent), which is what closes a client that stops reading (4008, conversations/consumers.py);
- no permessage-deflate: about 5x the memory per idle socket (151 vs 32 KB measured) for ~400-byte JSON frames;
- websockets' protocol as `WebSocketProtocol` below: what uvicorn's keeps for every socket's whole life, made
  smaller (an idle widget socket measured 41 KB of RSS, most of it Python objects);
- no access log: one line per request and socket would cost more than serving a message;
- Python's cyclic garbage collector tuned for a process that keeps thousands of sockets (`settle_memory`).
"""
import argparse
import asyncio
import gc
import os
from collections.abc import Callable

import uvicorn
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.protocol import Side, State


class _Inbox:
    """What the protocol hands the application (connect, frames, disconnect), in order, as uvicorn uses
    asyncio.Queue for it (put_nowait, get, empty; one reader: the application's `receive`), without the queue's
    three deques (about 2 KB a socket). Short: uvicorn stops reading the socket while a frame waits here."""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: list = []
        self.waiter: asyncio.Future | None = None

    def put_nowait(self, item) -> None:
        self.items.append(item)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def get(self):
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.items.pop(0)

    def empty(self) -> bool:
        return not self.items


class _Writable:
    """asyncio.Event as uvicorn uses it for the transport's flow control (set, clear, wait), without the deque an
    Event keeps from its creation: the waiters' list exists only while a send waits for a paused transport."""

    __slots__ = ("flag", "waiters")

    def __init__(self) -> None:
        self.flag = True
        self.waiters: list[asyncio.Future] | None = None

    def is_set(self) -> bool:
        return self.flag

    def set(self) -> None:
        self.flag = True
        waiters, self.waiters = self.waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self.flag = False

    async def wait(self) -> bool:
        if self.flag:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self.waiters is None:
            self.waiters = []
        self.waiters.append(waiter)
        try:
            return await waiter
        finally:
            if self.waiters is not None and waiter in self.waiters:
                self.waiters.remove(waiter)


# Frames framed but not yet written: past this they are written at once, whatever the turn still sends.
FLUSH_AT_BYTES = 16 * 1024


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, lighter per socket: its receive queue and flow-control event as
    above, and the handshake's request and response (their headers, about 5 KB) let go once the handshake is done;
    uvicorn reads them only to answer it."""

    flush_pending = False
    unflushed = 0  # bytes framed since the last write (at least: uvicorn's own writes take them too)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()
        self.writable = _Writable()

    def send_text_now(self, text: str) -> bool:
        """Frame one text frame now, without waiting, if the socket takes it at once (open, its transport not
        paused); False, having done nothing, otherwise (the caller then sends through `send`).

        A server's frame without extensions is the same bytes for every socket: the last text framed here is kept
        with its frame, and the sockets of a group that are handed the same text (livechat.layers gives them one
        message) reuse it rather than each encoding and framing it again."""
        if not (self.handshake_complete and self.initial_response is None and not self.close_sent
                and not self.disconnected and self.writable.flag):
            return False
        conn = self.conn
        if (conn.side is not Side.SERVER or conn.extensions or conn.debug or conn.expect_continuation_frame
                or conn.state is not State.OPEN):
            self._frame(text.encode(), binary=False)  # websockets' own checks and framing
            return True
        framed = _last_framed
        if framed[0] is not text:
            framed = _remember_framed(text)
        conn.writes.append(framed[1])
        self._framed(len(framed[1]))
        return True

    def _frame(self, data: bytes, *, binary: bool) -> None:
        """Framed now, written at the end of this turn of the loop with whatever else this socket is sent in it: an
        inbox socket hears every message of its sites, often several in one turn under load, and each write is a
        system call (py-spy: a fifth of the process's time went to them). Anything else uvicorn writes (a ping, a
        pong, a close) takes what waits here first, in order."""
        try:
            (self.conn.send_binary if binary else self.conn.send_text)(data)
        except InvalidState:
            raise ClientDisconnected() from None
        self._framed(len(data))

    def _framed(self, size: int) -> None:
        self.unflushed += size
        if self.unflushed >= FLUSH_AT_BYTES:
            # A replay sends a page of frames without waiting: written now, so that a client that does not read
            # pauses the transport (and the next send waits) before the frames pile up here.
            self._flush()
        elif not self.flush_pending:
            self.flush_pending = True
            self.loop.call_soon(self._flush)

    async def send(self, message) -> None:
        if (message["type"] == "websocket.send" and self.handshake_complete and self.initial_response is None
                and not self.close_sent and not self.disconnected and self.writable.flag):
            binary = message.get("bytes")
            self._frame(binary if binary is not None else message["text"].encode(), binary=binary is not None)
            return
        await super().send(message)
        if self.handshake_complete and getattr(self, "request", None) is not None:
            # websockets' parser keeps the request as a local of its suspended generator for the socket's life:
            # emptied, the one object left costs little. The application has its own copy (the scope's headers).
            self.request.headers.clear()
            self.request = self.response = None

    def _flush(self) -> None:
        self.flush_pending, self.unflushed = False, 0
        if (output := self.conn.data_to_send()) and not self.transport.is_closing():
            self.transport.write(b"".join(output))


# The last text framed by send_text_now, and its frame (one tuple: read and replaced whole, from any loop's thread).
_last_framed: tuple[str | None, bytes] = (None, b"")


def _remember_framed(text: str) -> tuple[str, bytes]:
    global _last_framed
    _last_framed = (text, Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[]))
    return _last_framed


def text_sender_of(send) -> "Callable[[str], bool] | None":
    """WebSocketProtocol.send_text_now behind an ASGI `send` this server gave a socket's application, or None."""
    protocol = getattr(send, "__self__", None)
    return getattr(protocol, "send_text_now", None) if isinstance(protocol, WebSocketsSansIOProtocol) else None


def writable_of(send) -> "_Writable | asyncio.Event | None":
    """The flow-control flag behind an ASGI `send` this server gave a socket's application, None under another
    server. While it is set a send neither waits nor can be stalled by the client, so it needs no timeout."""
    protocol = getattr(send, "__self__", None)
    # uvicorn's class, not ours: `python -m livechat.server` runs this file as __main__, a second copy of it.
    return protocol.writable if isinstance(protocol, WebSocketsSansIOProtocol) else None


# The collector's thresholds (Python's are 700, 10, 10). Every full collection walks every object the process
# keeps: measured on the bench machine, 130-200 ms with 1,000 sockets open, which the inbox sockets heard as a
# stall every 10 s or so (v->a p99 200-400 ms at 100 messages/s, against 20-60 ms with these). A full collection
# starts when the objects promoted since the last one pass a quarter of the old ones; a message's objects that are
# still in flight when a young collection runs are promoted, and a bigger young generation promotes fewer of them.
GC_THRESHOLDS = (5_000, 20, 10)


def settle_memory() -> None:
    """Once the application is imported, before it serves: collect, then move everything the imports built
    (Django, the apps, the URL and template machinery: about 130,000 objects) out of the collector's sight for
    good, since none of it will ever be garbage, and raise the thresholds. Full collections then walk only what
    serving made, and come less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


OPTIONS = {
    "loop": "uvloop",
    "http": "httptools",
    "ws": WebSocketProtocol,
    "ws_per_message_deflate": False,
    "access_log": False,
    "lifespan": "off",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m livechat.server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--log-level", default=os.environ.get("SERVER_LOG_LEVEL", "info"))
    parser.add_argument("--ws-per-message-deflate", action="store_true",
                        help="negotiate compression (off in production; `make bench` measures what it costs)")
    arguments = parser.parse_args(argv)
    options = dict(OPTIONS, ws_per_message_deflate=arguments.ws_per_message_deflate)
    from livechat.asgi import application  # imported here rather than by uvicorn, so that it is frozen

    settle_memory()
    uvicorn.run(application, host=arguments.host, port=arguments.port, log_level=arguments.log_level, **options)


if __name__ == "__main__":
    from livechat import server  # the module's classes, those the application imports, rather than __main__'s copies

    server.main()
