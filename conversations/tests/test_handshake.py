"""Socket handshakes: the inbox socket's Host and Origin, and the caps on inbox sockets per advisor and on
not-yet-authenticated widget sockets per address (real ASGI application, channel layer and cache)."""
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings

from conversations.tests.conftest import ORIGIN, Socket, start_session

pytestmark = pytest.mark.django_db(transaction=True)


def inbox(token: str, host: bytes | None = b"testserver", origin: bytes | None = None, **headers: bytes) -> Socket:
    pairs = [(b"authorization", f"Token {token}".encode())]
    pairs += [(b"host", host)] if host is not None else []
    pairs += [(b"origin", origin)] if origin is not None else []
    pairs += [(name.replace("_", "-").encode(), value) for name, value in headers.items()]
    return Socket("/ws/inbox/", pairs)


async def opens(socket: Socket) -> bool:
    connected, _ = await socket.connect()
    if connected:
        await socket.disconnect()
    return connected


def from_address(socket: Socket, address: str) -> Socket:
    socket.communicator.scope["client"] = (address, 40000)  # what the server reports as the peer
    return socket


async def test_inbox_socket_refuses_a_host_outside_allowed_hosts_even_when_the_origin_matches_it(demo, tokens):
    # DNS rebinding: a page at http://evil.example whose name now points at us; its Origin matches its Host
    assert not await opens(inbox(tokens["alice"], host=b"evil.example", origin=b"http://evil.example"))
    assert not await opens(inbox(tokens["alice"], host=b"evil.example"))
    assert await opens(inbox(tokens["alice"], host=b"testserver", origin=b"http://testserver"))
    assert await opens(inbox(tokens["alice"], host=b"localhost:8000", origin=b"http://localhost:8000"))


async def test_inbox_socket_refuses_an_origin_on_another_scheme(demo, tokens):
    # served over plain HTTP: an https:// page of the same host is another origin, and so is another port
    assert not await opens(inbox(tokens["alice"], origin=b"https://testserver"))
    assert not await opens(inbox(tokens["alice"], host=b"localhost:8000", origin=b"http://localhost:9000"))
    assert not await opens(inbox(tokens["alice"], host=None, origin=b"http://testserver"))


async def test_behind_a_tls_proxy_the_inbox_socket_wants_the_https_origin(demo, tokens, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert await opens(inbox(tokens["alice"], origin=b"https://testserver", x_forwarded_proto=b"https"))
    assert not await opens(inbox(tokens["alice"], origin=b"http://testserver", x_forwarded_proto=b"https"))
    assert not await opens(inbox(tokens["alice"], origin=b"https://testserver", x_forwarded_proto=b"http"))


async def test_an_advisor_beyond_the_inbox_socket_cap_closes_the_oldest_with_4429(demo, tokens, monkeypatch):
    # given a cap of 3 inbox sockets per advisor, and bob connected too
    monkeypatch.setitem(django_settings.LIVECHAT, "INBOX_SOCKETS_PER_ADVISOR", 3)
    bob = inbox(tokens["bob"])
    assert (await bob.connect())[0]
    sockets = []
    for _ in range(3):
        sockets.append(inbox(tokens["alice"]))
        assert (await sockets[-1].connect())[0]
    assert await sockets[0].communicator.receive_nothing(timeout=0.3)

    # when alice opens a fourth
    fourth = inbox(tokens["alice"])
    assert (await fourth.connect())[0]

    # then her oldest closes 4429, her others and bob's stay open
    assert await sockets[0].close_code() == 4429
    for socket in (*sockets[1:], fourth, bob):
        await socket.send({"type": "ping"})
        await socket.wait_for(lambda f: f["type"] == "pong")
    # and a socket that closes frees its place: a fifth closes nothing more
    await sockets[1].disconnect()
    fifth = inbox(tokens["alice"])
    assert (await fifth.connect())[0]
    assert await sockets[2].communicator.receive_nothing(timeout=0.5)
    for socket in (sockets[2], fourth, fifth, bob):
        await socket.disconnect()


async def test_unauthenticated_widget_sockets_beyond_the_cap_per_address_close_4429(demo, monkeypatch):
    # given a cap of 3 widget sockets per address waiting for their auth frame
    monkeypatch.setitem(django_settings.LIVECHAT, "UNAUTHENTICATED_SOCKETS_PER_ADDRESS", 3)
    session = await sync_to_async(start_session)()

    def widget(address: str) -> Socket:
        return from_address(Socket("/ws/widget/?site=demo-shop", [(b"origin", ORIGIN.encode())]), address)

    waiting = [widget("198.51.100.7") for _ in range(3)]
    for socket in waiting:
        assert (await socket.connect())[0]

    # when the same address opens a fourth without authenticating, it is closed 4429 at once
    fourth = widget("198.51.100.7")
    assert (await fourth.connect())[0]
    assert await fourth.close_code(timeout=2) == 4429
    # while another address is served
    other = widget("203.0.113.9")
    assert (await other.connect())[0]
    assert await other.communicator.receive_nothing(timeout=0.3)

    # and once one authenticates and one goes away, two more may wait
    await waiting[0].send({"type": "auth", "token": session["token"], "after": 0})
    await waiting[0].wait_for(lambda f: f["type"] == "conversation")
    await waiting[1].disconnect()
    more = [widget("198.51.100.7") for _ in range(2)]
    for socket in more:
        assert (await socket.connect())[0]
        assert await socket.communicator.receive_nothing(timeout=0.3)
    extra = widget("198.51.100.7")
    assert (await extra.connect())[0]
    assert await extra.close_code(timeout=2) == 4429
    for socket in (waiting[0], waiting[2], *more, other):
        await socket.disconnect()


async def test_a_token_check_that_outlives_the_auth_deadline_closes_4503_and_gives_its_place_back_once(
        demo, monkeypatch):
    """The deadline bounds the whole auth, the token's check too; a client whose auth frame came in time is told
    to come back (4503), not that its token is bad (4401, after which the widget starts its session again)."""
    import asyncio
    import time

    from conversations import handshake, selectors

    monkeypatch.setitem(django_settings.LIVECHAT, "AUTH_TIMEOUT_S", 1)  # the counts live 3 s from a change
    monkeypatch.setitem(django_settings.LIVECHAT, "UNAUTHENTICATED_SOCKETS_PER_ADDRESS", 2)
    session = await sync_to_async(start_session)()
    address = "198.51.100.23"

    def widget() -> Socket:
        return from_address(Socket("/ws/widget/?site=demo-shop", [(b"origin", ORIGIN.encode())]), address)

    # given a check of the token that takes longer than the deadline (a database behind its queue)
    real_check = selectors.visitor_for_token

    def slow_check(**kwargs):
        time.sleep(1.5)
        return real_check(**kwargs)

    monkeypatch.setattr(selectors, "visitor_for_token", slow_check)
    waiting, slow = widget(), widget()
    assert (await waiting.connect())[0] and (await slow.connect())[0]

    # when the slow socket's auth frame comes in time, but its check ends after the deadline
    await slow.send({"type": "auth", "token": session["token"], "after": 0})
    assert await slow.close_code(timeout=3) == 4503
    await slow.disconnect()  # the client leaves while the check still runs

    # then the check, once done, and the socket's end gave its place back once, not twice: one place is
    # still taken (the waiting socket's), so one more socket may wait and the next is refused
    def waiting_now() -> int:
        return handshake._counts().get(handshake._key(address))

    deadline = time.monotonic() + 5
    while await sync_to_async(waiting_now)() != 1:
        assert time.monotonic() < deadline, await sync_to_async(waiting_now)()
        await asyncio.sleep(0.05)
    assert not [f for f in slow.frames if f.get("type") == "conversation"]  # it never joined
    second, third = widget(), widget()
    assert (await second.connect())[0]
    assert await second.communicator.receive_nothing(timeout=0.3)
    assert (await third.connect())[0]
    assert await third.close_code(timeout=2) == 4429
    for socket in (waiting, second):
        await socket.disconnect()
