"""Reads about availability and routing: an advisor's status, a site's rules and opening hours."""
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from advisors.models import Advisor, Site
from livechat.compiled import ID_PLACEHOLDER, CompiledLookup
from routing import presence
from routing.models import AdvisorRouting, SiteRouting

ONLINE, AWAY, OFFLINE = "online", "away", "offline"


def site_rules(site: Site) -> SiteRouting:
    """The site's routing row, or the defaults (unsaved) when nothing was ever set. Every escalation asks: by SQL
    compiled once (livechat.compiled), kept on the site as its `routing` like the ORM's own access."""
    relation = Site.routing.related
    if not relation.is_cached(site):
        found = _SITE_RULES.get(site.pk)
        if found is not None:
            relation.field.set_cached_value(found, site)  # rules.site, as the ORM's access leaves it
        relation.set_cached_value(site, found)
    rules = relation.get_cached_value(site)
    return rules if rules is not None else SiteRouting(site=site)


_SITE_RULES = CompiledLookup(lambda site_id: SiteRouting.objects.filter(site_id=site_id).order_by()[:2],
                             ID_PLACEHOLDER)


def advisor_rules(advisor: Advisor) -> AdvisorRouting:
    try:
        return advisor.routing
    except AdvisorRouting.DoesNotExist:
        return AdvisorRouting(advisor=advisor)


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def site_open(rules: SiteRouting, at: datetime | None = None) -> bool:
    """Whether the site's business hours include this moment (no hours: always open)."""
    hours = rules.hours
    if not hours:
        return True
    local = (at or timezone.now()).astimezone(ZoneInfo(hours["timezone"]))
    now = local.hour * 60 + local.minute
    return any(interval["day"] == local.weekday() and _minutes(interval["start"]) <= now < _minutes(interval["end"])
               for interval in hours["intervals"])


def statuses(advisors: Iterable[Advisor]) -> dict[int, str]:
    """Each advisor's status (by id): offline without an inbox socket within the last minute, else as chosen.
    Needs `routing` selected (select_related) to avoid one query per advisor; one cache round trip in all."""
    advisors = list(advisors)
    connected = presence.connected_ids(a.pk for a in advisors)
    return {a.pk: (OFFLINE if a.pk not in connected else AWAY if advisor_rules(a).away else ONLINE)
            for a in advisors}


def advisor_status(advisor: Advisor) -> str:
    return statuses([advisor])[advisor.pk]


def advisors_with_live(queryset: QuerySet) -> QuerySet:
    """Advisors annotated with `live`, the live conversations assigned to each (the conv_live_assigned index)."""
    return queryset.annotate(live=Count("assigned_conversations", filter=Q(assigned_conversations__status="live"),
                                        distinct=True))


def round_robin_candidates(*, site_id: int, account_id: int) -> list[int]:
    """Ids of the licensed advisors of the site who did not choose `away` (presence is checked after)."""
    return list(Advisor.objects.filter(sites=site_id, account_id=account_id, licensed=True)
                .exclude(routing__away=True).order_by("pk").values_list("pk", flat=True))
