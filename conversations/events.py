"""What a state change announces, and to whom. Every broadcast leaves on commit (livechat.realtime).

Inbox sockets join one group per site and audience: an audience is what its advisors may see (licensed or
not, chatbot conversations or not), so a frame is built once per audience and only reaches sockets allowed
to see it. Widget sockets join their conversation's group, which never receives a note.
"""
import json
from typing import Any

from advisors.models import Advisor
from conversations.models import Conversation, Message
from conversations.presenters import conversation_dict, message_dict, visitor_name, widget_conversation_dict
from conversations.selectors import statuses_hidden_from
from integrations import webhooks
from livechat import realtime

AUDIENCES = [(licensed, sees_chatbot) for licensed in (False, True) for sees_chatbot in (False, True)]


def audience(*, licensed: bool, sees_chatbot: bool) -> str:
    return f"{'licensed' if licensed else 'default'}-{'chatbot' if sees_chatbot else 'human'}"


def audience_of(advisor: Advisor) -> str:
    return audience(licensed=advisor.licensed, sees_chatbot=advisor.sees_chatbot)


def _inbox_audiences(conversation: Conversation, *, note: bool = False):
    for licensed, sees_chatbot in AUDIENCES:
        if note and not licensed:
            continue
        if conversation.status in statuses_hidden_from(sees_chatbot=sees_chatbot):  # the access rule's own
            continue
        yield licensed, realtime.site_inbox_group(conversation.site_id, audience(licensed=licensed,
                                                                                   sees_chatbot=sees_chatbot))


def _frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, separators=(",", ":"), ensure_ascii=False)


def _seen_by_every_audience(conversation: Conversation, message: Message) -> bool:
    return message.visible_to_visitor and not any(
        conversation.status in statuses_hidden_from(sees_chatbot=sees_chatbot) for _, sees_chatbot in AUDIENCES)


def message_created(conversation: Conversation, message: Message, *, previous_public_seq: int) -> None:
    payload = message_broadcast(conversation, message, previous_public_seq=previous_public_seq)
    webhooks.message_created(conversation, message, payload)  # a cached lookup when no webhook listens


def message_broadcast(conversation: Conversation, message: Message, *, previous_public_seq: int) -> dict[str, Any]:
    """message_created's frames, without its webhook event: for a write that knew no webhook of the site wants
    message.created before it wrote (services.visitor_text_on_loop, on the event loop). Returns the MSG."""
    payload = message_dict(message)
    if message.visible_to_visitor:
        realtime.send_on_commit(realtime.conversation_group(conversation.pk),
                                {"type": "widget.message", "message": payload, "previous": previous_public_seq})
    # Serialized once here rather than by each inbox socket of the site (every one of them forwards it as is), and
    # sent once to the whole site when every audience may see it (the commonest case: a live conversation's text).
    event = {"type": "inbox.message", "frame": _frame("message", message=payload)}
    if _seen_by_every_audience(conversation, message):
        realtime.send_on_commit(realtime.site_everyone_group(conversation.site_id), event)
        return payload
    for _, group in _inbox_audiences(conversation, note=not message.visible_to_visitor):
        realtime.send_on_commit(group, event)
    return payload


def conversation_changed(conversation: Conversation, *, widget: bool = True,
                         reader: tuple[Advisor, int] | None = None) -> None:
    """Status, assignment or creation: the widget's view, and each audience's CONV (unread set per socket from
    the read positions it keeps). `reader`: an advisor whose read position this same write moves (a reply); the
    frame carries it so that advisor's sockets never show their own reply's conversation as unread."""
    if widget:
        realtime.send_on_commit(realtime.conversation_group(conversation.pk),
                                {"type": "widget.conversation", "conversation": widget_conversation_dict(conversation)})
    built: dict[bool, list[str]] = {}
    for licensed, group in _inbox_audiences(conversation):
        if licensed not in built:  # serialized once, read and unread: each socket picks one for its advisor
            payload = conversation_dict(conversation, licensed=licensed, read_seq=0)
            built[licensed] = [_frame("conversation", conversation=dict(payload, unread=unread))
                               for unread in (False, True)]
        last_seq = conversation.last_seq if licensed else conversation.last_public_seq
        event = {"type": "inbox.conversation", "id": conversation.pk, "frames": built[licensed],
                 "last_seq": last_seq}
        if reader is not None:
            event["reader"] = [reader[0].pk, reader[1]]
        realtime.send_on_commit(group, event)


def conversation_moved(conversation: Conversation, *, status_before: str, assigned_before: int | None) -> None:
    """A saved change of status or assignment, for the webhooks (conversation.assigned, conversation.closed)."""
    webhooks.conversation_moved(conversation, status_before=status_before, assigned_before=assigned_before)


def conversation_escalated(conversation: Conversation) -> None:
    """A visitor asked for a human (the moment advisors are e-mailed), for the webhooks."""
    webhooks.conversation_event("conversation.escalated", conversation)


def conversation_read(conversation: Conversation, advisor: Advisor, read_seq: int, *, read_change: int = 0) -> None:
    """Read state is one advisor's own: only that advisor's sockets hear of it."""
    payload = conversation_dict(conversation, licensed=advisor.licensed, read_seq=read_seq, read_change=read_change)
    realtime.send_on_commit(realtime.advisor_group(advisor.pk), {"type": "inbox.conversation",
                                                                 "conversation": payload, "read_seq": read_seq})


def read_moved(conversation_id: int, advisor: Advisor, read_seq: int) -> None:
    """A read position moved without a frame of its own (a reply reads up to itself): the advisor's sockets
    update the read positions they keep."""
    realtime.send_on_commit(realtime.advisor_group(advisor.pk), {"type": "inbox.read", "conversation": conversation_id,
                                                                 "read_seq": read_seq})


def visitor_typing(conversation: Conversation) -> None:
    for licensed, group in _inbox_audiences(conversation):
        realtime.send_now(group, {"type": "inbox.typing", "conversation": conversation.pk,
                                  "name": visitor_name(conversation, licensed=licensed)})


def advisor_typing(conversation: Conversation, advisor: Advisor, *, note: bool = False) -> None:
    """The visitor sees a reply being typed, never a note; the inbox audiences that may see it hear who is replying
    (collision detection; a note's only by licensed advisors). The replier's own sockets skip it."""
    if not note:
        realtime.send_now(realtime.conversation_group(conversation.pk),
                          {"type": "widget.typing", "name": advisor.display_name})
    replying = {"type": "inbox.replying", "conversation": conversation.pk,
                "advisor": {"username": advisor.username, "name": advisor.display_name}}
    for _, group in _inbox_audiences(conversation, note=note):
        realtime.send_now(group, replying)


def visitor_presence(conversation: Conversation, *, online: bool) -> None:
    for _, group in _inbox_audiences(conversation):
        realtime.send_on_commit(group, {"type": "inbox.presence", "conversation": conversation.pk, "online": online})


def conversation_deleted(*, conversation_id: int, visitor_id: int) -> None:
    """The visitor's widget sockets close 4401: their token is gone, and the widget starts a new session."""
    realtime.send_on_commit(realtime.visitor_group(visitor_id), {"type": "widget.gone",
                                                                 "conversation": conversation_id})
