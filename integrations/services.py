"""Writes of the integrations app: webhook deliveries, visitor export and erasure, retention, advisors' exports.
Admin actions, management commands and Celery tasks call these."""
import hashlib
import hmac
import logging
import time
from datetime import timedelta
from http.client import HTTPException
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from advisors.models import Account, Advisor
from conversations import services as conversation_services
from conversations.models import Conversation, ConversationTally, Visitor
from conversations.presenters import avatar_url, message_dict, timestamp
from integrations import http, selectors
from integrations.audit import Action, audit_record
from integrations.models import Attempt, Delivery
from integrations.webhooks import enqueue_chains

logger = logging.getLogger(__name__)

Status = Delivery.Status

# ------------------------------------------------------------------------------ webhooks


def webhook_signature(secret: str, body: bytes) -> str:
    """The X-Livechat-Signature header's value: sha256=<hex HMAC-SHA256 of the exact body with the secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_url_check(url: str) -> None:
    """Raise http.AddressRefused (or OSError: the name does not resolve) for a URL a webhook may not call."""
    http.resolve(url)


def retry_delay(attempts: int) -> float:
    """Exponential backoff after the `attempts`-th failure: WEBHOOK_RETRY_FIRST_S doubled each time, at most an hour."""
    return min(settings.WEBHOOK_RETRY_FIRST_S * 2 ** (attempts - 1), 3600.0)


def webhook_chain_deliver(*, webhook_id: int, conversation_id: int | None) -> int:
    """Send the due deliveries of one webhook and conversation, oldest first; returns how many went through.

    The chain's head is locked while it is sent (skip_locked: a worker that finds it taken leaves the chain to the
    one that has it, which goes on with the next ones), so two workers never send one delivery at once, nor a
    later one before an earlier one. A failure keeps the head pending until its next attempt and holds the rest
    back; after its window it is given up and the chain goes on."""
    delivered = 0
    while True:
        with transaction.atomic():
            head_id = selectors.chain_head(webhook_id=webhook_id, conversation_id=conversation_id)
            if head_id is None:
                return delivered
            head = (Delivery.objects.select_for_update(skip_locked=True, of=("self",)).select_related("webhook")
                    .filter(pk=head_id, status=Status.PENDING).first())
            if head is None or not head.webhook.active or head.next_attempt_at > timezone.now():
                return delivered  # taken by another worker, paused, or its retry is scheduled already
            _attempt(head)
        if head.status == Status.PENDING:
            _schedule_retry(head)
            return delivered
        delivered += head.status == Status.DELIVERED


def _attempt(delivery: Delivery) -> None:
    body = delivery.body.encode()
    headers = {"X-Livechat-Event": delivery.event, "X-Livechat-Delivery": str(delivery.uuid),
               "X-Livechat-Signature": webhook_signature(delivery.webhook.secret, body)}
    status_code, excerpt, error = None, "", ""
    started = time.monotonic()
    try:
        answer = http.post(delivery.webhook.url, body, headers)
        status_code, excerpt = answer.status, answer.excerpt
    except http.AddressRefused as refused:
        error = f"refused: {refused}"
    except TimeoutError:
        error = f"timeout after {settings.WEBHOOK_TIMEOUT_S} s"
    # HTTPException by its own name: `http` here is integrations.http, which has no `client` (as `http.client` this
    # clause raised AttributeError for any receiver that was down, and no attempt or retry was recorded)
    except (OSError, ValueError, HTTPException) as failure:  # ValueError: a name IDNA refuses
        error = f"{type(failure).__name__}: {failure}"
    duration_ms = round((time.monotonic() - started) * 1000)
    Attempt.objects.create(delivery=delivery, status_code=status_code, duration_ms=duration_ms,
                           response_excerpt=excerpt[:1000], error=error[:300])
    now = timezone.now()
    delivery.attempts += 1
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.delivered_at = Status.DELIVERED, now
    elif now >= delivery.retry_until:
        delivery.status = Status.FAILED
        logger.warning("webhook delivery %s (%s) given up after %d attempts: %s", delivery.uuid, delivery.event,
                       delivery.attempts, error or status_code)
    else:
        delivery.next_attempt_at = min(now + timedelta(seconds=retry_delay(delivery.attempts)), delivery.retry_until)
    delivery.save(update_fields=["attempts", "status", "delivered_at", "next_attempt_at"])


def _schedule_retry(delivery: Delivery) -> None:
    """A countdown for a retry due soon; later ones are found by the sweep (Celery beat, every 30 s): a long
    countdown on the Redis broker outlives its visibility timeout and comes back twice. Eagerly (no worker) a
    countdown would run at once: the retry waits for the chain's next event instead."""
    from integrations.tasks import webhook_deliver

    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    delay = max(0.0, (delivery.next_attempt_at - timezone.now()).total_seconds())
    if delay <= 240:
        webhook_deliver.apply_async((delivery.webhook_id, delivery.conversation_id), countdown=delay)


def webhooks_sweep() -> int:
    """Queue every chain with a delivery due (retries, and anything a lost task left behind); returns how many."""
    from integrations.tasks import webhook_deliver

    chains = selectors.due_chains(now=timezone.now())
    for webhook_id, conversation_id in chains:
        webhook_deliver.delay(webhook_id, conversation_id)
    return len(chains)


def webhook_log_prune(*, now=None, batch_size: int = 1000) -> int:
    """Forget deliveries (and their attempts) delivered or given up more than WEBHOOK_LOG_DAYS ago; nightly."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_LOG_DAYS)
    total = 0
    while True:
        ids = list(Delivery.objects.filter(created_at__lt=cutoff).exclude(status=Status.PENDING)
                   .order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        Delivery.objects.filter(pk__in=ids).delete()
        total += len(ids)


def delivery_send_again(*, delivery_ids: list[int]) -> int:
    """The admin's "send again": the same body and id, a new 24-hour window, queued now."""
    now = timezone.now()
    window = timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW_S)
    with transaction.atomic():
        chains = set(Delivery.objects.filter(pk__in=delivery_ids).values_list("webhook_id", "conversation_id"))
        count = Delivery.objects.filter(pk__in=delivery_ids).update(status=Status.PENDING, next_attempt_at=now,
                                                                     retry_until=now + window, delivered_at=None)
        transaction.on_commit(lambda: enqueue_chains(sorted(chains, key=lambda c: (c[0], c[1] or 0))))
    return count


# ------------------------------------------------------------------------------ visitors' data


def _site_data(site) -> dict[str, str]:
    return {"key": site.key, "name": site.name}


def visitor_export(*, visitor_id: int, actor=None, actor_name: str = "") -> dict[str, Any]:
    """Everything stored about one visitor: the visitor, its variables, its conversation and every item of it
    (notes included, marked as notes: the export is for whoever answers the visitor's request). Recorded in the
    audit trail. Visitor.DoesNotExist if unknown."""
    visitor = Visitor.objects.select_related("site").get(pk=visitor_id)
    conversations = []
    for conversation in Conversation.objects.filter(visitor=visitor).select_related("assigned__user"):
        items = conversation.messages.select_related("advisor__user").order_by("seq")
        conversations.append({
            "id": conversation.pk, "site": _site_data(visitor.site), "status": conversation.status,
            "assigned": conversation.assigned.username if conversation.assigned else None,
            "created_at": timestamp(conversation.created_at), "closed_at": timestamp(conversation.closed_at),
            "items": [message_dict(item) for item in items.iterator(chunk_size=500)],
        })
    data = {
        "visitor": {"id": visitor.pk, "site": _site_data(visitor.site), "variables": dict(visitor.variables),
                    "sessions": visitor.sessions, "page": visitor.page or None,
                    "first_seen": timestamp(visitor.first_seen_at), "last_seen": timestamp(visitor.last_seen_at)},
        "conversations": conversations,
        "exported_at": timestamp(timezone.now()),
    }
    audit_record(action=Action.VISITOR_EXPORTED, target=f"visitor #{visitor.pk}", actor=actor,
                 actor_name=actor_name, details={"site": visitor.site.key,
                                                 "conversations": [c["id"] for c in conversations]})
    return data


def visitor_erase(*, visitor_id: int, actor=None, actor_name: str = "") -> bool:
    """Erase a visitor: variables, token, its conversation, every item and image file, and the webhook deliveries
    that carried them. The inbox counts stay exact (the tally triggers count the deletes), its widget sockets close
    4401, and its old token then starts a new visitor. False if there was no such visitor."""
    with transaction.atomic():
        visitor = Visitor.objects.select_related("site").filter(pk=visitor_id).first()
        if visitor is None:
            return False
        conversation_ids = list(Conversation.objects.filter(visitor_id=visitor_id).values_list("pk", flat=True))
        deleted = conversation_services.conversations_delete(conversation_ids=conversation_ids)
        Visitor.objects.filter(pk=visitor_id).delete()  # one without a conversation (none today), all the same
        Delivery.objects.filter(conversation_id__in=deleted).delete()
        audit_record(action=Action.VISITOR_ERASED, target=f"visitor #{visitor_id}", actor=actor,
                     actor_name=actor_name, details={"site": visitor.site.key, "conversations": deleted})
    return True


def advisor_export(*, advisor: Advisor, actor=None, actor_name: str = "") -> dict[str, Any]:
    """An advisor's own data: profile, avatar, preferences, license, sites, activity."""
    advisor = Advisor.objects.select_related("user", "account").prefetch_related("sites").get(pk=advisor.pk)
    data = {
        "username": advisor.username, "name": advisor.display_name, "email": advisor.email,
        "avatar_url": avatar_url(advisor), "account": advisor.account.name, "licensed": advisor.licensed,
        "sees_chatbot": advisor.sees_chatbot, "email_on_escalation": advisor.email_on_escalation,
        "sound": advisor.sound, "sites": [_site_data(site) for site in advisor.sites.all()],
        "date_joined": timestamp(advisor.user.date_joined), "last_activity_at": timestamp(advisor.last_activity_at),
        "message_count": advisor.message_count,
        "exported_at": timestamp(timezone.now()),
    }
    audit_record(action=Action.ADVISOR_EXPORTED, target=f"advisor {advisor.username}", actor=actor,
                 actor_name=actor_name)
    return data


# ------------------------------------------------------------------------------ retention


def retention_erase(*, now=None, batch_size: int | None = None, pause_s: float = 0.0,
                    actor_name: str = "retention (Celery beat)") -> int:
    """Erase the closed conversations of every account with `retention_days` that were closed longer ago than that,
    with their visitors, items and files; returns how many.

    In small batches, each its own short transaction that skips rows another transaction holds (a conversation
    being reopened stays): the inbox's reads never wait, and a write waits at most for one batch. A batch takes
    conversations of one tally slot (ConversationTally.SLOTS: id modulo 8), so it holds one of the site's eight
    "closed" count rows, not all of them: a close on the same site meanwhile rarely waits at all. A conversation
    reopened or written to since it was picked is left alone (re-checked under the lock)."""
    now = now or timezone.now()
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    total = 0
    for account in Account.objects.filter(retention_days__isnull=False).order_by("pk"):
        cutoff = now - timedelta(days=account.retention_days)
        expired = Q(status=Conversation.Status.CLOSED, closed_at__lt=cutoff, site__account=account)
        erased = 0
        for slot in range(ConversationTally.SLOTS):
            last_id = 0
            while True:
                ids = list(Conversation.objects.alias(slot=F("id") % ConversationTally.SLOTS)
                           .filter(expired, slot=slot, pk__gt=last_id).order_by("pk")
                           .values_list("pk", flat=True)[:batch_size])
                if not ids:
                    break
                last_id = ids[-1]
                with transaction.atomic():
                    deleted = conversation_services.conversations_delete(conversation_ids=ids, where=expired,
                                                                         skip_locked=True)
                    Delivery.objects.filter(conversation_id__in=deleted).delete()
                erased += len(deleted)
                if pause_s:
                    time.sleep(pause_s)
        if erased:
            audit_record(action=Action.RETENTION_ERASED, target=f"account {account.name}",
                         actor_name=actor_name,
                         details={"conversations": erased, "retention_days": account.retention_days,
                                  "closed_before": timestamp(cutoff)})
        total += erased
    return total

