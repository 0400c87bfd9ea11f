"""Credentials that stop being valid stop working at once: deactivation, a new password, a revoked or expired API
token close the inbox sockets (4401) and are refused over REST, whoever made the change."""
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from conversations.tests.conftest import Socket, inbox_socket

pytestmark = pytest.mark.django_db(transaction=True)

ME = "/api/inbox/me"


async def session_socket(username: str, demo) -> Socket:
    """An inbox socket opened with a browser session cookie, as the inbox page opens it."""
    def login():
        client = Client()
        client.force_login(demo.advisors[username].user)
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    cookie = await sync_to_async(login)()
    socket = Socket("/ws/inbox/", [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
                                   (b"host", b"testserver")])
    connected, _ = await socket.connect()
    assert connected
    return socket


def rest(key: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get(ME)


async def still_open(socket: Socket) -> bool:
    await socket.send({"type": "ping"})
    return (await socket.receive(timeout=3) or {}).get("type") == "pong"


async def test_deactivating_a_user_closes_every_inbox_socket_and_refuses_the_token(demo, tokens):
    by_token = await inbox_socket(tokens["alice"])
    by_session = await session_socket("alice", demo)
    bob = await inbox_socket(tokens["bob"])
    try:
        # when alice is deactivated (a plain model save: the user admin does exactly this)
        def deactivate():
            user = demo.advisors["alice"].user
            user.is_active = False
            user.save()

        await sync_to_async(deactivate)()
        # then both her sockets close 4401 at once, bob's stays open, and her token is refused
        assert await by_token.close_code() == 4401
        assert await by_session.close_code() == 4401
        assert await still_open(bob)
        assert (await sync_to_async(rest)(tokens["alice"])).status_code == 401
    finally:
        for socket in (by_token, by_session, bob):
            await socket.disconnect()


async def test_a_password_set_in_the_user_admin_closes_the_sockets_and_rotates_the_token(demo, tokens):
    by_token = await inbox_socket(tokens["alice"])
    by_session = await session_socket("alice", demo)
    try:
        # when the admin sets alice a new password on the Django user admin's password page
        def change_password():
            client = Client()
            client.force_login(demo.advisors["admin"].user)
            return client.post(f"/admin/auth/user/{demo.advisors['alice'].user.pk}/password/",
                               {"password1": "a-new-pass-9471", "password2": "a-new-pass-9471",
                                "usable_password": "true"})

        response = await sync_to_async(change_password)()
        assert response.status_code == 302, response.content
        # then her sockets close 4401, the old key stops working, and the new password gets a new key
        assert await by_token.close_code() == 4401
        assert await by_session.close_code() == 4401
        assert (await sync_to_async(rest)(tokens["alice"])).status_code == 401
        issued = await sync_to_async(APIClient().post)("/api/auth/token",
                                                        {"username": "alice", "password": "a-new-pass-9471"},
                                                        format="json")
        assert issued.status_code == 200 and issued.json()["token"] != tokens["alice"]
        assert (await sync_to_async(rest)(issued.json()["token"])).status_code == 200
    finally:
        await by_token.disconnect()
        await by_session.disconnect()


async def test_delete_auth_token_revokes_the_callers_token_and_closes_its_sockets(demo, tokens):
    by_token = await inbox_socket(tokens["alice"])
    by_session = await session_socket("alice", demo)
    try:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {tokens['alice']}")
        response = await sync_to_async(client.delete)("/api/auth/token")
        assert response.status_code == 204
        # the token's socket closes 4401; the browser session's socket was not opened with it and stays
        assert await by_token.close_code() == 4401
        assert await still_open(by_session)
        assert (await sync_to_async(rest)(tokens["alice"])).status_code == 401
        assert (await sync_to_async(client.delete)("/api/auth/token")).status_code == 401
    finally:
        await by_token.disconnect()
        await by_session.disconnect()


async def test_deleting_the_token_in_the_admin_closes_its_sockets(demo, tokens):
    by_token = await inbox_socket(tokens["alice"])
    try:
        await sync_to_async(Token.objects.filter(key=tokens["alice"]).delete)()
        assert await by_token.close_code() == 4401
    finally:
        await by_token.disconnect()


async def test_an_expired_token_is_refused_on_rest_and_the_socket(demo, tokens):
    # given alice's token issued API_TOKEN_TTL_DAYS ago (30 by default)
    await sync_to_async(Token.objects.filter(key=tokens["alice"]).update)(
        created=timezone.now() - timedelta(days=settings.API_TOKEN_TTL_DAYS, seconds=1))
    # then REST answers 401, the socket handshake is refused, and the password gets a new key
    assert (await sync_to_async(rest)(tokens["alice"])).status_code == 401
    socket = Socket("/ws/inbox/", [(b"authorization", f"Token {tokens['alice']}".encode()), (b"host", b"testserver")])
    connected, _ = await socket.connect()
    assert not connected
    issued = await sync_to_async(APIClient().post)("/api/auth/token", {"username": "alice", "password": "demo1234"},
                                                    format="json")
    assert issued.status_code == 200 and issued.json()["token"] != tokens["alice"]
    assert (await sync_to_async(rest)(issued.json()["token"])).status_code == 200


async def test_an_open_socket_closes_4401_when_its_token_expires(demo, tokens):
    await sync_to_async(Token.objects.filter(key=tokens["alice"]).update)(
        created=timezone.now() - timedelta(days=settings.API_TOKEN_TTL_DAYS) + timedelta(seconds=1.5))
    socket = await inbox_socket(tokens["alice"])
    try:
        assert await socket.close_code(timeout=5) == 4401
    finally:
        await socket.disconnect()


async def test_logging_in_again_keeps_the_sockets_open(demo, tokens):
    # a password hash upgraded at login, or last_login saved, is no credential change
    socket = await inbox_socket(tokens["alice"])
    try:
        logged_in = await sync_to_async(Client().login)(username="alice", password="demo1234")
        assert logged_in
        assert await still_open(socket)
        assert (await sync_to_async(rest)(tokens["alice"])).status_code == 200
    finally:
        await socket.disconnect()


async def test_deleting_a_user_closes_their_inbox_sockets(demo, tokens):
    by_session = await session_socket("bob", demo)
    try:
        await sync_to_async(demo.advisors["bob"].user.delete)()
        assert await by_session.close_code() == 4401
    finally:
        await by_session.disconnect()
