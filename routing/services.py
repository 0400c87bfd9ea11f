"""Writes of availability and routing: statuses and capacities, a site's rules, who takes an escalation, the away
message, the e-mail a visitor who left gets, the timers (routing.tasks) and idle close.

The escalation path runs inside the conversation's transaction, under its row lock (conversations.services), so two
processes never decide differently for one conversation; round robin also locks the candidate advisors' rows, in
id order, so that two escalations at the same moment never push one advisor past capacity."""
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from advisors.models import Advisor, Site
from advisors.selectors import advisor_of_site
from chatbots.engine import EMAIL_RE, single_line
from conversations.errors import Refused
from conversations.models import Conversation, Message, Visitor
from conversations.presenters import timestamp
from livechat.db import database_call
from routing import presence, selectors
from routing.models import DEFAULT_AWAY_MESSAGE, AdvisorRouting, SiteRouting

logger = logging.getLogger(__name__)

Status = Conversation.Status
VISITOR_LEFT_AFTER_S = 60  # no widget socket for this long: replies go by e-mail
REPLY_EMAIL_BATCH_S = 120  # replies within this window go in one e-mail (LIVECHAT["REPLY_EMAIL_BATCH_S"])


# ------------------------------------------------------------------------------ advisors


def advisor_availability_set(*, advisor: Advisor, status: str | None = None, capacity: int | None = None
                             ) -> AdvisorRouting:
    """`status`: "online" or "away" (offline is never chosen: it is the absence of an inbox socket)."""
    if status not in (None, selectors.ONLINE, selectors.AWAY):
        raise Refused(_("status is online or away."), fields={"status": [_("online or away")]})
    if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0):
        raise Refused(_("capacity is a whole number, 0 or more (0: no limit)."), fields={"capacity": [_("0 or more")]})
    changes = {}
    if status is not None:
        changes["away"] = status == selectors.AWAY
    if capacity is not None:
        changes["capacity"] = capacity
    with transaction.atomic():
        rules, _created = AdvisorRouting.objects.update_or_create(advisor=advisor, defaults=changes)
    advisor.routing = rules
    return rules


# ------------------------------------------------------------------------------ sites

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
SITE_FIELDS = ("assignment", "hours", "away_message", "handoff_timeout_s", "idle_close_min")


def hours_clean(value) -> dict | None:
    """None (always open) or {"timezone", "intervals": [{"day": 0-6, "start": "HH:MM", "end": "HH:MM"}]}."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"timezone", "intervals"}:
        raise Refused(_("hours is null or {timezone, intervals}."),
                      fields={"hours": [_("null or {timezone, intervals}")]})
    zone = value.get("timezone")
    try:
        ZoneInfo(zone if isinstance(zone, str) and zone else "?")
    except (ZoneInfoNotFoundError, ValueError):
        raise Refused(_("Unknown time zone %(zone)r.") % {"zone": zone},
                      fields={"hours": [_("timezone: an IANA name such as Europe/Paris")]}) from None
    intervals = value.get("intervals")
    if not isinstance(intervals, list) or len(intervals) > 50:
        raise Refused(_("hours.intervals is a list."), fields={"hours": [_("intervals: a list of at most 50")]})
    clean = []
    for interval in intervals:
        ok = (isinstance(interval, dict) and set(interval) == {"day", "start", "end"}
              and isinstance(interval["day"], int) and not isinstance(interval["day"], bool)
              and 0 <= interval["day"] <= 6
              and all(isinstance(interval[k], str) and _TIME.match(interval[k]) for k in ("start", "end"))
              and interval["start"] < interval["end"] and interval["start"] != "24:00")
        if not ok:
            raise Refused(_("Each interval is {day: 0-6 (Monday 0), start: HH:MM, end: HH:MM}, start before end."),
                          fields={"hours": [(_("bad interval %(interval)r") % {"interval": interval})[:200]]})
        clean.append({"day": interval["day"], "start": interval["start"], "end": interval["end"]})
    return {"timezone": zone, "intervals": clean}


def site_routing_update(*, site: Site, **changes) -> SiteRouting:
    """Staff change a site's routing (the admin and PATCH /api/inbox/sites/{key}); checked here for both."""
    unknown = set(changes) - set(SITE_FIELDS)
    if unknown:
        raise Refused(_("Unknown fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
                      fields={k: [_("unknown")] for k in unknown})
    if "assignment" in changes and changes["assignment"] not in SiteRouting.Assignment.values:
        raise Refused(_("assignment is manual or round_robin."), fields={"assignment": [_("manual or round_robin")]})
    if "hours" in changes:
        changes["hours"] = hours_clean(changes["hours"])
    if "away_message" in changes:
        message = changes["away_message"]
        if not isinstance(message, str) or not message.strip() or len(message) > 1000:
            raise Refused(_("away_message is a text of 1 to 1000 characters."), fields={"away_message": [_("1-1000")]})
    for name, high in (("handoff_timeout_s", 86400), ("idle_close_min", 10080)):
        value = changes.get(name)
        if name in changes and not (value is None and name == "idle_close_min") and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high):
            raise Refused(_("%(name)s is a whole number from 0 to %(high)s.") % {"name": name, "high": high},
                          fields={name: [_("0 to %(high)s") % {"high": high}]})
    if changes.get("idle_close_min") == 0:
        changes["idle_close_min"] = None
    with transaction.atomic():
        rules, _created = SiteRouting.objects.update_or_create(site=site, defaults=changes)
    site.routing = rules
    return rules


# ------------------------------------------------------------------------------ escalation


@dataclass(frozen=True)
class Route:
    advisor: Advisor | None  # who takes it now
    away: bool  # the visitor gets the away message now
    rules: SiteRouting


def escalation_route(*, conversation: Conversation, assign_to: str | None) -> Route:
    """Who takes a conversation that now waits for a human. Under the conversation's row lock.

    A flow's named assignee only while online; else round robin when the site uses it and is open. Nobody fits on
    a round-robin site, or the site is closed: the away message now. A manual site that is open waits for its team
    (handoff_timeout_s, routing.tasks)."""
    site = conversation.site
    rules = selectors.site_rules(site)
    advisor = None
    if assign_to:
        named = advisor_of_site(username=assign_to, site_id=site.pk, account_id=site.account_id)
        if named is None:
            logger.warning("escalation of conversation %s names %r, who is not an advisor of its site",
                           conversation.pk, assign_to)
        elif selectors.advisor_status(named) == selectors.ONLINE:
            advisor = named
            _assigned_now(named.pk)
    is_open = selectors.site_open(rules)
    if advisor is None and is_open and rules.assignment == SiteRouting.Assignment.ROUND_ROBIN:
        advisor = round_robin_pick(site=site)
    away = advisor is None and (not is_open or rules.assignment == SiteRouting.Assignment.ROUND_ROBIN)
    return Route(advisor, away, rules)


def round_robin_pick(*, site: Site) -> Advisor | None:
    """The online, licensed advisor of the site under capacity with the fewest live conversations, then the one
    assigned least recently; None if nobody fits. Locks the candidates' rows (in id order: no deadlock between two
    picks) and counts after the lock, so a concurrent pick's assignment, once committed, is counted."""
    candidates = selectors.round_robin_candidates(site_id=site.pk, account_id=site.account_id)
    online = sorted(presence.connected_ids(candidates))
    if not online:
        return None
    list(Advisor.objects.select_for_update().filter(pk__in=online).order_by("pk").values_list("pk", flat=True))
    rows = (selectors.advisors_with_live(Advisor.objects.filter(pk__in=online).exclude(routing__away=True))
            .select_related("user", "routing"))
    fitting = [a for a in rows if not (rules := selectors.advisor_rules(a)).capacity or a.live < rules.capacity]
    if not fitting:
        return None
    oldest = timezone.now() - timedelta(days=36500)
    chosen = min(fitting, key=lambda a: (a.live, selectors.advisor_rules(a).last_assigned_at or oldest, a.pk))
    _assigned_now(chosen.pk)
    return chosen


def _assigned_now(advisor_id: int) -> None:
    AdvisorRouting.objects.update_or_create(advisor_id=advisor_id, defaults={"last_assigned_at": timezone.now()})


EMAIL_INPUT = {"variable": "EMAIL", "type": "email"}


def _away_sent(conversation: Conversation) -> bool:
    """Whether this escalation (its `waiting_since`) already had its away message."""
    return (conversation.away_sent_at is not None and conversation.waiting_since is not None
            and conversation.away_sent_at >= conversation.waiting_since)


def away_send(timeline, rules: SiteRouting) -> None:
    """The site's away message from the bot, with an input for EMAIL, once per escalation (`waiting_since`)."""
    if _away_sent(timeline.conversation):
        return
    text = rules.away_message
    if text == DEFAULT_AWAY_MESSAGE:  # nobody wrote the site's own: ours, in the visitor's language
        with translation.override(timeline.conversation.visitor.language):
            text = _(DEFAULT_AWAY_MESSAGE)
    timeline.append(kind=Message.Kind.TEXT, sender=Message.Sender.BOT, text=text, input=EMAIL_INPUT)
    timeline.set(away_sent_at=timezone.now(), awaiting_email=True)


def escalation_follow_up(timeline, route: Route) -> None:
    """After the routing decision: the away message now, or the handoff timer for a conversation left waiting."""
    if route.advisor is not None:
        return
    if route.away:
        away_send(timeline, route.rules)
        return
    timeout = route.rules.handoff_timeout_s
    if timeout > 0 and not settings.CELERY_TASK_ALWAYS_EAGER:  # eagerly, a countdown would run at once
        from routing.tasks import handoff_expire

        arguments = (timeline.conversation.pk, timestamp(timeline.conversation.waiting_since))
        transaction.on_commit(lambda: handoff_expire.apply_async(arguments, countdown=timeout))


def handoff_expire(*, conversation_id: int, waiting_since: str) -> bool:
    """The handoff timer: the away message if that same escalation is still live and unassigned. True if sent."""
    from conversations.services import _load_related, _lock, _Timeline

    with transaction.atomic():
        try:
            conversation = _lock(pk=conversation_id)
        except Conversation.DoesNotExist:
            return False  # erased (the visitor's data) or deleted by retention before its timer came
        if (conversation.status != Status.LIVE or conversation.assigned_id is not None
                or timestamp(conversation.waiting_since) != waiting_since):
            return False  # taken, answered, closed, or escalated again (that one has its own timer)
        if _away_sent(conversation):
            return False
        timeline = _Timeline(conversation)
        away_send(timeline, selectors.site_rules(_load_related(conversation).site))
        timeline.save()
    return True


# ------------------------------------------------------------------------------ the visitor's e-mail


def email_capture(timeline, text: str) -> None:
    """The visitor answered the away message: an e-mail address goes into EMAIL (anything else is a message)."""
    value = single_line(text)
    if not EMAIL_RE.match(value) or len(value) > 254:
        return
    visitor = Visitor.objects.select_for_update().get(pk=timeline.conversation.visitor_id)
    visitor.variables = {**visitor.variables, "EMAIL": value}
    visitor.save(update_fields=["variables"])
    timeline.set(awaiting_email=False)
    timeline.append(kind=Message.Kind.TEXT, sender=Message.Sender.BOT,
                    text=f"Thank you! Our team will answer you at {value}.")


@dataclass(frozen=True)
class VisitorReach:
    """What a stored reply asks of its visitor: the e-mail it gave (EMAIL) and its presence (visitor_left)."""

    email: str
    online_sockets: int
    last_seen_at: datetime


def visitor_left(visitor: Visitor | VisitorReach, now: datetime | None = None) -> bool:
    """No widget socket open for VISITOR_LEFT_AFTER_S."""
    now = now or timezone.now()
    return visitor.online_sockets == 0 and visitor.last_seen_at <= now - timedelta(seconds=VISITOR_LEFT_AFTER_S)


def reply_stored(*, conversation: Conversation, reach: VisitorReach | None = None) -> None:
    """An advisor's reply (never a note) was stored: once committed, if the visitor left and gave EMAIL, e-mail
    the replies of the next REPLY_EMAIL_BATCH_S in one message (eagerly, at once). `reach`: the visitor as the
    write itself read it (conversations.live_message), else read once committed."""
    conversation_id, visitor_id = conversation.pk, conversation.visitor_id
    transaction.on_commit(lambda: _reply_email_queued(conversation_id, reach or _reach(visitor_id)))


async def reply_stored_on_loop(*, conversation: Conversation, reach: VisitorReach) -> None:
    """reply_stored for a reply the event loop wrote, committed already, the visitor as the write read it: nothing
    to do unless the e-mail is due, which is then queued in a thread (Celery's client blocks)."""
    if _reply_email_due(reach):
        await database_call(_reply_email_queued)(conversation.pk, reach)


def _reply_email_due(visitor: VisitorReach | None) -> bool:
    return visitor is not None and bool(visitor.email) and visitor_left(visitor)


def _reply_email_queued(conversation_id: int, visitor: VisitorReach | None) -> None:
    from routing.tasks import visitor_replies_email

    if not _reply_email_due(visitor):
        return
    window = settings.LIVECHAT.get("REPLY_EMAIL_BATCH_S", REPLY_EMAIL_BATCH_S)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        visitor_replies_email.delay(conversation_id)
    elif cache.add(f"routing:replies:{conversation_id}", 1, timeout=window):
        visitor_replies_email.apply_async((conversation_id,), countdown=window)


def _reach(visitor_id: int) -> VisitorReach | None:
    visitor = Visitor.objects.filter(pk=visitor_id).only("online_sockets", "last_seen_at", "variables").first()
    if visitor is None:
        return None
    return VisitorReach(email=visitor.variables.get("EMAIL") or "", online_sockets=visitor.online_sockets,
                        last_seen_at=visitor.last_seen_at)


def conversation_idle_close_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Close the live conversations silent past their site's idle_close_min; the ids closed."""
    from conversations.services import conversation_close

    now = now or timezone.now()
    closed = []
    for rules in SiteRouting.objects.filter(idle_close_min__isnull=False).only("site_id", "idle_close_min"):
        cutoff = now - timedelta(minutes=rules.idle_close_min)
        ids = list(Conversation.objects.filter(site_id=rules.site_id, status=Status.LIVE, updated_at__lt=cutoff)
                   .order_by("updated_at").values_list("pk", flat=True)[:limit])
        for conversation_id in ids:
            if conversation_close(conversation_id=conversation_id, advisor=None, idle_min=rules.idle_close_min,
                                  now=now).status == Status.CLOSED:
                closed.append(conversation_id)
    return closed
