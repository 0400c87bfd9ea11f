"""Redis restarted in the middle of a conversation: the sockets notice, the clients reconnect, nothing that was
acknowledged is lost, and what the layer dropped meanwhile arrives once, by `seq`. On both channel layers: the
PubSub layer (the default) loses what was published meanwhile, the core layer loses its group memberships too."""
import asyncio

import pytest
import redis

from tests.faults.checks import assert_nothing_lost_or_doubled, wait_health
from tests.faults.clients import Advisor, Visitor, start_session
from tests.faults.conftest import budget


async def _reconnect_while_told(clients, ws: str, settle_s: float = 3.0) -> None:
    """Reconnect each client whose socket the server closed with 4503, as the page and the widget do, until none is
    closed for `settle_s`: right after a restart, a pooled connection to the old Redis can fail once more, and the
    layer's recovery closes every socket open at that moment, one opened a few milliseconds before included. A
    socket closed before this started counts too (it was missed when only the closes from here on were: the
    visitor's, closed while alice reconnected, stayed closed and its sends unacknowledged)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle_s
    while loop.time() < deadline:
        await asyncio.sleep(0.2)
        for client in clients:
            if client.ws is None:
                assert client.closes[-1] == 4503, client.closes
                await client.reconnect([ws])
                deadline = loop.time() + settle_s


def _subscribed(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return len(client.pubsub_channels())
    finally:
        client.close()


@pytest.mark.parametrize("layer", ["livechat.layers.BatchingRedisPubSubChannelLayer",
                                   "channels_redis.core.RedisChannelLayer"], ids=["pubsub", "core"])
async def test_redis_restart_mid_conversation_loses_nothing_acknowledged(product, http, layer):
    async with budget():
        # given a visitor and alice talking through one process
        app = product(CHANNEL_LAYER_BACKEND=layer)
        daphne = await asyncio.to_thread(app.start_daphne)
        visitor = Visitor(await start_session(http, daphne.base))
        await visitor.connect(daphne.ws)
        alice = await Advisor.login(http, daphne.base, "alice")
        await alice.connect(daphne.ws)
        conversation = visitor.conversation_id
        hello = await alice.reply(http, [daphne.base], conversation, "Hello, how can I help?")
        await visitor.wait_seq(hello["seq"])
        before = await visitor.send("before the outage")
        await visitor.wait_acked([before])
        await alice.wait_seen(conversation, visitor.acked[before])

        # and /healthz, asked again and again, leaves no subscription behind (it probes on one channel)
        channels = await asyncio.to_thread(_subscribed, app.redis.url)
        for _ in range(10):
            status, body = await asyncio.to_thread(daphne.health)
            assert status == 200, body
        assert await asyncio.to_thread(_subscribed, app.redis.url) == channels

        # when Redis dies
        app.redis.stop()

        # then /healthz says so, and the chat keeps storing what both sides send (the database is the truth)
        status, body = await wait_health(daphne, 503)
        assert body["channel_layer"] == "unavailable" and body["database"] == "ok", body
        during = [await visitor.send(f"while Redis is down {i}") for i in range(3)]
        replies = [await alice.reply(http, [daphne.base], conversation, f"alice while Redis is down {i}")
                   for i in range(3)]
        if layer.endswith("PubSubChannelLayer"):  # its sockets live on: the visitor's sends are acknowledged,
            await visitor.wait_acked(during)  # and alice's socket, on the same process, hears them without Redis
            await alice.wait_seen(conversation, max(visitor.acked[client_id] for client_id in during))

        # when Redis comes back (empty: a restart)
        await asyncio.to_thread(app.redis.start)

        # then both sockets are closed to make their clients catch up (PubSub: when the layer is back, since it
        # lost what it carried meanwhile; core: at once, the socket's own channel is in Redis)
        assert await visitor.wait_closed() == 4503
        assert await alice.wait_closed() == 4503
        await wait_health(daphne, 200)

        # and both clients reconnect: the visitor with `after` and its unacknowledged sends, alice reloading what
        # came after the last item her socket had brought
        seen = alice.last_seen(conversation)
        await visitor.reconnect([daphne.ws])
        await alice.reconnect([daphne.ws])
        await _reconnect_while_told([visitor, alice], daphne.ws)
        await visitor.wait_acked(during)
        await visitor.wait_seq(replies[-1]["seq"])
        every = await alice.messages(http, daphne.base, conversation)
        reached = {m["client_id"] for m in every if m["seq"] > seen or m["seq"] in alice.seen[conversation]}
        assert reached >= set(during) | {r["client_id"] for r in replies}  # live, or by the catch-up

        # and the conversation goes on live, both ways
        after = await visitor.send("after the restart")
        await visitor.wait_acked([after])
        await alice.wait_seen(conversation, visitor.acked[after])
        last = await alice.reply(http, [daphne.base], conversation, "alice after the restart")
        await visitor.wait_seq(last["seq"])

        await assert_nothing_lost_or_doubled(http, daphne.base, visitor, alice,
                                             replies=[hello, *replies, last])
        await visitor.disconnect()
        await alice.disconnect()
