"""Webhook events leave here: `webhook_emit` is the one way to announce one (services of other apps call it too,
e.g. `rating.created`). It writes a Delivery per subscribed webhook inside the caller's transaction (so a change
that rolls back sends nothing, and deliveries of one conversation are numbered in the order its row lock gave
them), and hands the chains to Celery once the transaction commits. The chat path never waits for a receiver.

The hot path (every stored item calls `message_created`) asks a per-process cache whether the site's account has
any webhook for the event: a dict lookup when none is configured. A change of a webhook clears this process's
cache at once; other processes see it within WEBHOOK_CONFIG_TTL_S.
"""
import json
from dataclasses import dataclass, field
from datetime import timedelta
from time import monotonic
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from advisors.models import Site
from conversations.models import Conversation, Message
from conversations.presenters import assigned_dict, timestamp, visitor_name
from integrations.models import EVENTS, Delivery, Webhook


@dataclass(frozen=True)
class SiteHooks:
    site_key: str
    site_name: str
    by_event: dict[str, tuple[tuple[int, bool], ...]] = field(default_factory=dict)  # event -> (webhook id, notes)


_cache: dict[int, tuple[float, SiteHooks | None]] = {}


def site_hooks(site_id: int) -> SiteHooks | None:
    """The active webhooks of the site's account, by event; None when there are none (cached per process)."""
    entry = _cache.get(site_id)
    now = monotonic()
    if entry is not None and entry[0] > now:
        return entry[1]
    hooks = _load(site_id)
    _cache[site_id] = (now + settings.WEBHOOK_CONFIG_TTL_S, hooks)
    return hooks


def _load(site_id: int) -> SiteHooks | None:
    site = Site.objects.filter(pk=site_id).only("key", "name", "account_id").first()
    if site is None:
        return None
    by_event: dict[str, list[tuple[int, bool]]] = {}
    for pk, events, notes in (Webhook.objects.filter(account_id=site.account_id, active=True).order_by("pk")
                              .values_list("pk", "events", "include_notes")):
        for event in events or ():
            by_event.setdefault(event, []).append((pk, notes))
    if not by_event:
        return None
    return SiteHooks(site.key, site.name, {event: tuple(hooks) for event, hooks in by_event.items()})


def forget_cached() -> None:
    _cache.clear()


@receiver(post_save, sender=Webhook, dispatch_uid="integrations.webhook_saved")
@receiver(post_delete, sender=Webhook, dispatch_uid="integrations.webhook_deleted")
@receiver(post_save, sender=Site, dispatch_uid="integrations.site_saved")
def _configuration_changed(sender, **kwargs) -> None:
    forget_cached()


@receiver(setting_changed, dispatch_uid="integrations.settings_changed")
def _settings_changed(sender, setting, **kwargs) -> None:
    # Tests swap the cache configuration per test (conftest.own_cache_keys) and roll their rows back without
    # signals: what this process cached about an earlier test's webhooks must not outlive it.
    if setting in ("CACHES", "WEBHOOK_CONFIG_TTL_S"):
        forget_cached()


# ------------------------------------------------------------------------------ emitting


def webhook_emit(*, event: str, site_id: int, data: dict[str, Any] | None = None, conversation_id: int | None = None,
                 note: bool = False, build=None) -> int:
    """Announce `event` to the webhooks of the site's account that subscribe to it; returns how many deliveries.

    Call it inside the transaction of the change. `data`, or `build(hooks)` called only when someone listens (so
    that a payload costs nothing without webhooks). `note`: the event carries a private note, for webhooks with
    include_notes only. Deliveries of one conversation reach each webhook in the order they were emitted."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    hooks = site_hooks(site_id)
    targets = hooks.by_event.get(event, ()) if hooks is not None else ()
    if note:
        targets = [t for t in targets if t[1]]
    if not targets:
        return 0
    if data is None:
        data = build(hooks)
    now = timezone.now()
    window = timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW_S)
    deliveries = []
    for webhook_id, _ in targets:
        delivery = Delivery(webhook_id=webhook_id, event=event, conversation_id=conversation_id,
                            next_attempt_at=now, retry_until=now + window)
        delivery.body = json.dumps({"id": str(delivery.uuid), "event": event, "created_at": timestamp(now),
                                    "data": data}, separators=(",", ":"), ensure_ascii=False)
        deliveries.append(delivery)
    Delivery.objects.bulk_create(deliveries)
    chains = sorted({(webhook_id, conversation_id) for webhook_id, _ in targets})
    transaction.on_commit(lambda: enqueue_chains(chains))
    return len(deliveries)


def enqueue_chains(chains: list[tuple[int, int | None]]) -> None:
    """Queue the delivery of each (webhook, conversation) chain: after commit, never inside a transaction."""
    from integrations.tasks import webhook_deliver

    for webhook_id, conversation_id in chains:
        webhook_deliver.delay(webhook_id, conversation_id)


# ------------------------------------------------------------------------------ the events of conversations


def conversation_data(conversation: Conversation, hooks: SiteHooks) -> dict[str, Any]:
    """The conversation as a webhook receives it: the licensed view (names, variables), never an item."""
    visitor = conversation.visitor
    return {"conversation": {
        "id": conversation.pk,
        "site": {"key": hooks.site_key, "name": hooks.site_name},
        "status": conversation.status,
        "visitor": {"id": visitor.pk, "name": visitor_name(conversation, licensed=True),
                    "variables": dict(visitor.variables), "page": visitor.page or None,
                    "sessions": visitor.sessions, "first_seen": timestamp(visitor.first_seen_at)},
        "assigned": assigned_dict(conversation.assigned),
        "waiting_since": timestamp(conversation.waiting_since),
        "created_at": timestamp(conversation.created_at),
        "closed_at": timestamp(conversation.closed_at),
    }}


def conversation_event(event: str, conversation: Conversation) -> int:
    return webhook_emit(event=event, site_id=conversation.site_id, conversation_id=conversation.pk,
                        build=lambda hooks: conversation_data(conversation, hooks))


def listens_for_messages(site_id: int) -> bool:
    """Whether a webhook of the site wants message.created: one cached lookup (about 1 us measured)."""
    return _wants_messages(site_hooks(site_id))


def listens_for_messages_as_cached(site_id: int) -> bool | None:
    """`listens_for_messages` from this process's cache alone, without the database (so also on the event loop):
    None when the site's entry is missing or stale."""
    entry = _cache.get(site_id)
    if entry is None or entry[0] <= monotonic():
        return None
    return _wants_messages(entry[1])


def _wants_messages(hooks: SiteHooks | None) -> bool:
    return hooks is not None and "message.created" in hooks.by_event


def message_created(conversation: Conversation, message: Message, payload: dict[str, Any]) -> int:
    """Every stored item (notes only for webhooks with include_notes). `payload`: its MSG, already built.
    On every item's path: without a webhook for it, one cached lookup and nothing else."""
    if not listens_for_messages(conversation.site_id):
        return 0
    return webhook_emit(event="message.created", site_id=conversation.site_id, conversation_id=conversation.pk,
                        note=message.kind == Message.Kind.NOTE,
                        build=lambda hooks: {"conversation": {"id": conversation.pk,
                                                              "site": {"key": hooks.site_key, "name": hooks.site_name},
                                                              "visitor": {"id": conversation.visitor_id}},
                                             "message": payload})


def conversation_moved(conversation: Conversation, *, status_before: str, assigned_before: int | None) -> None:
    """After a status or assignment change was saved: conversation.assigned (to someone, or to nobody: `assigned`
    null) and conversation.closed."""
    if conversation.assigned_id != assigned_before:
        conversation_event("conversation.assigned", conversation)
    if conversation.status == Conversation.Status.CLOSED and status_before != Conversation.Status.CLOSED:
        conversation_event("conversation.closed", conversation)


def rating_created(conversation: Conversation, *, score: int, comment: str = "") -> int:
    """For the rating service (CONTRACT section 7, satisfaction): call it inside the transaction that stores the
    rating. Carries the conversation (as in conversation.* events) and the rating."""
    return webhook_emit(event="rating.created", site_id=conversation.site_id, conversation_id=conversation.pk,
                        build=lambda hooks: dict(conversation_data(conversation, hooks),
                                                 rating={"score": score, "comment": comment or ""}))
