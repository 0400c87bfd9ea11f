"""HTTP requests run their sync work in threads kept from one request to the next (livechat/request_threads.py)."""
import asyncio
import threading

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from asgiref.testing import ApplicationCommunicator

from livechat.request_threads import IDLE_MAX, RequestThreads


class ThreadOfRequest:
    """An ASGI app that answers with the thread its sync work ran in, the way Django runs a view: inside a
    ThreadSensitiveContext of its own, a thread-sensitive sync_to_async call. `hold` keeps requests in flight."""

    def __init__(self) -> None:
        self.hold = asyncio.Event()
        self.hold.set()

    async def __call__(self, scope, receive, send) -> None:
        async with ThreadSensitiveContext():
            await self.hold.wait()
            ident = await sync_to_async(threading.get_ident)()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(ident).encode()})


async def _request(application) -> int:
    communicator = ApplicationCommunicator(application, {"type": "http", "method": "GET", "path": "/"})
    await communicator.send_input({"type": "http.request", "body": b""})
    await communicator.receive_output(5)
    body = await communicator.receive_output(5)
    await communicator.wait(5)
    return int(body["body"])


async def test_requests_one_after_another_reuse_one_thread():
    application = RequestThreads(ThreadOfRequest())
    threads_before = threading.active_count()

    idents = [await _request(application) for _ in range(5)]

    assert len(set(idents)) == 1, idents
    assert threading.current_thread().ident not in idents  # sync work still leaves the event loop's thread
    assert threading.active_count() <= threads_before + 1  # one kept thread, not one (and a joiner) per request


async def test_requests_in_flight_together_never_share_a_thread():
    inner = ThreadOfRequest()
    application = RequestThreads(inner)
    inner.hold.clear()

    pending = [asyncio.ensure_future(_request(application)) for _ in range(3)]
    await asyncio.sleep(0.05)
    inner.hold.set()
    idents = await asyncio.gather(*pending)

    assert len(set(idents)) == 3, idents
    assert len(application.idle) == 3  # all given back for the next requests


async def test_at_most_idle_max_threads_are_kept():
    inner = ThreadOfRequest()
    application = RequestThreads(inner)
    inner.hold.clear()

    pending = [asyncio.ensure_future(_request(application)) for _ in range(IDLE_MAX + 3)]
    await asyncio.sleep(0.05)
    inner.hold.set()
    await asyncio.gather(*pending)

    assert len(application.idle) == IDLE_MAX
