"""Group names and the one way to broadcast: every group name is formatted here and nowhere else.

The channel layer only signals; the database is the source of truth and clients catch up by `seq`.
Broadcasts leave after commit, so a frame never announces an item a reader cannot load yet.
"""
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def conversation_group(conversation_id: int) -> str:
    """Everything the visitor's widget sockets of one conversation may see."""
    return f"conversation.{conversation_id}"


def site_inbox_group(site_id: int, audience: str) -> str:
    """Inbox sockets of one site, split by what their advisors may see (see conversations.audiences)."""
    return f"site.{site_id}.inbox.{audience}"


def advisor_group(advisor_id: int) -> str:
    """Every inbox socket of one advisor (license or scope changes, logout)."""
    return f"advisor.{advisor_id}"


def visitor_group(visitor_id: int) -> str:
    """Every widget socket of one visitor token (socket cap, rate limit)."""
    return f"visitor.{visitor_id}"


def send_now(group: str, event: dict[str, Any]) -> None:
    """Send one event to a group; a layer failure is logged, never raised: clients recover by `seq`."""
    try:
        async_to_sync(get_channel_layer().group_send)(group, event)
    except Exception:  # the layer is at-most-once by design; the stored item is what counts
        logger.exception("broadcast to %s failed", group)


def send_on_commit(group: str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_now(group, event))
