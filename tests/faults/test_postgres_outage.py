"""PostgreSQL stopped for a few seconds: sends are refused with `unavailable` (never acknowledged without being
stored), /healthz says 503, and everything works again when it returns, without restarting the product."""
import asyncio

from tests.faults.checks import assert_nothing_lost_or_doubled, wait_health
from tests.faults.clients import Advisor, Visitor, new_id, start_session
from tests.faults.conftest import budget

OUTAGE_S = 4


async def test_postgres_stopped_sends_refused_unavailable_then_recovers_by_itself(product, http):
    async with budget():
        # given a visitor and alice talking
        app = product()
        daphne = await asyncio.to_thread(app.start_daphne)
        visitor = Visitor(await start_session(http, daphne.base))
        await visitor.connect(daphne.ws)
        alice = await Advisor.login(http, daphne.base, "alice")
        await alice.connect(daphne.ws)
        conversation = visitor.conversation_id
        replies = [await alice.reply(http, [daphne.base], conversation, "Hello, how can I help?")]
        before = await visitor.send("before the outage")
        await visitor.wait_acked([before])

        # when PostgreSQL stops
        try:
            await asyncio.to_thread(app.postgres.stop, "fast")
            status, body = await wait_health(daphne, 503)
            assert body["database"] == "unavailable" and body["channel_layer"] == "ok", body

            # then each send is refused with `unavailable` and its client_id, and none is acknowledged
            during = [await visitor.send(f"while PostgreSQL is down {i}") for i in range(3)]
            await visitor.events.wait(
                lambda: {e["client_id"] for e in visitor.errors if e["code"] == "unavailable"} >= set(during),
                60, "`unavailable` for each send")
            assert not set(during) & visitor.acked.keys()
            refused = await http.post(f"{daphne.base}/api/inbox/conversations/{conversation}/messages",
                                      json={"client_id": new_id(), "text": "alice while down"},
                                      headers=alice.headers)
            assert refused.status_code == 503 and refused.json()["code"] == "unavailable", refused.text
            await asyncio.sleep(OUTAGE_S)
            assert not set(during) & visitor.acked.keys(), "acknowledged while the database was down"
        finally:
            await asyncio.to_thread(app.postgres.start)

        # when it is back, without touching the product: /healthz says so
        await wait_health(daphne, 200)

        # then the refused sends go through when sent again with the same client_id, as the widget does
        await visitor.resend()
        await visitor.wait_acked(during)
        replies.append(await alice.reply(http, [daphne.base], conversation, "alice after the outage"))
        await visitor.wait_seq(replies[-1]["seq"])
        after = await visitor.send("after the outage")
        await visitor.wait_acked([after])
        await alice.wait_seen(conversation, visitor.acked[after])

        await assert_nothing_lost_or_doubled(http, daphne.base, visitor, alice, replies)
        await visitor.disconnect()
        await alice.disconnect()
