"""Sockets and the database threads: one socket waiting on the database does not hold up the others (PostgreSQL)."""
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections, transaction

from conversations.models import Conversation
from conversations.tests.conftest import message_with, new_id, start_session, widget_socket

pytestmark = pytest.mark.django_db(transaction=True)


class RowLock:
    """Holds a conversation's row lock from another connection, as a slow writer elsewhere would."""

    def __init__(self, conversation_id: int):
        self.conversation_id = conversation_id
        self.taken, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        try:
            with transaction.atomic():
                Conversation.objects.select_for_update().get(pk=self.conversation_id)
                self.taken.set()
                self.release.wait(timeout=30)
        finally:
            connections.close_all()

    def __enter__(self):
        self.thread.start()
        assert self.taken.wait(timeout=10)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(timeout=10)


async def test_a_send_waiting_on_a_row_lock_does_not_hold_up_another_visitors_send(demo):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite takes one writer at a time: its calls stay in one thread by design")
    # given two visitors on their sockets
    blocked, free = await sync_to_async(start_session)(), await sync_to_async(start_session)()
    blocked_socket, free_socket = await widget_socket(blocked["token"]), await widget_socket(free["token"])
    try:
        with RowLock(blocked["conversation"]["id"]):
            # when the first visitor's send waits for its conversation's row lock
            waiting = new_id()
            await blocked_socket.send({"type": "message", "client_id": waiting, "text": "stuck behind a lock"})

            # then the other visitor's send is stored and acknowledged meanwhile
            passing = new_id()
            await free_socket.send({"type": "message", "client_id": passing, "text": "not stuck"})
            await free_socket.wait_for(message_with(lambda m: m["client_id"] == passing), timeout=5)
            await blocked_socket.drain(timeout=0.1)
            assert not any(f["type"] == "message" and f["message"]["client_id"] == waiting
                           for f in blocked_socket.frames), "stored through the row lock?"

        # and once the lock is released the first send goes through
        await blocked_socket.wait_for(message_with(lambda m: m["client_id"] == waiting), timeout=10)
    finally:
        await blocked_socket.disconnect()
        await free_socket.disconnect()
