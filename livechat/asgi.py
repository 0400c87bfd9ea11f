"""ASGI entry point: static files first (livechat/static.py), other HTTP through Django, WebSockets through the two
consumers of the contract."""
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livechat.settings")
django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application does

from livechat.handler import OneTripHandler  # noqa: E402  (needs the apps loaded)

django_asgi_app = OneTripHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs the apps loaded)

from conversations.api_on_loop import RepliesOnTheLoop  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402
from livechat.bodylimit import BodyLimit, limit_daphne  # noqa: E402
from livechat.request_threads import RequestThreads  # noqa: E402
from livechat.static import StaticFiles  # noqa: E402

limit_daphne()  # when Daphne serves us: it reads and parses the body before the application sees the request

application = ProtocolTypeRouter({
    # Static files before Django's middleware chain; an oversized body refused before Django reads it; an
    # advisor's plain reply by token answered on the event loop; each request's sync work in a kept thread rather
    # than a new one.
    "http": StaticFiles(BodyLimit(RepliesOnTheLoop(RequestThreads(django_asgi_app)))),
    "websocket": URLRouter(websocket_urlpatterns),
})
