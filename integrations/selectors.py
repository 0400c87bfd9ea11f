"""Reads of the integrations app."""
from datetime import datetime

from django.db.models import Q

from integrations.models import Delivery


def chain_head(*, webhook_id: int, conversation_id: int | None) -> int | None:
    """The id of the oldest pending delivery of one webhook and conversation (index delivery_pending_chain)."""
    chain = Delivery.objects.filter(webhook_id=webhook_id, status=Delivery.Status.PENDING)
    chain = chain.filter(conversation_id__isnull=True) if conversation_id is None else \
        chain.filter(conversation_id=conversation_id)
    return chain.order_by("id").values_list("id", flat=True).first()


def due_chains(*, now: datetime, limit: int = 1000) -> list[tuple[int, int | None]]:
    """Chains with a pending delivery due now, of active webhooks (index delivery_pending_due)."""
    rows = (Delivery.objects.filter(Q(status=Delivery.Status.PENDING), next_attempt_at__lte=now,
                                    webhook__active=True)
            .order_by().values_list("webhook_id", "conversation_id").distinct()[:limit])
    return list(rows)
