"""Inbox socket authentication: the Django session (browsers) or `Authorization: Token …` (other clients)."""
from channels.auth import AuthMiddlewareStack
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from livechat import realtime
from livechat.db import database_call


@database_call
def _user_for_token(key: str):
    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token is not None and token.user.is_active else None


class TokenAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        scheme, _, key = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "token" and key.strip():
            user = await _user_for_token(key.strip())
            if user is not None:
                scope = dict(scope, user=user, auth_token=key.strip())
        return await self.inner(scope, receive, send)


def InboxAuthMiddlewareStack(inner):
    return AuthMiddlewareStack(TokenAuthMiddleware(inner))


@receiver(user_logged_out)
def close_sockets_of_session(sender, request, user, **kwargs):
    """Logging out closes the inbox sockets that this browser session opened."""
    advisor = getattr(user, "advisor", None) if user is not None else None
    if advisor is not None and request is not None and request.session.session_key:
        realtime.send_now(realtime.advisor_group(advisor.pk),
                          {"type": "advisor.logout", "session_key": request.session.session_key})
