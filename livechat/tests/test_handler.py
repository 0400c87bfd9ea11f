"""Django's views and middleware entered in one trip from the event loop to the request's thread
(livechat/handler.py)."""
import asyncio
import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler

from livechat.handler import OneTripHandler


async def _trips_to_the_loop(handler, path: str) -> tuple[int, int]:
    """The status of GET `path`, and how many times the request's threads handed work back to the event loop.

    Only the threads of the request's executor count (asgiref names them ThreadPoolExecutor-N_M): when the
    request's ThreadSensitiveContext closes, the loop's default executor (asyncio_N) and a joining thread shut
    that executor down, and those two trips land before or after the response depending on the scheduler."""
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    original = loop.call_soon_threadsafe
    trips = 0

    def counted(*args, **kwargs):
        nonlocal trips
        if threading.get_ident() != loop_thread and threading.current_thread().name.startswith("ThreadPoolExecutor"):
            trips += 1
        return original(*args, **kwargs)

    loop.call_soon_threadsafe = counted
    try:
        communicator = ApplicationCommunicator(handler, {"type": "http", "method": "GET", "path": path,
                                                         "headers": [(b"host", b"localhost")],
                                                         "query_string": b""})
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(5)
        await communicator.receive_output(5)
        await communicator.wait(5)
    finally:
        del loop.call_soon_threadsafe
    return start["status"], trips


async def test_a_request_crosses_to_its_thread_and_back_half_as_often_as_under_djangos_handler():
    # given: the same request (an inbox API call without credentials: every middleware, DRF's view, a 401)
    ours, djangos = OneTripHandler(), ASGIHandler()
    # when
    status, trips = await _trips_to_the_loop(ours, "/api/inbox/me")
    django_status, django_trips = await _trips_to_the_loop(djangos, "/api/inbox/me")
    # then: the same answer, with at most half the trips back to the loop
    assert status == django_status == 401
    assert 0 < trips * 2 <= django_trips, (trips, django_trips)


@pytest.mark.django_db(transaction=True)
async def test_the_one_async_view_is_served_through_the_sync_chain():
    status, _ = await _trips_to_the_loop(OneTripHandler(), "/healthz")
    assert status == 200
