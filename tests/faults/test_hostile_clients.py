"""Hostile clients: 1 MB frames, 200 sockets on one visitor token, sockets that never authenticate, a flood of
session creations from one address. Each is limited or closed, while the other visitors keep being served:
every message they send is stored and delivered (how fast belongs to the benchmark, not to CI)."""
import asyncio
import contextlib
import json
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.faults.clients import RETRY_ON, WS_OPTIONS, Advisor, Visitor, start_session
from tests.faults.conftest import budget
from tests.faults.servers import ORIGIN

SESSIONS_PER_MINUTE = 30
NORMAL_VISITORS = 4
ROUNDS = 12
BIG_FRAME = "x" * 2 ** 20  # 1 MiB, what daphne still hands to the application (over it, daphne closes 1009)
SOCKETS_PER_TOKEN = 10  # settings.LIVECHAT


async def _normal_traffic(http, bases: list[str], visitors: list[Visitor], alice: Advisor) -> list[dict]:
    """Each visitor writes, alice answers each message: one round a second, under the rate limit."""
    replies = []
    for round_ in range(ROUNDS):
        sent = [await visitor.send(f"round {round_}") for visitor in visitors]
        for visitor, client_id in zip(visitors, sent):
            await visitor.wait_acked([client_id], timeout=120)
            replies.append(await alice.reply(http, bases, visitor.conversation_id, f"answer {round_}"))
        await asyncio.sleep(1)
    return replies


async def _closed_with(ws, timeout: float = 120) -> int | None:
    """Read until the server closes the socket; its close code."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            async for _ in ws:
                pass
    return ws.close_code


async def _retrying(opening, timeout: float = 90):
    """Open again, as real clients do, when a busy server drops the handshake (not what these tests are about)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                return await opening()
            except RETRY_ON:
                await asyncio.sleep(0.5)


async def _widget_socket(ws_base: str):
    return await _retrying(lambda: connect(f"{ws_base}/ws/widget/?site=demo-shop", origin=ORIGIN, **WS_OPTIONS))


async def _authenticated(ws_base: str, token: str):
    async def opening():
        ws = await connect(f"{ws_base}/ws/widget/?site=demo-shop", origin=ORIGIN, **WS_OPTIONS)
        await ws.send(json.dumps({"type": "auth", "token": token, "after": 0}))
        async with asyncio.timeout(60):
            while json.loads(await ws.recv())["type"] != "conversation":
                pass
        return ws

    return await _retrying(opening)


async def _big_frames(ws_bases: list[str], token: str) -> list[int | None]:
    """1 MiB frames, before and after authenticating, on both processes."""
    async def one(ws_base: str, authenticate: bool) -> int | None:
        ws = await (_authenticated(ws_base, token) if authenticate else _widget_socket(ws_base))
        await ws.send(BIG_FRAME)
        return await _closed_with(ws)

    return await asyncio.gather(*(one(ws_base, auth) for ws_base in ws_bases for auth in (False, True)
                                  for _ in range(3)))


async def _many_sockets(ws_bases: list[str], token: str) -> tuple[list[int | None], list]:
    """190 sockets on one token at once, on both processes, then 10 more: the oldest beyond the cap close."""
    async def opened(i: int):
        ws = await _widget_socket(ws_bases[i % 2])
        await ws.send(json.dumps({"type": "auth", "token": token, "after": 0}))
        with contextlib.suppress(ConnectionClosed):  # evicted at once: its close code tells
            async with asyncio.timeout(90):
                while json.loads(await ws.recv())["type"] != "conversation":
                    pass
        return ws

    first = await asyncio.gather(*(opened(i) for i in range(190)))
    last = [await _authenticated(ws_bases[i % 2], token) for i in range(SOCKETS_PER_TOKEN)]
    codes = await asyncio.gather(*(_closed_with(ws) for ws in first))
    return codes, last


async def _never_authenticated(ws_bases: list[str]) -> list[int | None]:
    sockets = await asyncio.gather(*(_widget_socket(ws_bases[i % 2]) for i in range(40)))
    return await asyncio.gather(*(_closed_with(ws) for ws in sockets))


async def _session_flood(http, base: str) -> list[tuple[int, dict, str | None]]:
    async def one():
        response = await http.post(f"{base}/api/widget/sessions", json={"site": "demo-shop"},
                                   headers={"Origin": ORIGIN})
        return response.status_code, response.json(), response.headers.get("Retry-After")

    answers = []
    for _ in range(4):
        answers += await asyncio.gather(*(one() for _ in range(25)))
    return answers


async def test_hostile_clients_are_limited_while_other_visitors_are_served(product, http):
    async with budget(480):
        # given two processes, visitors talking with alice, and a two visitor tokens in hostile hands
        # (all these clients share 127.0.0.1: the per-address cap on unauthenticated sockets is not under test here)
        app = product(SESSIONS_PER_ADDRESS_PER_MINUTE=str(SESSIONS_PER_MINUTE),
                      UNAUTHENTICATED_SOCKETS_PER_ADDRESS="1000")
        first, second = await asyncio.gather(asyncio.to_thread(app.start_daphne),
                                             asyncio.to_thread(app.start_daphne))
        bases, ws_bases = [first.base, second.base], [first.ws, second.ws]
        visitors = [Visitor(await start_session(http, bases[i % 2])) for i in range(NORMAL_VISITORS)]
        for i, visitor in enumerate(visitors):
            await visitor.connect(ws_bases[i % 2])
        alice = await Advisor.login(http, second.base, "alice")
        await alice.connect(second.ws)
        hostile, other_hostile = [(await start_session(http, first.base))["token"] for _ in range(2)]

        # when the hostile clients go at it while the others talk
        normal = asyncio.create_task(_normal_traffic(http, bases, visitors, alice))
        big, (evicted, survivors), unauthenticated, flood = await asyncio.gather(
            _big_frames(ws_bases, other_hostile), _many_sockets(ws_bases, hostile), _never_authenticated(ws_bases),
            _session_flood(http, first.base))
        replies = await normal

        # then each is limited or closed as the contract says
        assert big == [4009] * len(big)
        assert evicted == [4429] * len(evicted), f"close codes of the 190 oldest: {sorted(set(evicted), key=str)}"
        still_open = [ws for ws in survivors if ws.close_code is None]
        assert len(still_open) == SOCKETS_PER_TOKEN
        assert unauthenticated == [4401] * len(unauthenticated)
        refused = [(body, retry) for status, body, retry in flood if status == 429]
        assert refused and all(body["code"] == "rate_limited" and retry for body, retry in refused)
        assert {status for status, _, _ in flood} <= {201, 429}
        resumed = await start_session(http, first.base, token=visitors[0].token)  # a known token is not limited
        assert resumed["visitor"]["id"] == (await start_session(http, first.base, token=visitors[0].token))[
            "visitor"]["id"]

        # and every other visitor was served: all sent, stored, answered and delivered, nothing refused
        for visitor in visitors:
            assert not visitor.outbox and not visitor.errors and visitor.doubles() == []
            mine = [r for r in replies if r["conversation"] == visitor.conversation_id]
            await visitor.wait_seq(max(r["seq"] for r in mine), timeout=120)
            assert {r["seq"] for r in mine} <= visitor.messages.keys()
            for seq in visitor.acked.values():
                await alice.wait_seen(visitor.conversation_id, seq, timeout=120)
        for ws in survivors:
            await ws.close()
        for visitor in visitors:
            await visitor.disconnect()
        await alice.disconnect()


async def test_concurrent_session_flood_never_gets_more_than_the_limit(product, http):
    async with budget():
        # given a process whose per-address limit is 30 a minute
        app = product(SESSIONS_PER_ADDRESS_PER_MINUTE=str(SESSIONS_PER_MINUTE))
        daphne = await asyncio.to_thread(app.start_daphne)

        # when one address asks for 100 new sessions, 25 at a time
        started = time.monotonic()
        flood = await _session_flood(http, daphne.base)
        elapsed = time.monotonic() - started

        # then the limit's burst got one, plus one per 60/limit s of the flood (GCRA), and the rest were refused
        statuses = [status for status, _, _ in flood]
        allowed = statuses.count(201)
        assert SESSIONS_PER_MINUTE <= allowed <= SESSIONS_PER_MINUTE + int(elapsed / (60 / SESSIONS_PER_MINUTE))
        assert statuses.count(429) == len(flood) - allowed
