"""ASGI entry point: HTTP through Django, WebSockets through the two consumers of the contract."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livechat.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs the apps loaded)

from conversations.routing import websocket_urlpatterns  # noqa: E402
from livechat.bodylimit import BodyLimit, limit_daphne  # noqa: E402

limit_daphne()  # when Daphne serves us: it reads and parses the body before the application sees the request

application = ProtocolTypeRouter({
    "http": BodyLimit(django_asgi_app),  # an oversized body is refused before Django reads it
    "websocket": URLRouter(websocket_urlpatterns),
})
