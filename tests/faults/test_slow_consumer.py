"""A slow consumer: a visitor socket (and an advisor's inbox socket) that stops reading while an advisor sends
5,000 messages is closed 4008 before the server's memory grows past a bound, and the visitor recovers
everything through `after=seq`."""
import asyncio
import contextlib

import pytest

from tests.faults.clients import Advisor, Visitor, start_session
from tests.faults.conftest import budget

FLOOD = 5000
SENDERS = 8
TEXT = "\N{GRINNING FACE}" * 4000  # the longest message, 16 KB of UTF-8: 80 MB for the whole flood
RSS_BOUND = 48 * 2 ** 20  # what the slow sockets' process may grow by: 60% of what the flood weighs


async def _sample_rss(daphne, peak: list[int]) -> None:
    while True:
        peak[0] = max(peak[0], daphne.rss())
        await asyncio.sleep(0.1)


async def _keep_writing(client) -> None:
    """A client that stops reading but still writes: the server's keep-alive alone would not notice it."""
    while True:
        await asyncio.sleep(5)
        await client.send_frame({"type": "ping"})


async def _read_again_once_closed(client, daphne, consumer: str) -> None:
    """Read again once the server gave up on the socket (it logs so), to get the close frame queued behind the
    backlog. A client reading again later would find the connection dropped (the close waits 30 s for it)."""
    while f"{consumer}: the client does not read" not in daphne.process.log.read_text(errors="replace"):
        await asyncio.sleep(0.2)
    client.reading.set()


# daphne buffers without limit (the socket measures its buffer); uvicorn, the production server, makes a send wait
# for its client (the socket times the send): both close 4008.
@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
async def test_sockets_that_stop_reading_are_closed_4008_before_memory_grows_and_the_visitor_recovers(product,
                                                                                                        http, server):
    async with budget(600):
        # given a visitor and bob (inbox) on one process whose clients will stop reading, and alice replying
        # through two others
        app = product()
        slow_side, advisor_side, other_side = await asyncio.gather(
            *(asyncio.to_thread(app.start_daphne, server=server) for _ in range(3)))
        visitor = Visitor(await start_session(http, advisor_side.base))
        await visitor.connect(slow_side.ws, rcvbuf=4096, max_queue=1)
        alice = await Advisor.login(http, advisor_side.base, "alice")
        bob = await Advisor.login(http, advisor_side.base, "bob")
        await bob.connect(slow_side.ws, rcvbuf=4096, max_queue=1)
        conversation = visitor.conversation_id
        first = await alice.reply(http, [advisor_side.base], conversation, TEXT)
        await visitor.wait_seq(first["seq"])
        await bob.wait_seen(conversation, first["seq"])
        baseline = slow_side.rss()
        peak = [baseline]
        helpers = [asyncio.create_task(coroutine) for coroutine in (
            _sample_rss(slow_side, peak), _keep_writing(visitor), _keep_writing(bob),
            _read_again_once_closed(visitor, slow_side, "WidgetConsumer"),
            _read_again_once_closed(bob, slow_side, "InboxConsumer"))]
        try:
            # when both clients stop reading and alice sends 5,000 long messages
            visitor.reading.clear()
            bob.reading.clear()

            async def send(worker: int) -> list[dict]:
                bases = [(advisor_side, other_side)[worker % 2].base]
                return [await alice.reply(http, bases, conversation, TEXT) for _ in range(worker, FLOOD, SENDERS)]

            replies = [r for batch in await asyncio.gather(*(send(w) for w in range(SENDERS))) for r in batch]

            # then the server closed both sockets 4008, and its memory never grew past the bound
            assert await visitor.wait_closed(timeout=120) == 4008
            assert await bob.wait_closed(timeout=120) == 4008
            assert peak[0] - baseline < RSS_BOUND, f"grew by {(peak[0] - baseline) / 2 ** 20:.0f} MiB"

            # and the visitor, reconnecting with the last seq it holds, gets all the rest once
            last = max(r["seq"] for r in replies)
            held = visitor.last_seq
            await visitor.connect(slow_side.ws)
            await visitor.wait_seq(last, timeout=180)
            assert peak[0] - baseline < RSS_BOUND, f"the replay grew it by {(peak[0] - baseline) / 2 ** 20:.0f} MiB"
        finally:
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(BaseException):
                    await helper
        assert held < last
        assert visitor.doubles() == []
        visible = [m["seq"] for m in await visitor.history(http, advisor_side.base)]
        assert sorted(visitor.messages) == visible
        assert {r["seq"] for r in replies} <= visitor.messages.keys()
        await visitor.disconnect()
        await bob.disconnect()
