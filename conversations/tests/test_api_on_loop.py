"""An advisor's plain reply by token, answered on the event loop (conversations/api_on_loop.py): the same item, frames,
answer and e-mail as through Django, and everything else (each refusal included) answered by Django as before."""
import contextlib
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core import mail, signals
from django.utils import timezone
from rest_framework.authtoken.models import Token

from advisors.models import Advisor
from conversations import selectors, services
from conversations.errors import NotFound
from conversations.models import Conversation, Message, ReadState, Visitor
from conversations.tests.conftest import inbox_socket, message_with, new_id, widget_socket
from integrations import webhooks
from livechat.asgi import application

# The loop's connections see committed rows only.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loop_writes_postgresql_only")]


@pytest.fixture
def through_django() -> list[str]:
    """The paths of the requests Django's handler took (it sends request_started for each)."""
    paths = []

    def started(scope=None, **kwargs):
        paths.append(scope["path"] if scope else "?")

    signals.request_started.connect(started, dispatch_uid="api-on-loop-test")
    yield paths
    signals.request_started.disconnect(dispatch_uid="api-on-loop-test")


def _answered_conversation(demo, site: str = "shop") -> dict:
    """A live conversation alice answered and its visitor spoke in since: alice's next reply is one statement. The
    queries the loop runs compiled by a thread, as the first request of a process leaves them."""
    session = services.visitor_session_start(site=demo.sites[site])
    services.advisor_message_send(conversation_id=session.conversation.pk, advisor=demo.advisors["alice"],
                                  client_id=new_id(), text="Hello, how can I help?")
    visitor = Visitor.objects.get(pk=session.visitor.pk)
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="I have a question")
    webhooks.site_hooks(visitor.site_id)
    keys = {}
    for advisor in demo.advisors.values():
        keys[advisor.username] = Token.objects.get_or_create(user=advisor.user)[0].key
        token = selectors.advisor_for_token(keys[advisor.username])
        with contextlib.suppress(NotFound):  # another site's advisor: compiled all the same
            selectors.access_conversation(advisor=token.user.advisor, conversation_id=session.conversation.pk,
                                          for_write=True)
    return {"token": session.token, "conversation": session.conversation.pk, "keys": keys,
            "visitor": visitor.pk}


async def _post(path: str, body, *, key: str | None, headers: tuple = (),
                host: bytes = b"localhost") -> tuple[int, dict, dict]:
    """POST through the whole ASGI application, as a server hands it a request: status, headers, JSON body."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = [(b"host", host), (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()), *headers]
    if key is not None:
        sent.append((b"authorization", f"Token {key}".encode()))
    path, _, query = path.partition("?")
    communicator = ApplicationCommunicator(application, {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "", "headers": sent,
        "client": ("127.0.0.1", 40000), "server": ("localhost", 80)})
    await communicator.send_input({"type": "http.request", "body": raw})
    start = await communicator.receive_output(10)
    chunks = []
    while True:
        message = await communicator.receive_output(10)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    raw = b"".join(chunks)
    return start["status"], headers, json.loads(raw) if headers.get("content-type") == "application/json" else raw


def _messages_path(conversation_id: int) -> str:
    return f"/api/inbox/conversations/{conversation_id}/messages"


async def test_a_plain_reply_by_token_is_written_on_the_loop_and_heard_like_any_other(demo, through_django):
    # given a visitor in a live conversation alice answered, the visitor's widget and bob's inbox open
    answered = await sync_to_async(_answered_conversation)(demo)
    widget = await widget_socket(answered["token"])
    inbox = await inbox_socket(answered["keys"]["bob"])
    activity_before = await sync_to_async(lambda: Advisor.objects.get(user__username="alice").message_count)()
    try:
        # when alice replies by token
        client_id = new_id()
        status, headers, body = await _post(_messages_path(answered["conversation"]),
                                            {"client_id": client_id, "text": "Your order left today."},
                                            key=answered["keys"]["alice"])

        # then Django took no part, the item is stored after the others and answered as the contract says
        assert status == 201 and through_django == []
        stored = await sync_to_async(Message.objects.select_related("advisor__user").get)(client_id=client_id)
        assert (stored.text, stored.sender, stored.kind, stored.advisor.username) == (
            "Your order left today.", "advisor", "text", "alice")
        message = body["message"]
        assert (message["seq"], message["client_id"], message["text"], message["advisor"]["name"]) == (
            stored.seq, client_id, stored.text, "Alice")
        assert headers["content-type"] == "application/json"
        # the visitor and the other advisors hear it, the conversation's counters and alice's read position and
        # activity moved as the thread's statement moves them
        heard = await widget.wait_for(message_with(lambda m: m["client_id"] == client_id))
        assert heard["message"]["seq"] == stored.seq and heard["message"]["created_at"] == message["created_at"]
        await inbox.wait_for(message_with(lambda m: m["client_id"] == client_id))
        conversation = await sync_to_async(Conversation.objects.get)(pk=answered["conversation"])
        assert (conversation.last_seq, conversation.last_advisor_seq, conversation.last_message_id) == (
            stored.seq, stored.seq, stored.pk)
        read = await sync_to_async(ReadState.objects.get)(advisor__user__username="alice",
                                                          conversation_id=answered["conversation"])
        assert read.seq == stored.seq
        activity = await sync_to_async(lambda: Advisor.objects.get(user__username="alice").message_count)()
        assert activity == activity_before + 1
    finally:
        await widget.disconnect()
        await inbox.disconnect()


async def test_the_loops_answer_is_the_answer_django_gives(demo, through_django):
    answered = await sync_to_async(_answered_conversation)(demo)
    path = _messages_path(answered["conversation"])
    # when alice replies once on the loop and once through Django (a query string is Django's to read)
    loop = await _post(path, {"client_id": new_id(), "text": "On the loop"}, key=answered["keys"]["alice"])
    django = await _post(f"{path}?via=django", {"client_id": new_id(), "text": "Through Django"},
                         key=answered["keys"]["alice"])
    # then the same status, the same fields and the same headers
    assert through_django == [path]
    assert loop[0] == django[0] == 201
    assert set(loop[2]["message"]) == set(django[2]["message"])
    assert loop[2]["message"]["advisor"] == django[2]["message"]["advisor"]
    assert loop[2]["message"]["seq"] + 1 == django[2]["message"]["seq"]
    assert {name: value for name, value in loop[1].items() if name != "content-length"} == {
        name: value for name, value in django[1].items() if name != "content-length"}


@pytest.mark.parametrize("accept_language, advisor_language, expected", [
    (b"fr-FR,fr;q=0.9", "", "fr"), (b"de", "", "en"), (b"fr", "en", "en")])
async def test_the_answer_names_the_language_django_would_have_chosen(demo, through_django, accept_language,
                                                                      advisor_language, expected):
    answered = await sync_to_async(_answered_conversation)(demo)
    await sync_to_async(Advisor.objects.filter(user__username="alice").update)(language=advisor_language)
    path = _messages_path(answered["conversation"])
    headers = ((b"accept-language", accept_language),)
    loop = await _post(path, {"client_id": new_id(), "text": "a"}, key=answered["keys"]["alice"], headers=headers)
    django = await _post(f"{path}?via=django", {"client_id": new_id(), "text": "b"}, key=answered["keys"]["alice"],
                         headers=headers)
    assert through_django == [path]
    assert loop[1]["content-language"] == django[1]["content-language"] == expected


def _expired(key: str) -> None:
    Token.objects.filter(key=key).update(created=timezone.now() - timedelta(days=400))


def _inactive(key: str) -> None:
    user = Token.objects.select_related("user").get(key=key).user
    user.is_active = False
    user.save(update_fields=["is_active"])


def _closed(conversation_id: int) -> None:
    Conversation.objects.filter(pk=conversation_id).update(status=Conversation.Status.CLOSED)


@pytest.mark.parametrize("case, expected", [
    ("a key no token has", (401, "unauthorized")),
    ("an expired token", (401, "unauthorized")),
    ("a deactivated user's token", (401, "unauthorized")),
    ("an advisor of another site", (404, "not_found")),
    ("a conversation that does not exist", (404, "not_found")),
    ("a closed conversation", (409, "closed")),
    ("a text too long", (400, "too_long")),
    ("a blank text", (400, "bad_request")),
    ("no text at all", (400, "bad_request")),
    ("NaN in the body", (400, "bad_request")),
    ("a body that is not an object", (400, "bad_request")),
])
async def test_every_refusal_is_djangos_and_stores_nothing(demo, settings, through_django, case, expected):
    answered = await sync_to_async(_answered_conversation)(demo, "blog")
    key, conversation_id = answered["keys"]["alice"], answered["conversation"]
    body = {"client_id": new_id(), "text": "An answer"}
    if case == "a key no token has":
        key = "0" * 40
    elif case == "an expired token":
        await sync_to_async(_expired)(key)
    elif case == "a deactivated user's token":
        await sync_to_async(_inactive)(key)
    elif case == "an advisor of another site":
        key = answered["keys"]["bob"]  # shop only; the conversation is the blog's
    elif case == "a conversation that does not exist":
        conversation_id = 10 ** 12
    elif case == "a closed conversation":
        await sync_to_async(_closed)(conversation_id)
    elif case == "a text too long":
        body["text"] = "x" * (settings.LIVECHAT["MESSAGE_MAX_CHARS"] + 1)
    elif case == "a blank text":
        body["text"] = "   "
    elif case == "no text at all":
        del body["text"]
    elif case == "NaN in the body":
        body = b'{"client_id": "nan-1", "text": "An answer", "extra": NaN}'
    elif case == "a body that is not an object":
        body = b'["client_id", "text"]'
    count = await sync_to_async(Message.objects.filter(conversation_id=answered["conversation"]).count)()
    status, _, answer = await _post(_messages_path(conversation_id), body, key=key)
    assert (status, answer["code"]) == expected
    assert through_django == [_messages_path(conversation_id)]
    assert await sync_to_async(Message.objects.filter(conversation_id=answered["conversation"]).count)() == count


async def test_a_repeated_client_id_is_answered_with_the_stored_reply_and_stored_once(demo, through_django):
    answered = await sync_to_async(_answered_conversation)(demo)
    path, client_id = _messages_path(answered["conversation"]), new_id()
    first = await _post(path, {"client_id": client_id, "text": "Once"}, key=answered["keys"]["alice"])
    again = await _post(path, {"client_id": client_id, "text": "Once"}, key=answered["keys"]["alice"])
    assert (first[0], again[0]) == (201, 200)
    assert again[2]["message"]["seq"] == first[2]["message"]["seq"]
    assert await sync_to_async(Message.objects.filter(client_id=client_id).count)() == 1
    assert through_django == [path]  # the first on the loop, the repeat through Django


async def test_a_note_and_a_first_reply_go_through_django(demo, through_django):
    answered = await sync_to_async(_answered_conversation)(demo)
    path = _messages_path(answered["conversation"])
    note = await _post(path, {"client_id": new_id(), "text": "VIP", "kind": "note"}, key=answered["keys"]["alice"])
    assert note[0] == 201 and note[2]["message"]["kind"] == "note"
    # a first reply (the conversation waits for one): Django's path, which assigns
    waiting = await sync_to_async(_answered_conversation)(demo)
    await sync_to_async(Conversation.objects.filter(pk=waiting["conversation"]).update)(
        waiting_since=timezone.now(), assigned=None)
    first = await _post(_messages_path(waiting["conversation"]), {"client_id": new_id(), "text": "Hello"},
                        key=answered["keys"]["bob"])
    assert first[0] == 201
    assert through_django == [path, _messages_path(waiting["conversation"])]
    assigned = await sync_to_async(lambda: Conversation.objects.get(pk=waiting["conversation"]).assigned.username)()
    assert assigned == "bob"


async def test_a_reply_to_a_visitor_who_left_with_an_email_is_emailed(demo, through_django):
    answered = await sync_to_async(_answered_conversation)(demo)

    def left() -> None:
        visitor = Visitor.objects.get(pk=answered["visitor"])
        Visitor.objects.filter(pk=visitor.pk).update(
            online_sockets=0, last_seen_at=visitor.last_seen_at - timedelta(seconds=61),
            variables={**visitor.variables, "EMAIL": "jean@acme.example"})

    await sync_to_async(left)()
    mail.outbox.clear()
    status, _, _ = await _post(_messages_path(answered["conversation"]), {"client_id": new_id(), "text": "Shipped!"},
                               key=answered["keys"]["alice"])
    assert status == 201 and through_django == []
    [message] = mail.outbox
    assert message.to == ["jean@acme.example"] and "Alice: Shipped!" in message.body


async def test_without_loop_connections_replies_go_through_django(demo, settings, through_django):
    settings.DATABASE_LOOP_CONNECTIONS = 0
    answered = await sync_to_async(_answered_conversation)(demo)
    path = _messages_path(answered["conversation"])
    status, _, _ = await _post(path, {"client_id": new_id(), "text": "Hi"}, key=answered["keys"]["alice"])
    assert status == 201 and through_django == [path]


async def test_a_host_django_does_not_serve_is_refused_by_django(demo, through_django):
    answered = await sync_to_async(_answered_conversation)(demo)
    path = _messages_path(answered["conversation"])
    status, _, _ = await _post(path, {"client_id": new_id(), "text": "Hi"}, key=answered["keys"]["alice"],
                               headers=((b"x-forwarded-host", b"evil.example"),))
    assert status == 201  # X-Forwarded-Host is not trusted here: the Host header decides, as in Django
    status, _, _ = await _post(path, {"client_id": new_id(), "text": "Hi"}, key=answered["keys"]["alice"],
                               host=b"evil.example")
    assert status == 400 and through_django == [path]
