from django.urls import path

from conversations.auth import InboxAuthMiddlewareStack
from conversations.consumers import InboxConsumer, WidgetConsumer

websocket_urlpatterns = [
    path("ws/widget/", WidgetConsumer.as_asgi()),
    path("ws/inbox/", InboxAuthMiddlewareStack(InboxConsumer.as_asgi())),
]
