"""The JSON shapes of CONTRACT section 3, built once per item and shared by REST answers and socket frames,
so a frame and a REST item never disagree."""
from datetime import datetime, timezone
from typing import Any

from django.conf import settings

from advisors.models import Advisor
from chatbots.engine import pseudonym
from conversations.models import Conversation, Message


def _utc(value: datetime) -> str:
    """UTC ISO 8601 with milliseconds and Z, as the contract writes timestamps."""
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def timestamp(value: datetime | None) -> str | None:
    return None if value is None else _utc(value)


def absolute(url: str) -> str:
    return url if url.startswith(("http://", "https://")) else f"{settings.PUBLIC_URL}{url}"


def avatar_url(advisor: Advisor | None) -> str | None:
    return absolute(advisor.avatar.url) if advisor is not None and advisor.avatar else None


def message_image_url(message: Message) -> str | None:
    if message.image:
        return absolute(f"{settings.MEDIA_URL}{message.image.name}")
    if message.image_url:
        return absolute(message.image_url)
    return None


def message_dict(message: Message) -> dict[str, Any]:
    """MSG. Needs `message.advisor.user` loaded (select_related) when an advisor wrote it."""
    advisor = message.advisor
    is_note = message.kind == Message.Kind.NOTE
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "seq": message.seq,
        "kind": message.kind,
        "sender": message.sender,
        "text": message.text,
        "image_url": message_image_url(message),
        "width": message.image_width,
        "height": message.image_height,
        "buttons": message.buttons or [],
        "input": message.input,
        "advisor": ({"name": advisor.display_name, "avatar_url": avatar_url(advisor)}
                    if advisor is not None and not is_note and message.sender == Message.Sender.ADVISOR else None),
        "author": {"username": advisor.username, "name": advisor.display_name} if advisor and is_note else None,
        "client_id": message.client_id,
        "created_at": _utc(message.created_at),
    }


def visitor_name(conversation: Conversation, *, licensed: bool) -> str:
    visitor = conversation.visitor
    if licensed:
        chatbot = conversation.site.chatbot
        name = pseudonym(chatbot.pseudonym_template, visitor.variables) if chatbot else None
        if name:
            return name
    return f"Visitor #{visitor.pk}"


def assigned_dict(advisor: Advisor | None) -> dict | None:
    if advisor is None:
        return None
    return {"username": advisor.username, "name": advisor.display_name, "avatar_url": avatar_url(advisor)}


def conversation_dict(conversation: Conversation, *, licensed: bool, read_seq: int,
                      read_change: int = 0) -> dict[str, Any]:
    """CONV as one advisor sees it: names, variables and notes follow that advisor's license. `change` is the
    conversation's, or the advisor's read state's when that changed last (`read_change`).

    Needs visitor, site (with chatbot), assigned.user, and last_message / last_public_message (with their
    advisor.user) loaded; the list selector loads them in its one query.
    """
    visitor = conversation.visitor
    last = conversation.last_message if licensed else conversation.last_public_message
    return {
        "id": conversation.pk,
        "site": {"key": conversation.site.key, "name": conversation.site.name},
        "status": conversation.status,
        "visitor": {
            "id": visitor.pk,
            "name": visitor_name(conversation, licensed=licensed),
            "online": visitor.online,
            "sessions": visitor.sessions,
            "page": visitor.page or None,
            "first_seen": _utc(visitor.first_seen_at),
            "variables": dict(visitor.variables) if licensed else {},
        },
        "assigned": assigned_dict(conversation.assigned),
        "last_message": message_dict(last) if last is not None else None,
        "unread": conversation.unread_after(read_seq, licensed=licensed),
        "unanswered": conversation.unanswered,
        "waiting_since": timestamp(conversation.waiting_since),
        "created_at": _utc(conversation.created_at),
        "updated_at": _utc(conversation.updated_at),
        "closed_at": timestamp(conversation.closed_at),
        "awaiting_email": conversation.awaiting_email,  # the away message asked the visitor for an e-mail
        "rating": conversation.rating,
        "change": max(conversation.change, read_change),
        "labels": conversation.labels or [],
    }


def widget_conversation_dict(conversation: Conversation) -> dict[str, Any]:
    """The conversation as the widget sees it."""
    advisor = conversation.assigned if conversation.status == Conversation.Status.LIVE else None
    back = conversation.back_to_bot_label if conversation.status == Conversation.Status.LIVE else ""
    return {
        "id": conversation.pk,
        "status": conversation.status,
        "advisor": {"name": advisor.display_name, "avatar_url": avatar_url(advisor)} if advisor else None,
        "back_to_bot": {"label": back} if back else None,
        "rating": "asked" if conversation.status == Conversation.Status.CLOSED and conversation.rating_asked else None,
    }
