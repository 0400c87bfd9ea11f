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


async def test_a_requests_sync_work_is_one_trip_to_its_thread_where_djangos_handler_makes_six():
    # given: the same request (an inbox API call without credentials: every middleware, DRF's view, a 401)
    ours, djangos = OneTripHandler(), ASGIHandler()
    # when
    status, trips = await _trips_to_the_loop(ours, "/api/inbox/me")
    django_status, django_trips = await _trips_to_the_loop(djangos, "/api/inbox/me")
    # then: the same answer, with one trip back to the loop (request_started, the chain and the close together), or
    # none seen: a call that ends before the loop has attached its callback is completed from the loop's own thread
    assert status == django_status == 401
    assert trips <= 1 and django_trips >= 4, (trips, django_trips)


def _record_finished(order: list[str]):
    """Append "finished" to `order` whenever request_finished is sent."""
    from django.core import signals

    def finished(**kwargs):
        order.append("finished")

    signals.request_finished.connect(finished, weak=False)
    return finished


async def _served(handler, path: str, order: list[str]) -> list[dict]:
    """GET `path`; append "body" to `order` as the handler sends each part of the body."""
    messages, requests = [], [{"type": "http.request", "body": b""}]

    async def receive():
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client never leaves

    async def send(message):
        messages.append(message)
        if message["type"] == "http.response.body":
            order.append("body")

    scope = {"type": "http", "method": "GET", "path": path, "headers": [(b"host", b"localhost")], "query_string": b""}
    await asyncio.wait_for(handler(scope, receive, send), 5)
    return messages


async def test_a_complete_response_ends_the_request_before_it_is_written_and_a_file_after(media_root, settings):
    from django.core import signals

    # given a file an advisor's page could load (served by Django, streamed), and a plain answer
    media_root.mkdir(parents=True)
    (media_root / "logo.png").write_bytes(b"\x89PNG" + b"x" * 100)
    order: list[str] = []
    finished = _record_finished(order)
    try:
        # when a complete (not streamed) response is served: request_finished (the database connection back to the
        # pool) came before the body was written
        messages = await _served(OneTripHandler(), "/api/inbox/me", order)
        assert messages[0]["status"] == 401 and order == ["finished", "body"]
        # and a streamed file is ended only after its last chunk, as Django does
        order.clear()
        messages = await _served(OneTripHandler(), "/media/logo.png", order)
        assert messages[0]["status"] == 200 and order[-1] == "finished" and "body" in order, order
    finally:
        signals.request_finished.disconnect(finished)


@pytest.mark.django_db(transaction=True)
async def test_the_one_async_view_is_served_through_the_sync_chain():
    status, _ = await _trips_to_the_loop(OneTripHandler(), "/healthz")
    assert status == 200
