"""ASGI middleware in front of Django's HTTP handler: an oversized request body is refused before it is read.

Django's ASGI handler reads the whole body (into memory, then a temporary file) before any middleware or view
runs, so the views' own checks (conversations.uploads) come too late there. This refuses, with the contract's JSON
error and without reading the body:
- any request whose Content-Length is over the largest body an endpoint takes (an image upload and its envelope):
  413 at once; one that streams past it without announcing it (chunked) is cut off when it does, then answered 413;
- an upload (`POST /api/widget/images`, `POST /api/inbox/conversations/{id}/messages` as multipart) without valid
  credentials: 401 at once. A token (the widget's bearer, the inbox's `Token`) is checked here with the rules the
  views use (conversations.selectors.visitor_for_token, conversations.auth.token_valid); a session cookie is checked
  by the view (with its CSRF token), from the headers, before it parses the body (which is then at most the limit)."""
import json

from channels.db import database_sync_to_async
from django.conf import settings
from django.urls import Resolver404, resolve

from conversations.uploads import upload_body_max_bytes

UPLOAD_ROUTES = {"widget-images", "inbox-messages"}


async def _answer(send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"code": code, "detail": detail}, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _too_large_detail() -> str:
    return f"The request body is larger than {upload_body_max_bytes() // (1024 * 1024)} MB."


def _upload_route(scope, headers: dict[bytes, bytes]) -> str | None:
    """The upload route a request is for (multipart POST), or None."""
    if scope["method"] != "POST" or not headers.get(b"content-type", b"").lower().startswith(b"multipart/"):
        return None
    try:
        name = resolve(scope["path"]).url_name
    except Resolver404:
        return None
    return name if name in UPLOAD_ROUTES else None


@database_sync_to_async
def _token_opens(route: str, scheme: str, key: str) -> bool:
    """Whether a token would pass the view's own check: the same selectors, before the body is read."""
    from rest_framework.authtoken.models import Token

    from conversations.auth import token_valid
    from conversations.selectors import visitor_for_token

    if route == "widget-images":
        return scheme == "bearer" and visitor_for_token(token=key) is not None
    if scheme != "token":
        return False
    token = Token.objects.select_related("user").filter(key=key).first()
    return token is not None and token_valid(token)


async def _credentialed(route: str, headers: dict[bytes, bytes]) -> bool:
    scheme, _, key = headers.get(b"authorization", b"").decode("latin-1").strip().partition(" ")
    if scheme:
        return "\x00" not in key and bool(key.strip()) and await _token_opens(route, scheme.lower(), key.strip())
    cookie = settings.SESSION_COOKIE_NAME.encode() + b"="
    return route == "inbox-messages" and any(
        part.strip().startswith(cookie) for part in headers.get(b"cookie", b"").split(b";"))


class BodyLimit:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = upload_body_max_bytes()
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        try:
            announced = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            return await _answer(send, 400, "bad_request", "Content-Length is not a number.")
        if announced > limit:
            return await _answer(send, 413, "too_large", _too_large_detail())
        route = _upload_route(scope, headers)
        if route is not None and not await _credentialed(route, headers):
            return await _answer(send, 401, "unauthorized", "Valid credentials are required to upload.")
        received, over = 0, False

        async def limited_receive():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}  # Django stops reading and answers nothing
            return message

        await self.app(scope, limited_receive, send)
        if over:
            await _answer(send, 413, "too_large", _too_large_detail())


def _raw_response(status: str, code: str, detail: str) -> bytes:
    body = json.dumps({"code": code, "detail": detail}, separators=(",", ":")).encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body


def limit_daphne() -> None:
    """Daphne (`make run`) hands a request to the application only once Twisted has received all of its body, and
    Twisted parses a POST's multipart body itself first (for `request.args`, which Daphne never uses): a body it
    cannot parse got an empty `400 Bad Request` on every POST endpoint, never reaching Django, and every upload was
    parsed twice. So, on Daphne's request class: no form parsing by Twisted, and a body over the limit is refused
    from its Content-Length, or as soon as the stream passes the limit, and the connection closed."""
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # another ASGI server: BodyLimit covers it
        return
    if getattr(WebRequest, "livechat_limited", False):
        return
    original_init, original_got_length = WebRequest.__init__, WebRequest.gotLength
    original_chunk, original_process = WebRequest.handleContentChunk, WebRequest.process

    def refuse(request) -> None:
        request.livechat_refused = True
        request.channel.transport.write(_raw_response("413 Content Too Large", "too_large", _too_large_detail()))
        request.channel.transport.loseConnection()

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False
        self.livechat_received = 0
        self.livechat_refused = False

    def gotLength(self, length):
        original_got_length(self, length)
        if length is not None and length > upload_body_max_bytes():
            refuse(self)

    def handleContentChunk(self, data):
        if self.livechat_refused:
            return
        self.livechat_received += len(data)
        if self.livechat_received > upload_body_max_bytes():
            refuse(self)
            return
        original_chunk(self, data)

    def process(self):
        if self.livechat_refused:  # the rest of the body was already buffered: the request is answered, not served
            return None
        return original_process(self)

    WebRequest.__init__, WebRequest.gotLength, WebRequest.handleContentChunk = __init__, gotLength, handleContentChunk
    WebRequest.process = process
    WebRequest.livechat_limited = True
