"""An advisor's plain text reply by API token (`POST /api/inbox/conversations/{id}/messages`, JSON), answered on the
event loop: the commonest request of a busy inbox, and the one the load of `make bench` sends.

Through Django it cost three times a visitor's text (4.1-4.4 against 1.3-1.5 ms of the process's CPU, 50 replies a
second to a process with 20 inbox and 200 widget sockets open), two thirds of it in the request's thread: the
hand-over to it and back, the middleware chain, DRF's request, authentication, permissions and renderer, three
queries through psycopg's cursor. Here the same steps run on the loop (4.9-5.2 against 3.1-3.5 ms in alternated
rounds of the same measure), with the same rules taken from the same places:
- the body: ReplyInput's shapes, and the services' client_id and text rules;
- the credentials: `Authorization: Token …` read as DRF reads it, the token with its user, advisor and sites by
  the query the REST authentication runs (selectors.advisor_for_token, compiled once), and conversations.auth's
  token_valid;
- the conversation: the one access check's own compiled query (selectors.access_conversation, for_write);
- the write: services.advisor_message_send's one-statement case (conversations.live_message.reply), on one of the
  loop's own connections (livechat.loop_io), its frames and e-mail as that case sends them.

Anything else goes on to Django, untouched, with the body as it was read: another path or method, a query string,
a session cookie without a token, a note, an image, a body that is not a small JSON object, any refusal (a token
that does not open, no access, a closed conversation, a first reply, a repeated client_id, a text too long), the
first request of a shape whose query no thread has compiled yet, a database or channel layer that fails, and SQLite
(the loop has no connections of its own there). Django then answers as it always did, so every error keeps its
one shape, language and status; a refusal costs its request the loop's reads first (a few hundred microseconds).
"""
import functools
import json
import re
from collections.abc import Awaitable, Callable

import psycopg
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.urls import reverse
from django.utils import translation

from advisors.models import Advisor
from conversations import selectors, services
from conversations.api import ReplyInput
from conversations.auth import token_valid
from conversations.errors import Refused
from conversations.models import Message
from conversations.presenters import message_dict
from livechat import loop_io
from livechat.compiled import NotCompiled
from livechat.renderers import OrjsonRenderer
from livechat.static import security_headers

ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]

ROUTE = "inbox-messages"
SUFFIX = "/messages"
# A reply's JSON is a client_id and at most MESSAGE_MAX_CHARS characters: anything larger is Django's to answer.
BODY_MAX_BYTES = 64 * 1024


class RepliesOnTheLoop:
    """ASGI middleware for HTTP, in front of Django's handler (see the module's doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.renderer = OrjsonRenderer()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        conversation_id, key = _candidate(scope)
        if key is None or not loop_io.available():
            return await self.app(scope, receive, send)
        body, more = await _read_body(receive)
        if body is None:  # the client went away: nobody to answer
            return
        sent = None if more else await _reply(conversation_id, key, body)
        if sent is None:
            return await self.app(scope, _replayed(body, more, receive), send)
        message, advisor = sent
        payload = self.renderer.render({"message": message_dict(message)})
        # The headers Django's chain gives this answer: DRF's Allow, LocaleMiddleware's language (the advisor's
        # own, as InboxApi activates it, else the request's) and Vary, XFrameOptionsMiddleware's, SecurityMiddleware's.
        language = advisor.language or _negotiated_language(scope)
        await send({"type": "http.response.start", "status": 201, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
            (b"allow", b"GET, POST, HEAD, OPTIONS"), (b"x-frame-options", settings.X_FRAME_OPTIONS.encode()),
            (b"vary", b"Accept-Language, Cookie"), (b"content-language", language.encode()), *security_headers()]})
        await send({"type": "http.response.body", "body": payload})


@functools.cache
def _route() -> re.Pattern:
    """The route's path as urls.py writes it (reversed with a number, the number made the `int` converter's)."""
    sample = 987654321
    before, after = reverse(ROUTE, kwargs={"conversation_id": sample}).split(str(sample))
    return re.compile(f"{re.escape(before)}([0-9]+){re.escape(after)}")


def _candidate(scope: dict) -> tuple[int | None, str | None]:
    """The conversation and the token of a request this may answer, from its line and headers alone; (None, None)
    for any other."""
    path = scope["path"]
    if (scope["type"] != "http" or scope["method"] != "POST" or not path.endswith(SUFFIX)
            or scope.get("query_string") or scope.get("root_path")):
        return None, None
    match = _route().fullmatch(path)
    if match is None:
        return None, None
    headers = dict(scope["headers"])  # a repeated header: Django's answer (the last one would win here)
    if len(headers) != len(scope["headers"]):
        return None, None
    content_type = headers.get(b"content-type", b"").lower().replace(b" ", b"")
    if content_type not in (b"application/json", b"application/json;charset=utf-8"):
        return None, None
    # DRF's TokenAuthentication: the keyword and one key, nothing else.
    parts = headers.get(b"authorization", b"").split()
    if len(parts) != 2 or parts[0].lower() != b"token":
        return None, None
    try:
        key = parts[1].decode()
    except UnicodeDecodeError:
        return None, None
    if not _host_allowed(scope, headers) or (settings.SECURE_SSL_REDIRECT and scope.get("scheme") != "https"):
        return None, None
    return int(match.group(1)), key


def _host_allowed(scope: dict, headers: dict[bytes, bytes]) -> bool:
    server = scope.get("server") or ("", 80)
    return _host_allowed_for(headers.get(b"host"), headers.get(b"x-forwarded-host"), server[0], server[1])


@functools.lru_cache(maxsize=256)
def _host_allowed_for(host: bytes | None, forwarded_host: bytes | None, server_name: str, server_port: int) -> bool:
    """Django's own Host check (ALLOWED_HOSTS, X-Forwarded-Host when trusted), as CommonMiddleware makes it; kept
    for the few hosts a server is called by."""
    request = HttpRequest()
    request.META = {"SERVER_NAME": server_name, "SERVER_PORT": str(server_port)}
    if host is not None:
        request.META["HTTP_HOST"] = host.decode("latin-1")
    if forwarded_host is not None:
        request.META["HTTP_X_FORWARDED_HOST"] = forwarded_host.decode("latin-1")
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return True


@receiver(setting_changed)
def _forget_hosts(setting: str, **kwargs) -> None:
    if setting in ("ALLOWED_HOSTS", "USE_X_FORWARDED_HOST", "DEBUG"):
        _host_allowed_for.cache_clear()


async def _read_body(receive: Callable) -> tuple[bytes | None, bool]:
    """The body, or its first BODY_MAX_BYTES and True when more follows; None when the client disconnected."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False
        if size > BODY_MAX_BYTES:
            return b"".join(chunks), True


def _replayed(body: bytes, more: bool, receive: Callable) -> Callable:
    """`receive` for Django: what was read, then the rest of the request."""
    replayed = False

    async def again() -> dict:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return again


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")  # as DRF's strict JSON parser refuses NaN and the infinities


def _negotiated_language(scope: dict) -> str:
    """The language LocaleMiddleware activates for this request (its cookie, its Accept-Language, the default)."""
    request = HttpRequest()
    for name, value in scope["headers"]:
        if name == b"accept-language":
            request.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")
        elif name == b"cookie":
            request.COOKIES = parse_cookie(value.decode("latin-1"))
    return translation.get_language_from_request(request)


async def _reply(conversation_id: int, key: str, body: bytes) -> tuple[Message, Advisor] | None:
    """The stored reply and its advisor, or None when Django must answer."""
    try:
        data = json.loads(body.decode(), parse_constant=_refuse_constant)
    except ValueError:  # UnicodeDecodeError included
        return None
    if not isinstance(data, dict):
        return None
    reply = ReplyInput(data=data)
    if not reply.is_valid() or reply.validated_data["kind"] != "text" or "text" not in reply.validated_data:
        return None
    try:
        async with loop_io.postgres() as loop_connection:
            if loop_connection is None:
                return None
            token = await selectors.advisor_for_token_on_loop(loop_connection, key)
            if token is None or not token_valid(token):
                return None
            advisor = selectors.advisor_for_user(token.user)  # loaded with the token: no query
            if advisor is None:
                return None
            conversation = await selectors.access_conversation_for_write_on_loop(
                loop_connection, advisor=advisor, conversation_id=conversation_id)
        if conversation is None:
            return None
        sent = await services.advisor_reply_on_loop(conversation=conversation, advisor=advisor,
                                                    client_id=reply.validated_data["client_id"],
                                                    text=reply.validated_data["text"])
    except (NotCompiled, Refused, psycopg.Error):
        return None
    return None if sent is None else (sent.message, advisor)
