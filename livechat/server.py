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
- no access log: one line per request and socket would cost more than serving a message.
"""
import argparse
import os

import uvicorn

APPLICATION = "livechat.asgi:application"
OPTIONS = {
    "loop": "uvloop",
    "http": "httptools",
    "ws": "websockets-sansio",
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
    uvicorn.run(APPLICATION, host=arguments.host, port=arguments.port, log_level=arguments.log_level, **options)


if __name__ == "__main__":
    main()
