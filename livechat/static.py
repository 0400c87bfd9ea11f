"""Static files (`STATIC_URL`) served by the ASGI application before Django.

Whitenoise as a middleware answered them from inside Django's handler: every stylesheet and script of the inbox
walked the request machinery (a thread hop for the sync middleware, the session and CSRF layers up to whitenoise)
for a file whose answer never depends on the request beyond its conditional and encoding headers. Here whitenoise
keeps deciding everything it decided (which files exist, through the finders or STATIC_ROOT; Content-Type,
Cache-Control, ETag/Last-Modified and 304s, ranges, 405 for other methods, a precompressed .gz/.br variant where
one exists), configured by the same WHITENOISE_* settings; this module only speaks ASGI for it, and adds the
headers SecurityMiddleware added to every response. A path that names no file goes on to Django (its 404).
"""
import asyncio
from collections.abc import Awaitable, Callable

from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware

ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]
# Files this small are read on the event loop (one read from the page cache); larger ones in a thread, by chunks.
INLINE_BYTES = 64 * 1024
CHUNK_BYTES = 256 * 1024


def security_headers() -> list[tuple[bytes, bytes]]:
    """What django.middleware.security.SecurityMiddleware adds to a plain response, from the same settings (the
    static responses used to pass through it; the replies answered on the loop, conversations.api_on_loop, too)."""
    headers = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        policy = policy if isinstance(policy, str) else ",".join(policy)
        headers.append((b"referrer-policy", policy.encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    return headers


class StaticFiles:
    """ASGI middleware: answers the static files itself, passes everything else to `app`."""

    def __init__(self, app: ASGIApp):
        self.app = app
        # Only its file table and its responders are used, never its Django-facing __call__.
        self.whitenoise = WhiteNoiseMiddleware(get_response=None)
        self.prefix = self.whitenoise.static_prefix
        self.security_headers = security_headers()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.prefix) or self._needs_django(scope):
            return await self.app(scope, receive, send)
        root_path = scope.get("root_path", "")
        path = path.removeprefix(root_path) if root_path else path
        if self.whitenoise.autorefresh:  # DEBUG: looked up on the disk for every request
            static_file = await asyncio.to_thread(self.whitenoise.find_file, path)
        else:
            static_file = self.whitenoise.files.get(path)
        if static_file is None:
            return await self.app(scope, receive, send)
        request_headers = {"HTTP_" + name.decode("latin-1").upper().replace("-", "_"): value.decode("latin-1")
                           for name, value in scope.get("headers", ())}
        response = static_file.get_response(scope["method"], request_headers)
        await self._send(response, send)

    @staticmethod
    def _needs_django(scope: dict) -> bool:
        # SecurityMiddleware would redirect plain HTTP to HTTPS first: let it.
        return settings.SECURE_SSL_REDIRECT and scope.get("scheme", "http") != "https"

    async def _send(self, response, send: Callable) -> None:
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
        await send({"type": "http.response.start", "status": int(response.status),
                    "headers": headers + self.security_headers})
        file = response.file
        if file is None:
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            length = next((int(value) for name, value in headers if name == b"content-length"), None)
            if length is not None and length <= INLINE_BYTES:
                await send({"type": "http.response.body", "body": file.read()})
                return
            while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            file.close()
