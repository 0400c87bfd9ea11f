"""The socket caps count across web processes: two daphne processes on one Redis, one client address."""
import asyncio
import contextlib

from websockets.asyncio.client import connect

from tests.faults.clients import WS_OPTIONS, Advisor
from tests.faults.conftest import budget
from tests.faults.servers import ORIGIN

UNAUTHENTICATED = 6
PER_ADVISOR = 3


async def _close_code(ws, timeout: float) -> int | None:
    """The code the server closed with within `timeout`, or None if the socket is still open."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            with contextlib.suppress(Exception):
                async for _ in ws:
                    pass
            return ws.close_code
    return None


async def test_unauthenticated_and_inbox_caps_count_across_processes(product, http):
    async with budget():
        # given two processes sharing one Redis, with small caps
        app = product(UNAUTHENTICATED_SOCKETS_PER_ADDRESS=str(UNAUTHENTICATED),
                      INBOX_SOCKETS_PER_ADVISOR=str(PER_ADVISOR))
        first, second = await asyncio.gather(asyncio.to_thread(app.start_daphne), asyncio.to_thread(app.start_daphne))
        ws_bases = [first.ws, second.ws]

        # when one address opens widget sockets on both without authenticating, one over the cap
        waiting = [await connect(f"{ws_bases[i % 2]}/ws/widget/?site=demo-shop", origin=ORIGIN, **WS_OPTIONS)
                   for i in range(UNAUTHENTICATED + 1)]
        # then the last is closed 4429 at once, whichever process it reached, and the others wait for their auth
        assert await _close_code(waiting[-1], 5) == 4429
        assert [await _close_code(ws, 0.2) for ws in waiting[:-1]] == [None] * UNAUTHENTICATED

        # when alice opens one inbox socket more than her cap, alternating processes
        alice = await Advisor.login(http, first.base, "alice")
        headers = {"Authorization": f"Token {alice.token}"}
        inbox = []
        for i in range(PER_ADVISOR + 1):
            inbox.append(await connect(f"{ws_bases[i % 2]}/ws/inbox/", additional_headers=headers, **WS_OPTIONS))
            await asyncio.sleep(0.3)  # joined in this order
        # then her oldest closes 4429 though the newest is on the other process
        assert await _close_code(inbox[0], 10) == 4429
        assert [await _close_code(ws, 0.2) for ws in inbox[1:]] == [None] * PER_ADVISOR
        for ws in waiting + inbox:
            await ws.close()
