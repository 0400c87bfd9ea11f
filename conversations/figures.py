"""The stored figures reports aggregate (CONTRACT section 7): each escalation's moments, kept as the conversation
goes, on the conversation row (its current escalation) and in its reports.Episode row (the history).

One rule, called by conversations.services._Timeline.save, under the conversation's row lock, only when a write
changes the status, the assignment, answers the visitor, or calls for a human: a visitor's message to a live
conversation never comes here. reports.models.Episode says which moments count."""
from typing import TYPE_CHECKING

from django.db.models import Subquery
from django.utils import timezone

from conversations.models import Conversation, Message
from livechat import compiled
from reports.models import Episode

if TYPE_CHECKING:
    from conversations.services import _Timeline

Status = Conversation.Status


def needed(timeline: "_Timeline") -> bool:
    """Whether this write may move a figure (cheap: compares what the timeline remembered)."""
    conversation = timeline.conversation
    return (timeline.escalation is not None or conversation.status != timeline.status_before
            or conversation.assigned_id != timeline.assigned_before
            or conversation.last_advisor_seq != timeline.advisor_seq_before)


def _reply(timeline: "_Timeline") -> Message | None:
    """The first advisor reply (never a note) this write stored."""
    if timeline.conversation.last_advisor_seq == timeline.advisor_seq_before:
        return None
    return next((m for m in timeline.created if m.sender == Message.Sender.ADVISOR and m.kind != Message.Kind.NOTE),
                None)


def _seconds(later, earlier) -> float | None:
    return None if later is None or earlier is None else (later - earlier).total_seconds()


def _latest(conversation: Conversation):
    return Episode.objects.filter(pk=Subquery(Episode.objects.filter(conversation_id=conversation.pk)
                                              .order_by("-id").values("pk")[:1]))


def keep(timeline: "_Timeline") -> None:
    """Set the figures this write moves, on the conversation (saved by the caller's UPDATE) and its episode."""
    conversation = timeline.conversation
    before, status = timeline.status_before, conversation.status
    now = timezone.now()
    reply = _reply(timeline)
    escalation = timeline.escalation
    if escalation is None:  # not said by the service: a human taking over from the bot is one
        escalation = before == Status.BOT and status == Status.LIVE
    if escalation:
        assigned_at = now if conversation.assigned_id else None
        first_reply_at = reply.created_at if reply is not None else None
        timeline.set(escalated_at=now, assigned_at=assigned_at, first_reply_at=first_reply_at)
        compiled.insert(Episode(conversation_id=conversation.pk, site_id=conversation.site_id, escalated_at=now,
                                assigned_at=assigned_at, first_reply_at=first_reply_at,
                                advisor_id=conversation.assigned_id,
                                first_reply_by_id=reply.advisor_id if reply is not None else None,
                                waiting_s=_seconds(assigned_at, now), first_response_s=_seconds(first_reply_at, now)))
        return
    if before == Status.CLOSED and status != Status.CLOSED and conversation.rating_asked:
        timeline.set(rating_asked=False)  # that closing's question is over
    if conversation.escalated_at is None:
        return  # no escalation going on: the bot's own conversation
    changes = {}
    if conversation.assigned_id is not None and conversation.assigned_id != timeline.assigned_before:
        changes["advisor_id"] = conversation.assigned_id
        if conversation.assigned_at is None:
            timeline.set(assigned_at=now)
            changes.update(assigned_at=now, waiting_s=_seconds(now, conversation.escalated_at))
    if reply is not None and conversation.first_reply_at is None:
        timeline.set(first_reply_at=reply.created_at)
        changes.update(first_reply_at=reply.created_at, first_reply_by_id=reply.advisor_id,
                       first_response_s=_seconds(reply.created_at, conversation.escalated_at))
    if status == Status.CLOSED and before != Status.CLOSED:
        changes.update(closed_at=conversation.closed_at,
                       resolution_s=_seconds(conversation.closed_at, conversation.escalated_at))
    elif before == Status.CLOSED and status == Status.LIVE:
        changes.update(closed_at=None, resolution_s=None)  # an advisor's reopening: the episode goes on
    if status == Status.BOT:  # back to the bot: the episode ends here, without a close
        timeline.set(escalated_at=None, assigned_at=None, first_reply_at=None)
    if changes:
        _latest(conversation).update(**changes)
