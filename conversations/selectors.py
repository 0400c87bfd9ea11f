"""Reads for the inbox and the widget. `conversation_for_advisor` is the one scope check that the REST API
and the inbox socket both use: outside the advisor's sites, a conversation does not exist."""
import base64
import json
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, FilteredRelation, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils.dateparse import parse_datetime

from advisors.models import Advisor
from conversations.errors import Forbidden, NotFound, Refused
from conversations.models import Conversation, Message, ReadState

Status = Conversation.Status
BOXES = ("live", "closed", "chatbot")
FILTERS = ("all", "unassigned", "unread", "mine")
MAX_PAGE = 100


def advisor_for_user(user) -> Advisor | None:
    """The advisor behind a user, with the ids of the sites in scope (one query for each)."""
    if user is None or not user.is_authenticated:
        return None
    advisor = Advisor.objects.select_related("user").filter(user=user).first()
    if advisor is not None:
        advisor.site_ids = list(advisor.sites.values_list("id", flat=True))
    return advisor


def _list_related(queryset: QuerySet) -> QuerySet:
    return queryset.select_related(
        "visitor", "site__chatbot", "assigned__user",
        "last_message__advisor__user", "last_public_message__advisor__user",
    )


def _with_read_seq(queryset: QuerySet, advisor: Advisor) -> QuerySet:
    return queryset.annotate(
        my_read=FilteredRelation("reads", condition=Q(reads__advisor=advisor)),
        read_seq=Coalesce(F("my_read__seq"), 0),
    )


def _unread_q(advisor: Advisor) -> Q:
    last = "last_seq" if advisor.licensed else "last_public_seq"
    return Q(**{f"{last}__gt": F("read_seq")})


def conversation_for_advisor(*, advisor: Advisor, conversation_id) -> Conversation:
    """The conversation with its read position for this advisor; NotFound outside the advisor's sites."""
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        raise NotFound("No such conversation.") from None
    conversation = (_with_read_seq(_list_related(Conversation.objects), advisor)
                    .filter(pk=conversation_id, site_id__in=advisor.site_ids).first())
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


def conversation_id_for_advisor(*, advisor: Advisor, conversation_id) -> int:
    """The same scope check as conversation_for_advisor, for writes that load the row themselves: one cheap
    query instead of the list's wide join."""
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        raise NotFound("No such conversation.") from None
    if not Conversation.objects.filter(pk=conversation_id, site_id__in=advisor.site_ids).exists():
        raise NotFound("No such conversation.")
    return conversation_id


def _scope(advisor: Advisor, site_key: str | None) -> Q:
    scope = Q(site_id__in=advisor.site_ids)
    if site_key:
        scope &= Q(site__key=site_key)
    return scope


def _box_q(box: str) -> Q:
    return Q(status=Status.BOT) if box == "chatbot" else Q(status=box)


@dataclass(frozen=True)
class Cursor:
    updated_at: datetime
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.updated_at.isoformat(), self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> "Cursor":
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            stamp, pk = json.loads(raw)
            updated_at = parse_datetime(stamp)
            if updated_at is None or not isinstance(pk, int):
                raise ValueError
            return cls(updated_at, pk)
        except (ValueError, TypeError, json.JSONDecodeError):
            raise Refused("The cursor is not valid.", fields={"cursor": ["Not a cursor this API gave."]}) from None


def conversation_list(*, advisor: Advisor, box: str = "live", filter: str = "all", assigned_to: str | None = None,
                      site_key: str | None = None, cursor: str | None = None,
                      limit: int = 25) -> tuple[list[Conversation], str | None]:
    """One page, newest activity first, by keyset on (updated_at, id): one query whatever the page."""
    if box not in BOXES:
        raise Refused(f"box must be one of {', '.join(BOXES)}.", fields={"box": ["Unknown box."]})
    if filter not in FILTERS:
        raise Refused(f"filter must be one of {', '.join(FILTERS)}.", fields={"filter": ["Unknown filter."]})
    if box == "chatbot" and not advisor.sees_chatbot:
        raise Forbidden("You do not see the discussions where the chatbot has the lead.")
    queryset = _with_read_seq(_list_related(Conversation.objects), advisor).filter(_scope(advisor, site_key),
                                                                                 _box_q(box))
    if filter == "unassigned":
        queryset = queryset.filter(assigned__isnull=True)
    elif filter == "mine":
        queryset = queryset.filter(assigned=advisor)
    elif filter == "unread":
        queryset = queryset.filter(_unread_q(advisor))
    if assigned_to:
        queryset = queryset.filter(assigned__user__username=assigned_to)
    if cursor:
        after = Cursor.decode(cursor)
        queryset = queryset.filter(Q(updated_at__lt=after.updated_at) | Q(updated_at=after.updated_at, id__lt=after.id))
    page = list(queryset.order_by("-updated_at", "-id")[: limit + 1])
    next_cursor = Cursor(page[limit - 1].updated_at, page[limit - 1].pk).encode() if len(page) > limit else None
    return page[:limit], next_cursor


def conversation_counts(*, advisor: Advisor, site_key: str | None = None) -> dict[str, int]:
    """The box and filter counts and the badge, in one aggregate over the advisor's sites."""
    live = Q(status=Status.LIVE)
    unread = _unread_q(advisor)
    counts = _with_read_seq(Conversation.objects.filter(_scope(advisor, site_key)), advisor).aggregate(
        live=Count("id", filter=live),
        closed=Count("id", filter=Q(status=Status.CLOSED)),
        chatbot=Count("id", filter=Q(status=Status.BOT)),
        unassigned=Count("id", filter=live & Q(assigned__isnull=True)),
        unread=Count("id", filter=live & unread),
        mine=Count("id", filter=live & Q(assigned=advisor)),
        to_process=Count("id", filter=live & (Q(assigned__isnull=True) | (Q(assigned=advisor) & unread))),
    )
    if not advisor.sees_chatbot:
        counts["chatbot"] = 0
    return counts


def _page(queryset: QuerySet, *, after: int | None, before: int | None, limit: int) -> list[Message]:
    queryset = queryset.select_related("advisor__user")
    if before is not None:
        return list(reversed(queryset.filter(seq__lt=before).order_by("-seq")[:limit]))
    return list(queryset.filter(seq__gt=after or 0).order_by("seq")[:limit])


def messages_for_advisor(*, advisor: Advisor, conversation: Conversation, after: int | None = None,
                         before: int | None = None, limit: int = 50) -> list[Message]:
    queryset = Message.objects.filter(conversation=conversation)
    if not advisor.licensed:
        queryset = queryset.exclude(kind=Message.Kind.NOTE)
    return _page(queryset, after=after, before=before, limit=limit)


def messages_for_visitor(*, conversation_id: int, after: int = 0, limit: int = 100) -> list[Message]:
    queryset = Message.objects.filter(conversation_id=conversation_id).exclude(kind=Message.Kind.NOTE)
    return _page(queryset, after=after, before=None, limit=limit)


def read_seq_for(*, advisor: Advisor, conversation_id: int) -> int:
    return ReadState.objects.filter(advisor=advisor, conversation_id=conversation_id).values_list(
        "seq", flat=True).first() or 0


def assignable_advisors(*, advisor: Advisor) -> QuerySet:
    """Advisors of the account who share at least one site with the asking advisor."""
    return (Advisor.objects.select_related("user").filter(account_id=advisor.account_id,
                                                            sites__in=advisor.site_ids)
            .distinct().order_by("display_name"))
