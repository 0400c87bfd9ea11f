"""Inbox authentication: the Django session (browsers) or `Authorization: Token …` (other clients); API tokens
(issue, expiry, revocation); and closing the inbox sockets of credentials that stopped being valid.

Credentials change in many places: the login page, the Django user admin (deactivating a user, setting a
password), `DELETE /api/auth/token`, a shell. So the sockets are closed from model signals (User saved or
deleted, Token deleted), whoever made the change, once the change is committed: each socket of the advisor
hears `advisor.revoked` and closes 4401 if the event concerns it (every socket, or those opened with one token).
"""
from datetime import datetime, timedelta

from channels.auth import AuthMiddlewareStack
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver
from django.utils import timezone
from rest_framework.authtoken.models import Token

from livechat import realtime
from livechat.db import database_call

# ------------------------------------------------------------------------------ API tokens


def token_expires_at(token: Token) -> datetime:
    return token.created + timedelta(days=settings.API_TOKEN_TTL_DAYS)


def token_valid(token: Token) -> bool:
    """The one rule for REST and the inbox socket: an active user's token, younger than API_TOKEN_TTL_DAYS."""
    return token.user.is_active and timezone.now() < token_expires_at(token)


def token_issue(*, user) -> Token:
    """The user's token; a new key once the old one expired (DRF keeps one token per user)."""
    with transaction.atomic():
        token, created = Token.objects.select_for_update().get_or_create(user=user)
        if not created and timezone.now() >= token_expires_at(token):
            token.delete()  # closes whatever socket still used it (post_delete below)
            token = Token.objects.create(user=user)
    return token


def token_revoke(*, token: Token) -> None:
    """`DELETE /api/auth/token`: the key stops working now, on REST and on the sockets it opened."""
    Token.objects.filter(pk=token.pk).delete()


# ------------------------------------------------------------------------------ the inbox socket


@database_call
def _user_for_token(key: str):
    token = Token.objects.select_related("user").filter(key=key).first()
    return (token.user, token_expires_at(token)) if token is not None and token_valid(token) else (None, None)


class TokenAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        scheme, _, key = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "token" and key.strip():
            user, expires_at = await _user_for_token(key.strip())
            if user is not None:
                scope = dict(scope, user=user, auth_token=key.strip(), auth_token_expires_at=expires_at)
        return await self.inner(scope, receive, send)


def InboxAuthMiddlewareStack(inner):
    return AuthMiddlewareStack(TokenAuthMiddleware(inner))


# ------------------------------------------------------------------------------ closing sockets


@receiver(user_logged_out)
def close_sockets_of_session(sender, request, user, **kwargs):
    """Logging out closes the inbox sockets that this browser session opened."""
    advisor = getattr(user, "advisor", None) if user is not None else None
    if advisor is not None and request is not None and (session_key := request.session.session_key):
        # Django flushes the session only after this signal: flushed first, so a page whose socket this closes
        # finds itself signed out when it asks (GET /api/inbox/me), rather than still signed in for a moment.
        request.session.flush()
        realtime.send_now(realtime.advisor_group(advisor.pk), {"type": "advisor.logout", "session_key": session_key})


def _close_sockets_on_commit(user_id: int, *, token: str | None = None) -> None:
    """After commit, close the advisor's inbox sockets: all of them, or those `token` opened."""
    from advisors.models import Advisor

    advisor_id = Advisor.objects.filter(user_id=user_id).values_list("pk", flat=True).first()
    if advisor_id is not None:
        realtime.send_on_commit(realtime.advisor_group(advisor_id), {"type": "advisor.revoked", "token": token})


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="conversations.auth.credentials_changing")
def _credentials_changing(sender, instance, update_fields=None, **kwargs):
    """Notice, before the row changes, a new password (set_password leaves the raw one in `_password` until the
    save; a hash upgrade at login clears it first, so it does not count) or a deactivation."""
    if instance.pk is None or (update_fields is not None and not {"password", "is_active"} & set(update_fields)):
        return
    password_changed = getattr(instance, "_password", None) is not None
    deactivated = not instance.is_active and get_user_model().objects.filter(pk=instance.pk, is_active=True).exists()
    instance._livechat_credentials_changed = password_changed or deactivated


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="conversations.auth.credentials_changed")
def _credentials_changed(sender, instance, created, **kwargs):
    """A new password or a deactivation: the API token goes (a new one needs the new password) and every inbox
    socket of the user closes 4401; a session socket that reconnects needs a valid session again."""
    if created or not getattr(instance, "_livechat_credentials_changed", False):
        return
    instance._livechat_credentials_changed = False
    Token.objects.filter(user_id=instance.pk).delete()
    _close_sockets_on_commit(instance.pk)


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="conversations.auth.user_deleted")
def _user_deleted(sender, instance, **kwargs):
    _close_sockets_on_commit(instance.pk)  # before the cascade takes the advisor row with it


@receiver(post_delete, sender=Token, dispatch_uid="conversations.auth.token_deleted")
def _token_deleted(sender, instance, **kwargs):
    _close_sockets_on_commit(instance.user_id, token=instance.key)
