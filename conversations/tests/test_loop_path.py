"""A visitor's text to a live conversation, written by the event loop itself (livechat/loop_io.py): the same item,
frames and rate limit as the thread path, never a send lost or held up when the loop cannot write it."""
import asyncio
from types import SimpleNamespace

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from conversations import consumers, services
from conversations.models import Conversation, Message, Visitor
from conversations.tests.conftest import inbox_socket, message_with, new_id, widget_socket
from conversations.tests.test_sockets_database import RowLock
from integrations import webhooks
from livechat import loop_io

# The loop's connections see committed rows only.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loop_writes_postgresql_only")]


@pytest.fixture
def thread_sends(monkeypatch) -> list[str]:
    """The kinds of the sends that went to a database thread."""
    calls = []
    in_thread = consumers._widget_send_in_thread

    def counted(kind, arguments, **more):
        calls.append(kind)
        return in_thread(kind, arguments, **more)

    monkeypatch.setattr(consumers, "_widget_send_in_thread", counted)
    return calls


def _live_visitor(demo) -> dict:
    """A visitor whose conversation alice answered, who has spoken since: its next text is the loop's."""
    session = services.visitor_session_start(site=demo.sites["shop"])
    services.advisor_message_send(conversation_id=session.conversation.pk, advisor=demo.advisors["alice"],
                                  client_id=new_id(), text="Hello, how can I help?")
    visitor = Visitor.objects.get(pk=session.visitor.pk)
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="I have a question")
    webhooks.site_hooks(visitor.site_id)  # as the first send of the site in a process leaves it
    return {"token": session.token, "conversation": session.conversation.pk, "site": visitor.site_id}


def _visitor_texts(conversation_id: int) -> list[str]:
    return list(Message.objects.filter(conversation_id=conversation_id, sender="visitor").order_by("seq")
                .values_list("text", flat=True))


async def _sent(socket, text: str) -> dict:
    client_id = new_id()
    await socket.send({"type": "message", "client_id": client_id, "text": text})
    return (await socket.wait_for(lambda f: f["type"] == "error" or (
        f["type"] == "message" and f["message"]["client_id"] == client_id)))


async def test_a_text_to_a_live_conversation_is_written_on_the_loop_and_heard_like_any_other(demo, tokens,
                                                                                            thread_sends):
    # given alice's inbox open and a visitor of her site in a live conversation
    visitor = await sync_to_async(_live_visitor)(demo)
    inbox = await inbox_socket(tokens["alice"])
    socket = await widget_socket(visitor["token"])
    try:
        # when the visitor sends a text
        ack = await _sent(socket, "Where is my order?")

        # then no database thread took part, the item is stored after the others, and alice hears it
        assert thread_sends == []
        stored = await sync_to_async(Message.objects.get)(conversation_id=visitor["conversation"],
                                                          client_id=ack["message"]["client_id"])
        assert (stored.text, stored.seq, stored.sender) == ("Where is my order?", ack["message"]["seq"], "visitor")
        heard = await inbox.wait_for(message_with(lambda m: m["client_id"] == stored.client_id))
        assert heard["message"]["seq"] == stored.seq and heard["message"]["created_at"] == ack["message"]["created_at"]
        conversation = await sync_to_async(Conversation.objects.get)(pk=stored.conversation_id)
        assert (conversation.last_seq, conversation.last_visitor_seq, conversation.last_message_id) == (
            stored.seq, stored.seq, stored.pk)
    finally:
        await socket.disconnect()
        await inbox.disconnect()


async def test_the_loop_and_the_threads_take_slots_of_one_limit_and_a_text_counts_once(demo, settings, thread_sends):
    settings.LIVECHAT = {**settings.LIVECHAT, "RATE_LIMIT_COUNT": 3, "RATE_LIMIT_WINDOW_S": 60}
    # given a live conversation alice answered before the visitor said anything
    session = await sync_to_async(services.visitor_session_start)(site=demo.sites["shop"])
    await sync_to_async(services.advisor_message_send)(conversation_id=session.conversation.pk,
                                                       advisor=demo.advisors["alice"], client_id=new_id(), text="Hi!")
    await sync_to_async(webhooks.site_hooks)(demo.sites["shop"].pk)
    socket = await widget_socket(session.token)
    try:
        # when the visitor sends three texts: the loop takes the first one's slot and leaves its writing (the
        # visitor's first words) to the thread path, which takes no second slot; the loop writes the next two
        for text in ("first words", "second", "third"):
            frame = await _sent(socket, text)
            assert frame["type"] == "message", frame
        assert thread_sends == ["message"]
        # then the fourth is refused, and stores nothing
        refused = await _sent(socket, "one too many")
        assert refused["code"] == "rate_limited" and refused["retry_after"] > 0
        texts = await sync_to_async(_visitor_texts)(session.conversation.pk)
        assert texts == ["first words", "second", "third"]
    finally:
        await socket.disconnect()


async def test_the_loop_refuses_over_the_limit_before_writing(demo, settings, thread_sends):
    settings.LIVECHAT = {**settings.LIVECHAT, "RATE_LIMIT_COUNT": 2, "RATE_LIMIT_WINDOW_S": 60}
    visitor = await sync_to_async(_live_visitor)(demo)
    socket = await widget_socket(visitor["token"])
    try:
        # the fixture's own text took no slot (written by the services directly): two pass, on the loop
        assert [(await _sent(socket, text))["type"] for text in ("one", "two")] == ["message", "message"]
        refused = await _sent(socket, "three")
        assert refused["type"] == "error" and refused["code"] == "rate_limited"
        assert thread_sends == []
        assert not await sync_to_async(Message.objects.filter(text="three").exists)()
    finally:
        await socket.disconnect()


async def test_when_every_loop_connection_waits_on_a_lock_other_visitors_texts_go_through_the_threads(
        demo, settings, thread_sends):
    settings.DATABASE_LOOP_CONNECTIONS = 1
    blocked, free = await sync_to_async(_live_visitor)(demo), await sync_to_async(_live_visitor)(demo)
    blocked_socket, free_socket = await widget_socket(blocked["token"]), await widget_socket(free["token"])
    try:
        with RowLock(blocked["conversation"]):
            # when the first visitor's text waits for its conversation's row lock on the loop's one connection
            waiting = new_id()
            await blocked_socket.send({"type": "message", "client_id": waiting, "text": "stuck behind a lock"})
            await asyncio.sleep(0.2)
            # then the other visitor's text is stored and acknowledged meanwhile, through a database thread
            passing = await _sent(free_socket, "not stuck")
            assert passing["type"] == "message" and thread_sends == ["message"]
            assert not [f for f in blocked_socket.frames if f["type"] == "message"
                        and f["message"]["client_id"] == waiting]
        # and once the lock is released the first text is stored, by the loop
        await blocked_socket.wait_for(message_with(lambda m: m["client_id"] == waiting), timeout=10)
        assert thread_sends == ["message"]
    finally:
        await blocked_socket.disconnect()
        await free_socket.disconnect()


async def test_a_loop_connection_postgresql_dropped_loses_no_text(demo, tokens, thread_sends):
    # given a visitor whose last text the loop wrote, and alice's inbox open
    visitor = await sync_to_async(_live_visitor)(demo)
    inbox = await inbox_socket(tokens["alice"])
    socket = await widget_socket(visitor["token"])
    try:
        assert (await _sent(socket, "before"))["type"] == "message" and thread_sends == []
        # when PostgreSQL ends the loop's connection (a restart, an administrator's pg_terminate_backend)
        (own,) = loop_io._postgres.values()
        pids = [c.info.backend_pid for c in own.idle]
        assert pids
        await sync_to_async(_terminate)(pids)

        # then the next text is stored once, acknowledged and heard: the thread path took it
        ack = await _sent(socket, "during")
        assert ack["type"] == "message" and thread_sends == ["message"]
        await inbox.wait_for(message_with(lambda m: m["client_id"] == ack["message"]["client_id"]))
        # and a second later the loop writes again, on a new connection
        await asyncio.sleep(loop_io.REST_AFTER_FAILURE_S + 0.1)
        assert (await _sent(socket, "after"))["type"] == "message" and thread_sends == ["message"]
        texts = await sync_to_async(_visitor_texts)(visitor["conversation"])
        assert texts[-3:] == ["before", "during", "after"] and len(texts) == len(set(texts))
    finally:
        await socket.disconnect()
        await inbox.disconnect()


def _terminate(pids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])


async def test_a_site_whose_webhook_wants_messages_has_its_texts_written_by_the_threads(demo, settings,
                                                                                       thread_sends):
    from integrations.models import Delivery
    from integrations.tests.conftest import make_webhook

    settings.WEBHOOK_ALLOW_PRIVATE = True
    visitor = await sync_to_async(_live_visitor)(demo)
    await sync_to_async(make_webhook)(SimpleNamespace(sites={"shop": demo.sites["shop"]}), "http://127.0.0.1:9/",
                                      events=["message.created"])
    socket = await widget_socket(visitor["token"])
    try:
        ack = await _sent(socket, "with a webhook")
        assert ack["type"] == "message" and thread_sends == ["message"]
        assert await sync_to_async(Delivery.objects.filter(conversation_id=visitor["conversation"],
                                                           event="message.created").count)() == 1
    finally:
        await socket.disconnect()


def test_the_webhooks_cache_answers_without_the_database_or_says_it_does_not_know(demo, settings):
    from integrations.tests.conftest import make_webhook

    settings.WEBHOOK_ALLOW_PRIVATE = True
    site = demo.sites["shop"]
    webhooks.forget_cached()
    assert webhooks.listens_for_messages_as_cached(site.pk) is None
    webhooks.site_hooks(site.pk)
    assert webhooks.listens_for_messages_as_cached(site.pk) is False
    make_webhook(SimpleNamespace(sites={"shop": site}), "http://127.0.0.1:9/", events=["message.created"])
    webhooks.site_hooks(site.pk)
    assert webhooks.listens_for_messages_as_cached(site.pk) is True
    settings.WEBHOOK_CONFIG_TTL_S = 0
    webhooks.forget_cached()
    webhooks.site_hooks(site.pk)
    assert webhooks.listens_for_messages_as_cached(site.pk) is None  # stale at once


async def test_a_burst_of_texts_waits_for_the_loops_connections_rather_than_going_to_the_threads(demo, settings,
                                                                                             thread_sends):
    # given the loop's one connection busy for a moment: a text waits on its conversation's row lock
    settings.DATABASE_LOOP_CONNECTIONS = 1
    visitors = [await sync_to_async(_live_visitor)(demo) for _ in range(5)]
    sockets = [await widget_socket(visitor["token"]) for visitor in visitors]
    try:
        with RowLock(visitors[0]["conversation"]):
            first = asyncio.ensure_future(_sent(sockets[0], "behind a lock"))
            await asyncio.sleep(0.02)
            # when four other visitors speak meanwhile (a loop that was busy reads the frames of a burst in one turn)
            others = asyncio.gather(*(_sent(socket, f"at once {n}") for n, socket in enumerate(sockets[1:], 1)))
            await asyncio.sleep(0.03)
        acks = [await first, *await others]

        # then every text is stored and acknowledged, each by the loop, one after the other on its connection,
        # none by the threads (which write a text in six round trips and a thread hop)
        assert [ack["type"] for ack in acks] == ["message"] * 5
        assert thread_sends == []
        for n, visitor in enumerate(visitors[1:], 1):
            assert (await sync_to_async(_visitor_texts)(visitor["conversation"]))[-1] == f"at once {n}"
    finally:
        for socket in sockets:
            await socket.disconnect()


async def test_a_borrower_waits_for_a_busy_loop_connection_a_bounded_time_then_gets_none():
    own = loop_io._Connections(1)
    async with own.borrow() as held:  # the loop's one connection, busy for longer than a text may wait
        assert held is not None
        started = asyncio.get_running_loop().time()
        async with own.borrow() as second:
            waited = asyncio.get_running_loop().time() - started
        assert second is None and loop_io.WAIT_FOR_CONNECTION_S <= waited < loop_io.WAIT_FOR_CONNECTION_S + 0.5
    # and once it is back, the next borrower gets it at once, the same connection
    async with own.borrow() as again:
        assert again is held
    own.close()


async def test_a_connection_dropped_while_others_wait_lets_the_first_of_them_open_another():
    own = loop_io._Connections(1)
    waiter_got = []

    async def wait_for_one():
        async with own.borrow() as connection:
            waiter_got.append(connection)

    async with own.borrow() as broken:
        waiter = asyncio.ensure_future(wait_for_one())
        await asyncio.sleep(0.01)
        broken.pgconn.finish()  # PostgreSQL ended it under its borrower: not given back, closed
        with pytest.raises(psycopg.OperationalError):
            await broken.execute("SELECT 1")
    await asyncio.wait_for(waiter, 5)
    assert waiter_got and waiter_got[0] is not None and waiter_got[0] is not broken
    own.close()


@pytest.fixture
def database_time_zone_far_from_utc():
    """The database's own default time zone, which a new connection's session starts in, is not UTC (a server set
    up in its country's zone): Django's connections set their session's, the loop's must too."""
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{name}" SET timezone TO \'Pacific/Chatham\'')  # +13:45 or +12:45
    loop_io.close_all()  # the loop's next connection is a new session
    yield
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{name}" RESET timezone')
    loop_io.close_all()


async def test_a_text_written_on_the_loop_has_the_time_the_database_stored_whatever_its_time_zone(
        demo, tokens, thread_sends, database_time_zone_far_from_utc):
    visitor = await sync_to_async(_live_visitor)(demo)
    inbox = await inbox_socket(tokens["alice"])
    socket = await widget_socket(visitor["token"])
    try:
        ack = await _sent(socket, "What time is it?")
        assert thread_sends == []  # the loop wrote it
        stored = await sync_to_async(Message.objects.get)(conversation_id=visitor["conversation"],
                                                          client_id=ack["message"]["client_id"])
        written = stored.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        heard = await inbox.wait_for(message_with(lambda m: m["client_id"] == stored.client_id))
        assert ack["message"]["created_at"] == heard["message"]["created_at"] == written
    finally:
        await socket.disconnect()
        await inbox.disconnect()
