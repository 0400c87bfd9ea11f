"""Webhooks (configuration, deliveries, attempts) and the audit trail.

Deliveries name their conversation by id, without a foreign key: erasing a conversation (retention, a visitor's
request) never waits on, nor cascades into, the delivery log; erasure deletes its deliveries itself."""
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

EVENTS = ("conversation.escalated", "conversation.assigned", "conversation.closed", "message.created",
          "rating.created")


def webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class Webhook(models.Model):
    """An address of the account's other tools (a CRM, a ticketing tool) that hears the events it subscribes to."""

    account = models.ForeignKey("advisors.Account", verbose_name=_("account"), on_delete=models.CASCADE,
                                related_name="webhooks")
    url = models.URLField(_("URL"), max_length=2000,
                          help_text=_("http:// or https://; it must resolve to a public address."))
    secret = models.CharField(_("secret"), max_length=200, default=webhook_secret,
                              help_text=_("Signs each body: X-Livechat-Signature: sha256=<hex HMAC-SHA256>."))
    events = models.JSONField(_("events"), default=list,
                              help_text=format_lazy(_("Among: {events}"), events=", ".join(EVENTS)))
    include_notes = models.BooleanField(_("include notes"), default=False,
                                        help_text=_("Send message.created for private notes too."))
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")

    def __str__(self) -> str:
        return self.url


class Delivery(models.Model):
    """One event for one webhook: the exact body, sent (and signed) as stored, until a 2xx or the window ends.

    Deliveries of one webhook and one conversation go out one after the other in `id` order (the chain): a
    failing one holds the later ones back until it succeeds or is given up."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("given up")

    uuid = models.UUIDField(_("uuid"), default=uuid.uuid4, unique=True, editable=False, help_text=_("The body's id."))
    webhook = models.ForeignKey(Webhook, verbose_name=_("webhook"), on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(_("event"), max_length=40)
    conversation_id = models.BigIntegerField(_("conversation id"), null=True, blank=True)
    body = models.TextField(_("body"))
    status = models.CharField(_("status"), max_length=9, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    retry_until = models.DateTimeField(_("retry until"))
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [
            # the head of a chain, and the due ones for the sweep
            models.Index(fields=["webhook", "conversation_id", "id"], condition=Q(status="pending"),
                         name="delivery_pending_chain"),
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_pending_due"),
            models.Index(fields=["conversation_id"], name="delivery_conversation"),  # erasure
            models.Index(fields=["webhook", "-id"], name="delivery_list"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.uuid}"


class Attempt(models.Model):
    """One POST of a delivery: what came back, and how long it took."""

    delivery = models.ForeignKey(Delivery, verbose_name=_("delivery"), on_delete=models.CASCADE,
                                 related_name="attempt_log")
    at = models.DateTimeField(_("at"), auto_now_add=True)
    status_code = models.PositiveIntegerField(_("status code"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration ms"), default=0)
    response_excerpt = models.TextField(_("response excerpt"), blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("attempt")
        verbose_name_plural = _("attempts")
        indexes = [models.Index(fields=["delivery", "-id"], name="attempt_list")]

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def __str__(self) -> str:
        return f"{self.status_code or self.error} in {self.duration_ms} ms"


class AuditEntry(models.Model):
    """Who did what, when: licenses, scopes, exports, erasures. Written by integrations.audit only; read-only."""

    class Action(models.TextChoices):
        LICENSE_GRANTED = "license.granted", _("License Granted")
        LICENSE_REVOKED = "license.revoked", _("License Revoked")
        SCOPE_CHANGED = "scope.changed", _("Scope Changed")
        VISITOR_EXPORTED = "visitor.exported", _("Visitor Exported")
        VISITOR_ERASED = "visitor.erased", _("Visitor Erased")
        ADVISOR_EXPORTED = "advisor.exported", _("Advisor Exported")
        RETENTION_ERASED = "retention.erased", _("Retention Erased")

    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("actor"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(_("actor name"), max_length=150,
                                  help_text=_("Kept if the user is deleted; or the process."))
    action = models.CharField(_("action"), max_length=30, choices=Action.choices)
    target = models.CharField(_("target"), max_length=200)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.target}"
