"""The figures of GET /api/inbox/reports (CONTRACT section 7), as aggregate queries over indexed columns: a fixed
number of queries whatever the range (PostgreSQL computes the percentiles; the embedded SQLite, which has no
percentile function, gets the durations of the range and computes them here the same way). The durations are
stored on each episode with its moments (conversations.figures), so a percentile sorts a plain column.

What counts, for a range of days [from, to] in the account's time zone (reports.models.Episode says which
moments are stored):
- started: conversations created in the range; escalated: episodes escalated in it; closed: episodes whose
  close (the last one, after reopenings) falls in it.
- waiting_s (escalation to the first take or assignment) and first_response_s (escalation to the first advisor
  reply): episodes escalated in the range that reached that moment; one never answered has no first response.
- resolution_s (escalation to close): episodes closed in the range.
- csat: ratings given in the range; by_advisor's csat_average: the ratings of conversations that advisor handled.
- An advisor's own figures (an advisor who is not staff, or `advisor=` for staff): episodes they handled (the
  last assigned), first responses they wrote, ratings of conversations they handled, and the conversations
  started in the range that they handled at some point."""
import math
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import Aggregate, Avg, Count, FloatField, Q, QuerySet
from django.utils.translation import gettext as _

from advisors.models import Advisor
from advisors.selectors import advisor_is_staff
from conversations.errors import Forbidden, NotFound, Refused
from reports.models import Episode, Rating

MAX_DAYS = 366
QUANTILES = (0.5, 0.9)


@dataclass(frozen=True)
class Scope:
    """Whose figures: the sites in scope, and one advisor's own or everyone's (advisor None)."""

    account_id: int
    site_ids: list[int]
    advisor: Advisor | None
    timezone: zoneinfo.ZoneInfo
    start: date
    end: date  # inclusive

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, self.timezone)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, self.timezone)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


def _day(value: str | None, name: str, default: date) -> date:
    if value in (None, ""):
        return default
    try:
        return date.fromisoformat(value) if len(value) == 10 else date.fromisoformat("bad")
    except ValueError:
        raise Refused(_("%(name)s is a date, YYYY-MM-DD.") % {"name": name},
                      fields={name: [_("A date, YYYY-MM-DD.")]}) from None


def report_scope(*, advisor: Advisor, date_from: str | None = None, date_to: str | None = None,
                 site_key: str | None = None, username: str | None = None, today: date | None = None) -> Scope:
    """Checks what the caller may see: a site of theirs (else 404), their own figures unless staff (another
    advisor's: 403), a range of at most 366 days (else 400). Defaults: the last 30 days, today included."""
    tz = zoneinfo.ZoneInfo(advisor.account.timezone or "UTC")
    today = today or datetime.now(tz).date()
    end = _day(date_to, "to", today)
    start = _day(date_from, "from", end - timedelta(days=29))
    if start > end:
        raise Refused(_("from is after to."), fields={"from": [_("On or before `to`.")]})
    if (end - start).days + 1 > MAX_DAYS:
        raise Refused(_("A report covers at most %(max)s days.") % {"max": MAX_DAYS},
                      fields={"to": [_("At most %(max)s days.") % {"max": MAX_DAYS}]})
    if site_key:
        site_id = advisor.site_id_by_key.get(site_key)
        if site_id is None:
            raise NotFound(_("None of your sites has this key."))
        site_ids = [site_id]
    else:
        site_ids = list(advisor.site_ids)
    staff = advisor_is_staff(advisor)
    subject = None if staff else advisor
    if username:
        if username == advisor.username:
            subject = advisor
        elif not staff:
            raise Forbidden(_("Only staff see other advisors' figures."))
        else:
            subject = Advisor.objects.select_related("user").filter(account_id=advisor.account_id,
                                                                    user__username=username).first()
            if subject is None:
                raise NotFound(_("No advisor of your account has this username."))
    return Scope(account_id=advisor.account_id, site_ids=site_ids, advisor=subject, timezone=tz, start=start, end=end)


# ------------------------------------------------------------------------------ percentiles


class _Percentiles(Aggregate):
    """PostgreSQL's percentile_cont at QUANTILES (linear interpolation), one sort for both."""

    function = "percentile_cont"
    template = "%(function)s(ARRAY[" + ", ".join(map(str, QUANTILES)) + "]) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = ArrayField(FloatField())


def _quantiles(values: list[float]) -> list[float] | None:
    """percentile_cont's own interpolation, for SQLite."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    result = []
    for q in QUANTILES:
        position = q * (len(values) - 1)
        low = math.floor(position)
        high = min(low + 1, len(values) - 1)
        result.append(values[low] + (values[high] - values[low]) * (position - low))
    return result


def _pair(values: list[float] | None) -> dict:
    if not values:
        return {"p50": None, "p90": None}
    return {"p50": round(values[0], 1), "p90": round(values[1], 1)}


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


def _durations(queryset: QuerySet, wanted: dict[str, tuple[str, Q]]) -> dict[str, list[float] | None]:
    """For each name: the quantiles of a stored duration column over the rows that match its Q. One query."""
    if _postgresql():
        return queryset.aggregate(**{name: _Percentiles(column, filter=q & Q(**{f"{column}__isnull": False}))
                                     for name, (column, q) in wanted.items()})
    fields = {column for column, _ in wanted.values()} | {
        lookup.split("__")[0] for _, q in wanted.values() for lookup, _ in q.children}
    rows = list(queryset.values(*fields))
    return {name: _quantiles([row[column] for row in rows if _matches(row, q)])
            for name, (column, q) in wanted.items()}


def _matches(row: dict, q: Q) -> bool:
    """The report's per-figure Q (exact lookups on ids), evaluated on a fetched row."""
    return all(row[lookup] == value for lookup, value in q.children)


# ------------------------------------------------------------------------------ the report


def _by_day(scope: Scope) -> list[tuple[int, int, int]]:
    """(started, escalated, closed) for each day, in one query: three index range counts per day (the day's bounds
    are the account's midnights, computed here), never a time zone conversion per row."""
    ops = connection.ops
    days = scope.days
    bounds = [datetime.combine(day, time.min, scope.timezone) for day in days]
    bounds.append(scope.until)
    values = ", ".join(["(%s, %s, %s)"] * len(days))
    params: list = []
    for i in range(len(days)):
        params += [i, ops.adapt_datetimefield_value(bounds[i]), ops.adapt_datetimefield_value(bounds[i + 1])]
    sites = ", ".join(["%s"] * len(scope.site_ids)) or "NULL"
    me = scope.advisor.pk if scope.advisor is not None else None
    mine = "AND e.advisor_id = %s" if me is not None else ""
    if me is None:
        started_from, started_params, mine_cte = f"conversations_conversation c WHERE c.site_id IN ({sites}) AND", \
            list(scope.site_ids), ""
    else:
        # An advisor's own: the conversations started in the range that they handled, found from their episodes
        # (a few), not by probing every conversation of the range for one.
        materialized = "MATERIALIZED" if _postgresql() else ""
        mine_cte = f""", mine AS {materialized} (
            SELECT DISTINCT c.id, c.created_at FROM reports_episode m
            JOIN conversations_conversation c ON c.id = m.conversation_id
            WHERE m.advisor_id = %s AND c.site_id IN ({sites}) AND c.created_at >= %s AND c.created_at < %s)"""
        params += [me, *scope.site_ids, ops.adapt_datetimefield_value(bounds[0]),
                   ops.adapt_datetimefield_value(bounds[-1])]
        started_from, started_params = "mine c WHERE", []
    sql = f"""
        WITH b (i, lo, hi) AS (VALUES {values}) {mine_cte}
        SELECT b.i,
          (SELECT COUNT(*) FROM {started_from} c.created_at >= b.lo AND c.created_at < b.hi),
          (SELECT COUNT(*) FROM reports_episode e WHERE e.site_id IN ({sites})
             AND e.escalated_at >= b.lo AND e.escalated_at < b.hi {mine}),
          (SELECT COUNT(*) FROM reports_episode e WHERE e.site_id IN ({sites})
             AND e.closed_at >= b.lo AND e.closed_at < b.hi {mine})
        FROM b ORDER BY b.i"""
    mine_params = [me] if me is not None else []
    params += [*started_params, *scope.site_ids, *mine_params, *scope.site_ids, *mine_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(started, escalated, closed) for _, started, escalated, closed in cursor.fetchall()]


def report(scope: Scope) -> dict:
    """The report's JSON (CONTRACT section 7). A fixed number of queries whatever the range."""
    since, until, me = scope.since, scope.until, scope.advisor
    episodes = Episode.objects.filter(site_id__in=scope.site_ids)
    mine = Q(advisor_id=me.pk) if me is not None else Q()
    in_range = {"escalated_at__gte": since, "escalated_at__lt": until}
    closed_range = {"closed_at__gte": since, "closed_at__lt": until}

    by_day = _by_day(scope)
    replier = Q(first_reply_by_id=me.pk) if me is not None else Q()
    escalated = _durations(episodes.filter((mine | replier) if me is not None else Q(), **in_range), {
        "waiting": ("waiting_s", mine),
        "first_response": ("first_response_s", replier),
    })
    resolution = _durations(episodes.filter(mine, **closed_range), {"resolution": ("resolution_s", Q())})

    ratings = Rating.objects.filter(site_id__in=scope.site_ids, created_at__gte=since, created_at__lt=until)
    if me is not None:
        ratings = ratings.filter(advisor=me)
    csat = ratings.aggregate(count=Count("pk"), average=Avg("score"),
                             **{str(n): Count("pk", filter=Q(score=n)) for n in range(1, 6)})

    return {
        "conversations": {"started": sum(d[0] for d in by_day), "escalated": sum(d[1] for d in by_day),
                          "closed": sum(d[2] for d in by_day)},
        "first_response_s": _pair(escalated["first_response"]),
        "waiting_s": _pair(escalated["waiting"]),
        "resolution_s": _pair(resolution["resolution"]),
        "csat": {"count": csat["count"],
                 "average": round(csat["average"], 2) if csat["average"] is not None else None,
                 "distribution": {str(n): csat[str(n)] for n in range(1, 6)}},
        "by_day": [{"date": day.isoformat(), "started": started, "escalated": escalated_n, "closed": closed}
                   for day, (started, escalated_n, closed) in zip(scope.days, by_day)],
        "by_advisor": _by_advisor(scope, episodes, ratings, in_range, closed_range),
    }


def _by_advisor(scope: Scope, episodes: QuerySet, ratings: QuerySet, in_range: dict, closed_range: dict) -> list:
    me = scope.advisor
    advisors = Advisor.objects.select_related("user").filter(account_id=scope.account_id, user__is_active=True)
    if me is not None:
        advisors = advisors.filter(pk=me.pk)
    advisors = list(advisors.order_by("user__username"))
    closed = dict(episodes.filter(advisor__isnull=False, **closed_range).order_by().values("advisor")
                  .annotate(n=Count("pk")).values_list("advisor", "n"))
    averages = dict(ratings.filter(advisor__isnull=False).order_by().values("advisor")
                    .annotate(a=Avg("score")).values_list("advisor", "a"))
    answered = episodes.filter(first_reply_by__isnull=False, **in_range)
    if me is not None:
        answered = answered.filter(first_reply_by=me)
    if _postgresql():
        first = dict(answered.order_by().values("first_reply_by").annotate(p=_Percentiles("first_response_s"))
                     .values_list("first_reply_by", "p"))
    else:
        values: dict[int, list[float]] = {}
        for who, seconds in answered.values_list("first_reply_by", "first_response_s"):
            values.setdefault(who, []).append(seconds)
        first = {who: _quantiles(seconds) for who, seconds in values.items()}
    return [{"username": a.username, "name": a.display_name, "closed": closed.get(a.pk, 0),
             "first_response_s_p50": _pair(first.get(a.pk))["p50"],
             "csat_average": round(averages[a.pk], 2) if averages.get(a.pk) is not None else None}
            for a in advisors]
