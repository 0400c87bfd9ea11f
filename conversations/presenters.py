"""The JSON shapes of CONTRACT section 3, built once per item and shared by REST answers and socket frames,
so a frame and a REST item never disagree."""
from datetime import datetime, timezone
from typing import Any

from django.conf import settings
from django.db.models.fields.files import FieldFile

from advisors.models import Advisor
from chatbots.engine import pseudonym
from conversations.models import Conversation, Message


def _utc(value: datetime | str) -> str:
    """UTC ISO 8601 with milliseconds (truncated) and Z, as the contract writes timestamps. A str is one the
    database already wrote so (conversations.selectors.ContractTime, for the rows of the list and the search).

    isoformat, not strftime: a CONV has five timestamps and strftime took half the time of presenting a page."""
    if isinstance(value, str):
        return value
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def timestamp(value: datetime | str | None) -> str | None:
    return None if value is None else _utc(value)


def absolute(url: str) -> str:
    return url if url.startswith(("http://", "https://")) else f"{settings.PUBLIC_URL}{url}"


def avatar_url(advisor: Advisor | None) -> str | None:
    return _avatar_url(stored_name(advisor, "avatar")) if advisor is not None else None


def stored_name(instance, field: str) -> str:
    """A file field's stored name, read without making Django's FieldFile: the field's descriptor keeps one in the
    instance, and the FieldFile holds the instance, a reference cycle that only the cyclic collector frees. Every
    item presented then outlived its use, with its text, until the next collection: a replay of long items grew
    the web process by tens of MB (tests/faults/test_slow_consumer.py)."""
    value = instance.__dict__.get(field, _DEFERRED)
    if value is _DEFERRED:  # not loaded (deferred): the descriptor loads it
        value = getattr(instance, field)
    return (value.name if isinstance(value, FieldFile) else value) or ""


_DEFERRED = object()


def message_image_url(message: Message) -> str | None:
    return _image_url(stored_name(message, "image"), message.image_url)


def _image_url(image: str | None, image_url: str | None) -> str | None:
    if image:
        return absolute(f"{settings.MEDIA_URL}{image}")
    if image_url:
        return absolute(image_url)
    return None


def _avatar_url(name: str | None) -> str | None:
    """avatar_url from the stored name (the field's storage, as advisor.avatar.url)."""
    return absolute(Advisor._meta.get_field("avatar").storage.url(name)) if name else None


def _person(advisor: Advisor | None) -> tuple[str, str, str] | None:
    """What an item or a conversation shows of an advisor: username, display name, avatar (stored name)."""
    return None if advisor is None else (advisor.username, advisor.display_name, stored_name(advisor, "avatar"))


def message_dict(message: Message) -> dict[str, Any]:
    """MSG. Needs `message.advisor.user` loaded (select_related) when an advisor wrote it."""
    return _message_payload(
        id=message.pk, conversation_id=message.conversation_id, seq=message.seq, kind=message.kind,
        sender=message.sender, text=message.text, image=stored_name(message, "image"), image_url=message.image_url,
        image_width=message.image_width, image_height=message.image_height, buttons=message.buttons,
        input=message.input, client_id=message.client_id, created_at=message.created_at,
        author=_person(message.advisor))


def message_row_dict(row: dict) -> dict[str, Any]:
    """MSG from a row of conversations.selectors.message_rows: what message_dict gives for the same item."""
    return _message_payload(**row)


def _message_payload(*, id, conversation_id, seq, kind, sender, text, image, image_url, image_width, image_height,
                     buttons, input, client_id, created_at, author) -> dict[str, Any]:
    """MSG from plain values (`author`: the advisor as _person gives it, or None): message_dict's, and the list's
    last items, which come as rows."""
    is_note = kind == Message.Kind.NOTE
    return {
        "id": id,
        "conversation": conversation_id,
        "seq": seq,
        "kind": kind,
        "sender": sender,
        "text": text,
        "image_url": _image_url(image, image_url),
        "width": image_width,
        "height": image_height,
        "buttons": buttons or [],
        "input": input,
        "advisor": ({"name": author[1], "avatar_url": _avatar_url(author[2])}
                    if author is not None and not is_note and sender == Message.Sender.ADVISOR else None),
        "author": {"username": author[0], "name": author[1]} if author and is_note else None,
        "client_id": client_id,
        "created_at": _utc(created_at),
    }


def visitor_name(conversation: Conversation, *, licensed: bool) -> str:
    return _visitor_name(conversation.site, conversation.visitor.pk, conversation.visitor.variables,
                         licensed=licensed)


def _visitor_name(site, visitor_id: int, variables, *, licensed: bool) -> str:
    if licensed:
        chatbot = site.chatbot
        name = pseudonym(chatbot.pseudonym_template, variables) if chatbot else None
        if name:
            return name
    return f"Visitor #{visitor_id}"


def assigned_dict(advisor: Advisor | None) -> dict | None:
    return _assigned_payload(_person(advisor))


def _assigned_payload(person: tuple[str, str, str] | None) -> dict | None:
    if person is None:
        return None
    return {"username": person[0], "name": person[1], "avatar_url": _avatar_url(person[2])}


def conversation_dict(conversation: Conversation, *, licensed: bool, read_seq: int,
                      read_change: int = 0) -> dict[str, Any]:
    """CONV as one advisor sees it: names, variables and notes follow that advisor's license. `change` is the
    conversation's, or the advisor's read state's when that changed last (`read_change`).

    Needs visitor, site (with chatbot), assigned.user, and last_message / last_public_message (with their
    advisor.user) loaded; access_conversation and changed_page load them in their one query. The list and the
    search load rows instead (conversation_row_dict): both go through _conversation_payload.
    """
    visitor = conversation.visitor
    last = conversation.last_message if licensed else conversation.last_public_message
    return _conversation_payload(
        id=conversation.pk, site=conversation.site, status=conversation.status, visitor_id=visitor.pk,
        variables=visitor.variables, online_sockets=visitor.online_sockets, sessions=visitor.sessions,
        page=visitor.page, first_seen_at=visitor.first_seen_at, assigned=_person(conversation.assigned),
        last_message=message_dict(last) if last is not None else None, last_seq=conversation.last_seq,
        last_public_seq=conversation.last_public_seq, last_visitor_seq=conversation.last_visitor_seq,
        last_advisor_seq=conversation.last_advisor_seq, waiting_since=conversation.waiting_since,
        created_at=conversation.created_at, updated_at=conversation.updated_at, closed_at=conversation.closed_at,
        awaiting_email=conversation.awaiting_email, rating=conversation.rating, change=conversation.change,
        labels=conversation.labels, licensed=licensed, read_seq=read_seq, read_change=read_change)


def conversation_row_dict(row: dict, *, site, licensed: bool) -> dict[str, Any]:
    """CONV from one row of conversations.selectors.conversation_rows (its `site`: the advisor's, with the
    chatbot), without model instances: what conversation_dict gives for the same conversation."""
    last = row["last"]
    return _conversation_payload(
        id=row["id"], site=site, status=row["status"], visitor_id=row["visitor_id"], variables=row["variables"],
        online_sockets=row["online_sockets"], sessions=row["sessions"], page=row["page"],
        first_seen_at=row["first_seen_at"], assigned=row["assigned"],
        last_message=message_row_dict(last) if last is not None else None, last_seq=row["last_seq"],
        last_public_seq=row["last_public_seq"], last_visitor_seq=row["last_visitor_seq"],
        last_advisor_seq=row["last_advisor_seq"], waiting_since=row["waiting_since"], created_at=row["created_at"],
        updated_at=row["updated_at"], closed_at=row["closed_at"], awaiting_email=row["awaiting_email"],
        rating=row["rating"], change=row["change"], labels=row["labels"], licensed=licensed,
        read_seq=row["read_seq"], read_change=row["read_change"])


def _conversation_payload(*, id, site, status, visitor_id, variables, online_sockets, sessions, page,
                          first_seen_at, assigned, last_message, last_seq, last_public_seq, last_visitor_seq,
                          last_advisor_seq, waiting_since, created_at, updated_at, closed_at, awaiting_email, rating,
                          change, labels, licensed: bool, read_seq: int, read_change: int) -> dict[str, Any]:
    not_bot = status != Conversation.Status.BOT
    return {
        "id": id,
        "site": {"key": site.key, "name": site.name},
        "status": status,
        "visitor": {
            "id": visitor_id,
            "name": _visitor_name(site, visitor_id, variables, licensed=licensed),
            "online": online_sockets > 0,  # Visitor.online
            "sessions": sessions,
            "page": page or None,
            "first_seen": _utc(first_seen_at),
            "variables": dict(variables) if licensed else {},
        },
        "assigned": _assigned_payload(assigned),
        "last_message": last_message,
        # Conversation.unread_after and Conversation.unanswered
        "unread": not_bot and (last_seq if licensed else last_public_seq) > read_seq,
        "unanswered": not_bot and last_visitor_seq > last_advisor_seq,
        "waiting_since": timestamp(waiting_since),
        "created_at": _utc(created_at),
        "updated_at": _utc(updated_at),
        "closed_at": timestamp(closed_at),
        "awaiting_email": awaiting_email,  # the away message asked the visitor for an e-mail
        "rating": rating,
        "change": max(change, read_change),
        "labels": labels or [],
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
