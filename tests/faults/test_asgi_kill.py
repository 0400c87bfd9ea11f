"""An ASGI process SIGKILLed while a visitor and an advisor talk: both reconnect to a second process and carry
on; the visitor resends its unacknowledged messages and the advisor its unanswered replies, with the same
client_id, as the real clients do. Nothing acknowledged is lost, nothing is stored or delivered twice."""
import asyncio
import signal

from tests.faults.checks import assert_nothing_lost_or_doubled
from tests.faults.clients import Advisor, Visitor, start_session
from tests.faults.conftest import budget

ROUNDS = 5


async def test_asgi_process_killed_mid_conversation_both_sides_continue_on_another(product, http):
    async with budget():
        # given two processes; the visitor and alice both on the first
        app = product()
        first, second = await asyncio.gather(asyncio.to_thread(app.start_daphne),
                                             asyncio.to_thread(app.start_daphne))
        visitor = Visitor(await start_session(http, first.base))
        await visitor.connect(first.ws)
        alice = await Advisor.login(http, first.base, "alice")
        await alice.connect(first.ws)
        conversation = visitor.conversation_id
        bases = [first.base, second.base]  # alice's client tries the next server when one does not answer
        replies = []
        for i in range(ROUNDS):
            sent = await visitor.send(f"visitor {i}")
            replies.append(await alice.reply(http, bases, conversation, f"alice {i}"))
            await visitor.wait_acked([sent])
        await visitor.wait_seq(replies[-1]["seq"])

        # when both keep talking and the first process is killed in the middle of it
        in_flight = [await visitor.send(f"visitor in flight {i}") for i in range(ROUNDS)]
        replying = [asyncio.create_task(alice.reply(http, bases, conversation, f"alice in flight {i}"))
                    for i in range(ROUNDS)]
        await asyncio.sleep(0.05)
        first.process.kill(signal.SIGKILL)

        # then both sockets drop, both clients reconnect to the second process and the sends go through
        assert await visitor.wait_closed() not in (4401, 4429)
        await alice.wait_closed()
        await visitor.reconnect([second.ws])  # resends the outbox with the same client_ids
        await alice.reconnect([second.ws])
        replies += await asyncio.gather(*replying)
        await visitor.wait_acked(in_flight)
        await visitor.wait_seq(max(r["seq"] for r in replies))

        # and the conversation goes on there, live both ways
        for i in range(ROUNDS):
            sent = await visitor.send(f"visitor on the second process {i}")
            replies.append(await alice.reply(http, [second.base], conversation, f"alice on the second process {i}"))
            await visitor.wait_acked([sent])
            await alice.wait_seen(conversation, visitor.acked[sent])
        await visitor.wait_seq(replies[-1]["seq"])

        # and nothing acknowledged was lost, nothing doubled
        history = await assert_nothing_lost_or_doubled(http, second.base, visitor, alice, replies)
        texts = [m["text"] for m in history if m["sender"] in ("visitor", "advisor")]
        assert len(texts) == len(set(texts)) == 6 * ROUNDS  # three phases, both sides
        await visitor.disconnect()
        await alice.disconnect()
