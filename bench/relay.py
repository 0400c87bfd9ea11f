"""The reference: a minimal `websockets` + Redis pub/sub relay, no persistence, no auth, no Django.

It speaks just enough of the product's two socket protocols for the same load generator to drive it:
- `/ws/widget/?site=KEY`: the first frame is the product's auth frame plus the bench's `conversation` and
  `site` ids (the product ignores those fields); the socket then hears the Redis channel `conv.<id>`. A
  `message` frame is published, as a MSG-like item, to `conv.<id>` (the sender's acknowledgement) and to
  `site.<site>` (the advisors).
- `/ws/inbox/?sites=1,2`: the socket hears `site.<id>` for each id. An advisor's reply is a frame
  `{"type": "reply", "conversation", "site", "client_id", "text"}` (the product takes replies over REST),
  published to `conv.<id>` and `site.<site>`.

One Redis subscription per channel per process, fanned out to the process's local sockets: what
RedisPubSubChannelLayer does, minus everything else. Run several processes on one port with `--reuse-port`.

    python -m bench.relay --port 9000 --redis redis://127.0.0.1:6379/9 [--prefix relay] [--compression]
"""
import argparse
import asyncio
import json
import signal
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from websockets.asyncio.server import serve


class Relay:
    def __init__(self, redis_url: str, prefix: str):
        # Publishers wait for a free connection rather than fail: redis-py's default pool raises
        # MaxConnectionsError past 100 publishes in flight, which closed sockets at 900 messages/s.
        self.redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=64, timeout=10))
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.prefix = prefix
        self.local: dict[str, set] = {}
        self.counter = 0

    def channel(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    async def subscribe(self, name: str, socket) -> None:
        key = self.channel(name)
        sockets = self.local.setdefault(key, set())
        if not sockets:
            await self.pubsub.subscribe(key)
        sockets.add(socket)

    async def unsubscribe(self, name: str, socket) -> None:
        key = self.channel(name)
        sockets = self.local.get(key)
        if sockets is None:
            return
        sockets.discard(socket)
        if not sockets:
            del self.local[key]
            await self.pubsub.unsubscribe(key)

    async def pump(self) -> None:
        """Every frame published on a channel some local socket hears, to those sockets."""
        while True:
            if not self.pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            message = await self.pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            data = message["data"].decode()
            for socket in tuple(self.local.get(message["channel"].decode(), ())):
                try:
                    await socket.send(data)
                except Exception:  # a socket closing while we send: it unsubscribes itself
                    pass

    def item(self, conversation: int, sender: str, frame: dict) -> str:
        self.counter += 1
        now = datetime.now(timezone.utc)
        message = {"id": self.counter, "conversation": conversation, "seq": self.counter, "kind": "text",
                   "sender": sender, "text": frame.get("text", ""), "image_url": None, "buttons": [], "input": None,
                   "advisor": None, "author": None, "client_id": frame.get("client_id"),
                   "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"}
        return json.dumps({"type": "message", "message": message}, separators=(",", ":"))

    async def handler(self, socket) -> None:
        url = urlsplit(socket.request.path)
        if url.path == "/ws/widget/":
            await self.widget(socket)
        elif url.path == "/ws/inbox/":
            await self.inbox(socket, parse_qs(url.query))
        else:
            await socket.close(4404)

    async def widget(self, socket) -> None:
        try:
            auth = json.loads(await asyncio.wait_for(socket.recv(), 10))
        except (asyncio.TimeoutError, ValueError):
            await socket.close(4401)
            return
        conversation, site = int(auth["conversation"]), int(auth["site"])
        await self.subscribe(f"conv.{conversation}", socket)
        try:
            await socket.send(json.dumps({"type": "conversation", "conversation": {"id": conversation,
                                                                                  "status": "live"}}))
            async for raw in socket:
                frame = json.loads(raw)
                if frame.get("type") == "message":
                    data = self.item(conversation, "visitor", frame)
                    await self.redis.publish(self.channel(f"conv.{conversation}"), data)
                    await self.redis.publish(self.channel(f"site.{site}"), data)
                elif frame.get("type") == "ping":
                    await socket.send('{"type":"pong"}')
        finally:
            await self.unsubscribe(f"conv.{conversation}", socket)

    async def inbox(self, socket, query: dict) -> None:
        sites = [int(s) for s in (query.get("sites") or [""])[0].split(",") if s]
        for site in sites:
            await self.subscribe(f"site.{site}", socket)
        try:
            async for raw in socket:
                frame = json.loads(raw)
                if frame.get("type") == "reply":
                    data = self.item(int(frame["conversation"]), "advisor", frame)
                    await self.redis.publish(self.channel(f"conv.{frame['conversation']}"), data)
                    await self.redis.publish(self.channel(f"site.{frame['site']}"), data)
                elif frame.get("type") == "ping":
                    await socket.send('{"type":"pong"}')
        finally:
            for site in sites:
                await self.unsubscribe(f"site.{site}", socket)


async def health(connection, request):
    if request.path == "/healthz":
        return connection.respond(200, '{"status": "ok"}\n')
    return None


async def main(args) -> None:
    relay = Relay(args.redis, args.prefix)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    pump = asyncio.create_task(relay.pump())
    async with serve(relay.handler, args.host, args.port, process_request=health, reuse_port=args.reuse_port,
                     compression="deflate" if args.compression else None, ping_interval=20, max_size=64 * 1024,
                     max_queue=64):
        await stop
    pump.cancel()
    await relay.redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The reference relay of the benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--prefix", default=f"relay-{int(time.time())}")
    parser.add_argument("--compression", action="store_true", help="offer permessage-deflate (browsers ask for it)")
    parser.add_argument("--reuse-port", action="store_true")
    parser.add_argument("--uvloop", action="store_true")
    arguments = parser.parse_args()
    if arguments.uvloop:
        import uvloop

        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))
