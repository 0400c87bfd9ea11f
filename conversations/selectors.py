"""Reads for the inbox and the widget. `access_conversation` is the one access check that the REST API, the inbox
socket and the media of notes use: a conversation the advisor may not see does not exist (404)."""
import base64
import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db import connection
from django.db.models import Aggregate, F, Func, OuterRef, Q, QuerySet, Subquery, TextField, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from rest_framework.authtoken.models import Token

from advisors.models import Advisor, Site
from chatbots.models import Chatbot
from conversations.errors import Forbidden, NotFound, Refused, refuse_nul
from conversations.models import Conversation, ConversationTally, Message, ReadState, Visitor
from livechat.compiled import (
    ID_PLACEHOLDER,
    TEXT_PLACEHOLDER,
    CompiledLookup,
    CompiledRows,
    PlaceholderNotFound,
    prepared_cursor,
)

Status = Conversation.Status
BOXES = ("live", "closed", "chatbot")
FILTERS = ("all", "unassigned", "unread", "mine")
COUNTS = ("live", "closed", "chatbot", "unassigned", "unread", "mine", "to_process")
MAX_PAGE = 100
TOKEN_TTL = timedelta(days=180)  # a visitor token unused for this long names nobody any more


class _JsonArray(Func):
    function = "JSON_ARRAY"
    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="JSON_BUILD_ARRAY", **extra_context)


class ContractTime(Func):
    """A timestamp column as the contract writes it (presenters._utc: UTC, milliseconds truncated, Z), written by
    the database. Loading five timestamps a row into datetimes and formatting them again was a third of a
    100-row list page's time in Python; PostgreSQL's to_char costs a fraction of it."""

    arity = 1
    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        # MS truncates, as _utc does.
        template = """to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
        return self._column_sql(compiler, connection, template, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores a datetime in SQLite as str() of its naive UTC value: "YYYY-MM-DD HH:MM:SS", then
        # ".ffffff" unless the microseconds are 0. (strftime's %f would round the milliseconds.)
        template = ("substr(%(expressions)s, 1, 10) || 'T' || substr(%(expressions)s, 12, 8) || '.' || "
                    "substr(substr(%(expressions)s, 21) || '000', 1, 3) || 'Z'")
        return self._column_sql(compiler, connection, template, **extra_context)

    def _column_sql(self, compiler, connection, template: str, **extra_context):
        sql, params = super().as_sql(compiler, connection, template=template, **extra_context)
        if params:  # the column is named more than once: its parameters would not follow
            raise TypeError("ContractTime takes a column")
        return sql, params


class _JsonArrayAgg(Aggregate):
    """The values of a group as one JSON array: json_group_array on SQLite, json_agg on PostgreSQL."""

    function = "JSON_GROUP_ARRAY"
    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="JSON_AGG", **extra_context)


def _partial(model, **values):
    """An instance with only these fields loaded; the others load on access, like deferred fields."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(None, names, [values[name] for name in names])


def _sites_subquery(advisor_ref: OuterRef) -> Subquery:
    """The advisor's sites with what the inbox shows of them (key, name, colour, the chatbot's pseudonym template),
    as a JSON array loaded in the same query as the advisor: the list then needs no join to sites and chatbots."""
    memberships = (Advisor.sites.through.objects.filter(advisor_id=advisor_ref).values("advisor_id")
                   .annotate(sites=_JsonArrayAgg(_JsonArray("site_id", "site__key", "site__name", "site__chatbot_id",
                                                            "site__chatbot__pseudonym_template", "site__color")))
                   .values("sites"))
    return Subquery(memberships, output_field=TextField())


def _attach_sites(advisor: Advisor, sites_json: str | list | None) -> Advisor:
    """Sets `site_by_id` (Site instances with their chatbot; fields not loaded here load on access, as deferred
    fields do), `site_id_by_key` and `site_ids` on the advisor."""
    rows = (json.loads(sites_json) if isinstance(sites_json, str) else sites_json) or []
    advisor.site_by_id = {}
    for site_id, key, name, chatbot_id, template, color in rows:
        site = _partial(Site, id=site_id, key=key, name=name, chatbot_id=chatbot_id, color=color)
        site.chatbot = _partial(Chatbot, id=chatbot_id, pseudonym_template=template) if chatbot_id else None
        advisor.site_by_id[site_id] = site
    advisor.site_id_by_key = {site.key: site.pk for site in advisor.site_by_id.values()}
    advisor.site_ids = sorted(advisor.site_by_id)
    return advisor


@functools.cache
def _tokens_with_advisor() -> QuerySet:
    # Built once: assembling the subquery costs about as much as running the query.
    return Token.objects.select_related("user__advisor").annotate(
        advisor_sites=_sites_subquery(OuterRef("user__advisor__id")))


# Compiled once (livechat.compiled): every inbox request and socket signs in with it.
_TOKEN_WITH_ADVISOR = CompiledLookup(lambda key: _tokens_with_advisor().filter(key=key).order_by()[:2],
                                     TEXT_PLACEHOLDER)


def advisor_for_token(key: str) -> Token | None:
    """The API token with its user, the user's advisor and the advisor's sites, in one query; `token.user.advisor`
    is None for a user who is not an advisor (the inbox API then answers 403 without asking again)."""
    return _with_advisor_sites(_TOKEN_WITH_ADVISOR.get(key))


async def advisor_for_token_on_loop(loop_connection, key: str) -> Token | None:
    """`advisor_for_token` on one of the event loop's own connections (livechat.loop_io): the same compiled query.
    Raises livechat.compiled.NotCompiled until a thread has run it once."""
    return _with_advisor_sites(await _TOKEN_WITH_ADVISOR.get_on_loop(loop_connection, key))


def _with_advisor_sites(token: Token | None) -> Token | None:
    if token is not None:
        advisor = _cached_advisor(token.user)
        if advisor is not None:
            _attach_sites(advisor, token.advisor_sites)
    return token


def _cached_advisor(user) -> Advisor | None:
    """The advisor a select_related already loaded on the user (None if none exists); raises LookupError if the
    relation was not loaded."""
    relation = Advisor.user.field.remote_field  # user.advisor (`user` may be a lazy object: not type(user))
    if not relation.is_cached(user):
        raise LookupError("advisor not loaded")
    return relation.get_cached_value(user)


def advisor_for_user(user) -> Advisor | None:
    """The advisor behind a user, with the ids of the sites in scope (`site_ids`, `site_id_by_key`): free when the
    token authentication loaded them, else one query."""
    if user is None or not user.is_authenticated:
        return None
    try:
        advisor = _cached_advisor(user)
        if advisor is None or hasattr(advisor, "site_ids"):
            return advisor
    except LookupError:
        pass
    advisor = Advisor.objects.filter(user=user).annotate(sites_in_scope=_sites_subquery(OuterRef("pk"))).first()
    if advisor is None:
        return None
    # Only the advisor's side: caching the advisor on the user would hand a socket, whose user lives as long as
    # it does, this advisor's sites and license again when it checks them later.
    Advisor.user.field.set_cached_value(advisor, user)
    return _attach_sites(advisor, advisor.sites_in_scope)


def _site_ids_in_scope(advisor: Advisor, site_key: str | None) -> list[int]:
    """The advisor's sites, or the one named by `site_key` if it is one of them (else none)."""
    if not site_key:
        return advisor.site_ids
    site_id = advisor.site_id_by_key.get(site_key)
    return [site_id] if site_id is not None else []


def _list_related(queryset: QuerySet, advisor: Advisor) -> QuerySet:
    """What conversation_dict reads, and no more: an advisor with a license is shown the last item, one without
    the last public item, so only that one (with its author) is joined. Each relation joined costs planning time
    (PostgreSQL weighs join orders on every request): sites come with the advisor (_with_sites), the read
    position is a subquery."""
    last = "last_message" if advisor.licensed else "last_public_message"
    related = ["visitor", "assigned__user", f"{last}__advisor__user"]
    if not hasattr(advisor, "site_by_id"):
        related.append("site__chatbot")
    return queryset.select_related(*related)


def _with_sites(conversations: list[Conversation], advisor: Advisor) -> list[Conversation]:
    """Gives each conversation its site (with the chatbot) from the ones loaded with the advisor."""
    site_by_id = getattr(advisor, "site_by_id", None)
    if site_by_id is not None:
        for conversation in conversations:
            conversation.site = site_by_id[conversation.site_id]
    return conversations


def _with_read_seq(queryset: QuerySet, advisor: Advisor) -> QuerySet:
    """`read_seq`: how far this advisor has read each conversation (0 if never opened); `read_change`: that read
    state's change number (CONV's `change` is the greater of it and the conversation's)."""
    state = ReadState.objects.filter(advisor=advisor, conversation=OuterRef("pk"))
    return queryset.annotate(read_seq=Coalesce(Subquery(state.values("seq")[:1]), Value(0)),
                             read_change=Coalesce(Subquery(state.values("change")[:1]), Value(0)))


def _unread_q(advisor: Advisor) -> Q:
    last = "last_seq" if advisor.licensed else "last_public_seq"
    # Conversation.unread_after's rule: what the bot is answering is nobody's to read.
    return Q(**{f"{last}__gt": F("read_seq")}) & ~Q(status=Conversation.Status.BOT)


def statuses_hidden_from(*, sees_chatbot: bool) -> tuple[str, ...]:
    """The chatbot-lead rule: discussions the bot leads (status `bot`) exist only for advisors who see them."""
    return () if sees_chatbot else (Status.BOT,)


def advisor_sees_notes(advisor: Advisor) -> bool:
    """The license rule: notes (their text, their images, their client_id) are for licensed advisors only."""
    return advisor.licensed


def _visible_to(advisor: Advisor) -> Q:
    """Every rule of which conversations an advisor may touch, as one filter: the advisor's sites, and the
    chatbot-lead setting. What the license hides is per item (advisor_sees_notes), not per conversation."""
    visible = Q(site_id__in=advisor.site_ids)
    if hidden := statuses_hidden_from(sees_chatbot=advisor.sees_chatbot):
        visible &= ~Q(status__in=hidden)
    return visible


def _conversation_pk(conversation_id) -> int:
    try:
        pk = int(conversation_id)
    except (TypeError, ValueError, OverflowError):
        raise NotFound(_("No such conversation.")) from None
    if not 0 < pk < 2**63:  # past a bigint, PostgreSQL would refuse the query itself (a 503, not a 404)
        raise NotFound(_("No such conversation."))
    return pk


FOR_WRITE_FIELDS = ("pk", "site_id", "status", "assigned_id", "waiting_since", "first_reply_at", "escalated_at")


def access_conversation(*, advisor: Advisor, conversation_id, for_write: bool = False) -> Conversation:
    """The one access check (Zulip's access_*): the conversation if this advisor may see it, else NotFound, the
    same answer as for one that does not exist, so scope never leaks. Every inbox view, the inbox socket and the
    media of notes come through here.

    By default with what the inbox shows (read position, visitor, last item, sites); `for_write=True` loads the
    bare row in one cheap query, for writes that lock and load it themselves (with what tells a reply whether the
    one statement may apply: conversations.live_message.reply_may_apply)."""
    lookup, pk = _access_of(advisor, conversation_id, for_write=for_write)
    conversation = lookup.get(pk)
    if conversation is None:
        raise NotFound(_("No such conversation."))
    return conversation if for_write else _with_sites([conversation], advisor)[0]


async def access_conversation_for_write_on_loop(loop_connection, *, advisor: Advisor,
                                               conversation_id) -> Conversation | None:
    """access_conversation(for_write=True) on one of the event loop's own connections (livechat.loop_io): the same
    compiled query, so the same rule. None where access_conversation raises NotFound. Raises
    livechat.compiled.NotCompiled until a thread has run that query once."""
    try:
        lookup, pk = _access_of(advisor, conversation_id, for_write=True)
    except NotFound:
        return None
    return await lookup.get_on_loop(loop_connection, pk)


def _access_of(advisor: Advisor, conversation_id, *, for_write: bool) -> tuple[CompiledLookup, int]:
    """access_conversation's query and the primary key it is run with; NotFound when no query is needed to say so."""
    pk = _conversation_pk(conversation_id)
    if not advisor.site_ids:  # no site, no conversation (and no query: `IN ()` is not SQL)
        raise NotFound(_("No such conversation."))
    if for_write:  # the same query for every advisor of these sites and this setting
        return _access_lookup(tuple(advisor.site_ids), advisor.sees_chatbot, for_write=True), pk
    return _access_lookup(tuple(advisor.site_ids), advisor.sees_chatbot, for_write=False, advisor_id=advisor.pk,
                          licensed=advisor.licensed, sites_loaded=hasattr(advisor, "site_by_id")), pk


@functools.lru_cache(maxsize=1024)
def _access_lookup(site_ids: tuple[int, ...], sees_chatbot: bool, *, for_write: bool, advisor_id: int | None = None,
                   licensed: bool = False, sites_loaded: bool = False) -> CompiledLookup:
    """access_conversation's query, compiled once (livechat.compiled) by everything its SQL depends on: the
    advisor's sites and chatbot-lead setting (_visible_to, read now from the advisor it is given, so a site taken
    away ends access at the next call), and for the inbox's view the advisor, the license and whether the sites
    came with the advisor. Built by the ORM, it cost 0.9 ms of CPU per reply before the reply's own statement."""
    scope = Advisor(pk=advisor_id, licensed=licensed, sees_chatbot=sees_chatbot)
    scope.site_ids = list(site_ids)
    if sites_loaded:
        scope.site_by_id = {}
    visible = Conversation.objects.filter(_visible_to(scope))
    if for_write:
        visible = visible.only(*FOR_WRITE_FIELDS)
    else:
        visible = _with_read_seq(_list_related(visible, scope), scope)
    return CompiledLookup(lambda pk: visible.filter(pk=pk).order_by()[:2], ID_PLACEHOLDER)


# Everything conversation_dict reads, for any advisor, for a write that loads the row it presents under its lock.
PRESENTED_RELATED = ("site__chatbot", "visitor", "assigned__user", "last_message__advisor__user",
                     "last_public_message__advisor__user")


def conversation_for_advisor(*, advisor: Advisor, conversation_id) -> Conversation:
    """The conversation with its read position for this advisor (access_conversation)."""
    return access_conversation(advisor=advisor, conversation_id=conversation_id)


def conversation_id_for_advisor(*, advisor: Advisor, conversation_id) -> int:
    """The same access check, for writes that load the row themselves: one cheap query."""
    return access_conversation(advisor=advisor, conversation_id=conversation_id, for_write=True).pk


def _box_filter(box: str) -> dict:
    return {"status": Status.BOT if box == "chatbot" else box}


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
            raise Refused(_("The cursor is not valid."),
                          fields={"cursor": [_("Not a cursor this API gave.")]}) from None


def conversation_list(*, advisor: Advisor, box: str = "live", filter: str = "all", assigned_to: str | None = None,
                      site_key: str | None = None, cursor: str | None = None, label: str | None = None,
                      limit: int = 25) -> tuple[list[dict], str | None]:
    """One page, newest activity first, by keyset on (updated_at, id): two queries whatever the page (the rows,
    the advisors they name). Rows as conversation_rows gives them (presenters.conversation_row_dict makes each a
    CONV)."""
    if box not in BOXES:
        raise Refused(_("box must be one of %(boxes)s.") % {"boxes": ", ".join(BOXES)},
                      fields={"box": [_("Unknown box.")]})
    if filter not in FILTERS:
        raise Refused(_("filter must be one of %(filters)s.") % {"filters": ", ".join(FILTERS)},
                      fields={"filter": [_("Unknown filter.")]})
    if box == "chatbot" and Status.BOT in statuses_hidden_from(sees_chatbot=advisor.sees_chatbot):
        raise Forbidden(_("You do not see the discussions where the chatbot has the lead."))
    site_ids = _site_ids_in_scope(advisor, site_key)
    if not site_ids:
        return [], None
    if assigned_to:
        refuse_nul(assigned_to, "advisor")
    if label:
        refuse_nul(label, "label")
    shape = (advisor.pk, advisor.licensed, advisor.sees_chatbot, advisor.account_id, tuple(site_ids), box, filter,
             assigned_to, label, limit)
    after = Cursor.decode(cursor) if cursor else None
    if after is None:  # a first page: the same few shapes over and over (every list refresh), compiled once
        page = _rows_as_dicts(_first_page(*shape).rows())
    elif (next_page := _next_page(*shape)) is not None:  # scrolling down: the same shapes, past a cursor
        updated_at = Conversation._meta.get_field("updated_at").get_db_prep_value(after.updated_at, connection)
        page = _rows_as_dicts(next_page.rows(updated_at, after.id))
    else:
        page = _rows_as_dicts(_shaped_page(*shape, after=after))
    next_cursor = (Cursor(page[limit - 1]["updated_at"], page[limit - 1]["id"]).encode() if len(page) > limit
                   else None)
    return page[:limit], next_cursor


NEWEST_FIRST = ("-updated_at", "-id")


def _shaped_page(advisor_id: int, licensed: bool, sees_chatbot: bool, account_id: int, site_ids: tuple[int, ...],
                 box: str, filter: str, assigned_to: str | None, label: str | None, limit: int,
                 after: "Cursor | None" = None) -> QuerySet:
    """A page's query (one row more than the page, for the next cursor) by everything its SQL depends on: the
    advisor's rows, scope and audience, the box, filters and size."""
    advisor = Advisor(pk=advisor_id, licensed=licensed, sees_chatbot=sees_chatbot, account_id=account_id)
    query = _page_query(advisor, list(site_ids), box=box, filter=filter, assigned_to=assigned_to, label=label,
                        limit=limit, after=after)
    return query.order_by(*NEWEST_FIRST)[:limit + 1]


@functools.lru_cache(maxsize=512)
def _first_page(*shape) -> CompiledRows:
    """A first page's query (_shaped_page), compiled: nothing in it depends on the time or on rows read while
    building it."""
    return CompiledRows(_shaped_page(*shape), binary=True)


# The cursor a next page is compiled with, which each request's replaces (CompiledRows' placeholders): values no
# other parameter of the page's query takes.
_CURSOR_PLACEHOLDER = (datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=dt_timezone.utc), 2**31 - 3)


@functools.lru_cache(maxsize=512)
def _next_page(*shape) -> CompiledRows | None:
    """A page's query past a cursor (_shaped_page), compiled, the cursor's values replaced on each call; None where
    the backend does not pass them to the database as they are (SQLite writes datetimes as text): the ORM builds
    those pages."""
    try:
        return CompiledRows(_shaped_page(*shape, after=Cursor(*_CURSOR_PLACEHOLDER)), placeholders=_CURSOR_PLACEHOLDER,
                            binary=True)
    except PlaceholderNotFound:
        return None


def _page_query(advisor: Advisor, site_ids: list[int], *, box: str, filter: str, assigned_to: str | None,
                label: str | None, limit: int, after: "Cursor | None" = None) -> QuerySet:
    """The conversations of one list (rows_for's columns), unordered and unsliced; `after`: past a cursor."""
    where = [Q(**_box_filter(box))]
    if filter == "unassigned":
        where.append(Q(assigned__isnull=True))
    elif filter == "mine":
        where.append(Q(assigned=advisor))
    elif filter == "unread":
        where.append(_unread_q(advisor))
    if assigned_to:
        # The advisor's id as a value (a subquery run once), so the (site, assigned, status, updated_at) index
        # gives the page in order; a join on the username would not.
        where.append(Q(assigned=Subquery(Advisor.objects.filter(user__username=assigned_to).values("pk")[:1])))
    if label:
        from productivity.selectors import labelled  # the label filter: one subquery, inside this same query

        where.append(Q(pk__in=labelled(account_id=advisor.account_id, name=label)))
    if after is not None:
        # `updated_at <= x` bounds the index scan (the OR alone is a filter: a deep page would walk every row
        # before it); the OR then breaks ties on id.
        where += [Q(updated_at__lte=after.updated_at), Q(updated_at__lt=after.updated_at) | Q(id__lt=after.id)]

    def matching(queryset: QuerySet) -> QuerySet:
        for condition in where:
            queryset = queryset.filter(condition)
        return queryset

    if len(site_ids) > 1 and connection.features.supports_slicing_ordering_in_compound:
        # The indexes are per site: one ordered walk cannot merge several sites, and the database would sort
        # every row of the box in those sites. So each site gives its newest page (an index walk that stops),
        # and the page is the newest of those few rows. (SQLite cannot limit the parts of a UNION; it sorts.)
        per_site = [matching(_with_read_seq(Conversation.objects, advisor)).filter(site_id=site_id)
                    .order_by(*NEWEST_FIRST).values("pk")[: limit + 1] for site_id in site_ids]
        in_scope = Q(pk__in=per_site[0].union(*per_site[1:], all=True))
    else:
        in_scope = Q(site_id__in=site_ids)
    return matching(rows_for(advisor)).filter(in_scope)


def conversations_visible_to(*, advisor: Advisor, site_key: str | None = None) -> QuerySet:
    """Every conversation this advisor may see (the access rule, _visible_to), or those of one of their sites."""
    visible = Conversation.objects.filter(_visible_to(advisor))
    if site_key:
        visible = visible.filter(site_id__in=_site_ids_in_scope(advisor, site_key))
    return visible


def presentable(where: Q, *, advisor: Advisor, order_by: tuple[str, ...], limit: int) -> list[dict]:
    """The conversations `where` names that this advisor may see, loaded as the list loads them for CONV
    (conversation_rows), in one query."""
    return conversation_rows(rows_for(advisor).filter(where, _visible_to(advisor)), order_by=order_by, limit=limit)


def _person(advisor_ref: str) -> Subquery:
    """An advisor as MSG shows them (username, display name, avatar), as one JSON array: a subquery per row (a
    search's few hits) rather than two joins, which PostgreSQL plans in a fraction of the time."""
    people = Advisor.objects.filter(pk=OuterRef(advisor_ref)).values(
        person=_JsonArray("user__username", "display_name", "avatar"))
    return Subquery(people[:1], output_field=TextField())


def _people(advisor_ids: set[int | None]) -> dict[int, tuple[str, str, str]]:
    """The advisors a page of rows names, as CONV and MSG show them (username, display name, avatar), in one
    query. Per row, the two subqueries of _person were a third of a 100-row page's time in PostgreSQL (2.2 of
    6.2 ms), the same few advisors looked up again on every row. Written as SQL: the ORM took 1 ms to build
    this query, more than the database takes to run it."""
    named = sorted(pk for pk in advisor_ids if pk is not None)
    if not named:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_PEOPLE_SQL.format(ids=", ".join(["%s"] * len(named))), named)
        return {pk: (username, name, avatar) for pk, username, name, avatar in cursor.fetchall()}


_User = Advisor.user.field.related_model
_PEOPLE_SQL = (f"SELECT a.id, u.{_User._meta.get_field(_User.USERNAME_FIELD).column}, a.display_name, a.avatar "
               f"FROM {Advisor._meta.db_table} a JOIN {_User._meta.db_table} u "
               "ON u.id = a.user_id WHERE a.id IN ({ids})")


_MESSAGE_FIELDS = ("id", "conversation_id", "seq", "kind", "sender", "text", "image", "image_url", "image_width",
                   "image_height", "buttons", "input", "client_id", "created_at")
_ROW_FIELDS = ("id", "site_id", "status", "visitor_id", "last_seq", "last_public_seq", "last_visitor_seq",
               "last_advisor_seq", "waiting_since", "awaiting_email", "closed_at", "created_at", "updated_at", "rating",
               "change", "labels", "read_seq", "read_change")
_VISITOR_FIELDS = ("variables", "online_sockets", "sessions", "page", "first_seen_at")
# The timestamps the rows carry as the contract writes them (ContractTime). Not updated_at: a page's cursor keeps
# its microseconds.
_WRITTEN_BY_THE_DATABASE = {"waiting_since", "closed_at", "created_at", "first_seen_at"}


def _column(path: str, name: str):
    return ContractTime(path) if name in _WRITTEN_BY_THE_DATABASE else path


def _json_value(value):
    return json.loads(value) if isinstance(value, str) else value


@functools.lru_cache(maxsize=1024)
def _rows_of(advisor_id: int, licensed: bool) -> QuerySet:
    """The conversations with what CONV shows of them for this advisor, selected as conversation_rows reads them
    (never evaluated itself: each request filters a copy). Built once per advisor and license: assembling the
    annotations and the joined columns costs more than the database takes to run the page."""
    last = "last_message" if licensed else "last_public_message"
    columns = [*(_column(name, name) for name in _ROW_FIELDS),
               *(_column(f"visitor__{name}", name) for name in _VISITOR_FIELDS),
               *(_column(f"{last}__{name}", name) for name in _MESSAGE_FIELDS), "assigned_id", f"{last}__advisor_id"]
    state = ReadState.objects.filter(advisor_id=advisor_id, conversation=OuterRef("pk"))
    return (Conversation.objects
            .annotate(read_seq=Coalesce(Subquery(state.values("seq")[:1]), Value(0)),
                      read_change=Coalesce(Subquery(state.values("change")[:1]), Value(0)))
            .values_list(*columns))


def rows_for(advisor: Advisor) -> QuerySet:
    """Every conversation as conversation_rows reads them for this advisor, with `read_seq` (_with_read_seq) to
    filter on; the caller narrows it to what the advisor may see."""
    return _rows_of(advisor.pk, advisor.licensed)


def conversation_rows(queryset: QuerySet, *, order_by: tuple[str, ...], limit: int) -> list[dict]:
    """What CONV shows of these conversations (`queryset`: rows_for(advisor), filtered) as plain rows, no model
    instances, in two queries: the conversation's fields, its visitor's, the last item this advisor may see
    (`last`: MSG's values with its `author`, or None), the read position (`read_seq`, `read_change`); then the
    advisors they name (`assigned`, the author: _people). Timestamps come as the contract writes them, but
    `updated_at`. Sites come with the advisor (sites_of)."""
    return _rows_as_dicts(queryset.order_by(*order_by)[:limit])


def _rows_as_dicts(rows_of_values) -> list[dict]:
    """conversation_rows' dicts from the rows of rows_for's values_list."""
    n_row, n_visitor = len(_ROW_FIELDS), len(_VISITOR_FIELDS)
    n_message = len(_MESSAGE_FIELDS)
    rows_of_values = list(rows_of_values)
    people = _people({advisor_id for values in rows_of_values for advisor_id in values[-2:]})
    rows = []
    for values in rows_of_values:
        row = dict(zip(_ROW_FIELDS, values[:n_row], strict=True))
        row.update(zip(_VISITOR_FIELDS, values[n_row:n_row + n_visitor], strict=True))
        message = values[n_row + n_visitor:n_row + n_visitor + n_message]
        assigned_id, author_id = values[-2:]
        if message[0] is None:
            row["last"] = None
        else:
            row["last"] = dict(zip(_MESSAGE_FIELDS, message, strict=True))
            row["last"]["author"] = people.get(author_id)
        row["assigned"] = people.get(assigned_id)
        rows.append(row)
    return rows


def message_rows(queryset: QuerySet) -> list[dict]:
    """These items as plain rows (MSG's values and the `author`, as conversation_rows gives the last item): one
    query, no join (presenters.message_row_dict makes each a MSG)."""
    rows = []
    columns = [_column(name, name) for name in _MESSAGE_FIELDS]
    for values in queryset.annotate(author=_person("advisor_id")).values_list(*columns, "author"):
        row = dict(zip(_MESSAGE_FIELDS, values[:-1], strict=True))
        row["author"] = _json_value(values[-1])
        rows.append(row)
    return rows


def sites_of(advisor: Advisor, rows: list[dict]) -> dict[int, Site]:
    """The sites of these rows (with their chatbots): the ones loaded with the advisor, else one query."""
    site_by_id = getattr(advisor, "site_by_id", None)
    if site_by_id is None:
        site_by_id = Site.objects.select_related("chatbot").in_bulk({row["site_id"] for row in rows})
    return site_by_id


def conversation_counts(*, advisor: Advisor, site_key: str | None = None) -> dict[str, int]:
    """The box and filter counts and the badge over the advisor's sites (or `site_key`), in one query that reads
    no conversation beyond the advisor's own live ones:

    - live, closed, chatbot, unassigned: the per-site tallies the triggers keep (ConversationTally);
    - unread: live conversations with an item this advisor may see (a tally), less those whose read state is
      caught up (a partial index of this advisor's caught-up read states);
    - mine, and to_process = unassigned + mine and unread: this advisor's live conversations (partial index).
    """
    site_ids = _site_ids_in_scope(advisor, site_key)
    if not site_ids:
        return dict.fromkeys(COUNTS, 0)
    sites = ", ".join(["%s"] * len(site_ids))
    caught_up = "live_caught_up" if advisor.licensed else "live_caught_up_public"
    with_items = "live_with_items" if advisor.licensed else "live_with_public_items"
    last = "last_seq" if advisor.licensed else "last_public_seq"
    tally = ConversationTally._meta.db_table
    reads = ReadState._meta.db_table
    conversations = Conversation._meta.db_table
    buckets = ("live", "closed", "bot", "unassigned", with_items)
    sums = ", ".join(f"SUM(CASE WHEN bucket = '{b}' THEN count ELSE 0 END)" for b in buckets)
    sql = f"""
        SELECT t.*,
            (SELECT COUNT(*) FROM {reads} r WHERE r.advisor_id = %s AND r.site_id IN ({sites}) AND r.{caught_up}),
            (SELECT COUNT(*) FROM {conversations} c
             WHERE c.status = 'live' AND c.assigned_id = %s AND c.site_id IN ({sites})),
            (SELECT COUNT(*) FROM {conversations} c
             LEFT JOIN {reads} r ON r.conversation_id = c.id AND r.advisor_id = %s
             WHERE c.status = 'live' AND c.assigned_id = %s AND c.site_id IN ({sites})
               AND c.{last} > COALESCE(r.seq, 0))
        FROM (SELECT {sums} FROM {tally} WHERE site_id IN ({sites})) t"""
    params = [advisor.pk, *site_ids, advisor.pk, *site_ids, advisor.pk, advisor.pk, *site_ids, *site_ids]
    with prepared_cursor(connection) as cursor:  # every list asks: planned once per connection
        cursor.execute(sql, params)
        live, closed, bot, unassigned, live_with_items, caught_up_count, mine, mine_unread = (
            value or 0 for value in cursor.fetchone())
    return {
        "live": live,
        "closed": closed,
        "chatbot": bot if advisor.sees_chatbot else 0,
        "unassigned": unassigned,
        "unread": live_with_items - caught_up_count,
        "mine": mine,
        "to_process": unassigned + mine_unread,
    }


def _page(queryset: QuerySet, *, after: int | None, before: int | None, limit: int,
          query: bool = False) -> list[Message] | QuerySet:
    """A page of items in order, with their advisors; `query`: the QuerySet of a page `after`, not its items."""
    queryset = queryset.select_related("advisor__user")
    if before is not None:
        return list(reversed(queryset.filter(seq__lt=before).order_by("-seq")[:limit]))
    page = queryset.filter(seq__gt=after if query else after or 0).order_by("seq")[:limit]
    return page if query else list(page)


def messages_for_advisor(*, advisor: Advisor, conversation: Conversation, after: int | None = None,
                         before: int | None = None, limit: int = 50) -> list[Message]:
    queryset = Message.objects.filter(conversation=conversation)
    if not advisor_sees_notes(advisor):
        queryset = queryset.exclude(kind=Message.Kind.NOTE)
    return _page(queryset, after=after, before=before, limit=limit)


def messages_for_visitor(*, conversation_id: int, after: int = 0, limit: int = 100) -> list[Message]:
    """The items a visitor may see after `after`, in order: every widget socket's join and reconnect asks, by SQL
    compiled once per page size (livechat.compiled)."""
    return _visitor_page(limit).all(conversation_id, after or 0)


@functools.lru_cache(maxsize=8)
def _visitor_page(limit: int) -> CompiledLookup:
    return CompiledLookup(
        lambda conversation_id, after: _page(
            Message.objects.filter(conversation_id=conversation_id).exclude(kind=Message.Kind.NOTE), after=after,
            before=None, limit=limit, query=True),
        (ID_PLACEHOLDER, _AFTER_PLACEHOLDER))


# A position no conversation reaches, and not ID_PLACEHOLDER (the conversation's); within the column's range, or
# Django would leave the always-true condition out of the SQL.
_AFTER_PLACEHOLDER = 2 ** 31 - 2


def read_positions(*, advisor: Advisor) -> dict[int, int]:
    """How far this advisor has read each conversation it ever opened: what an inbox socket keeps in memory so
    that no event costs it a query (a conversation missing here is unread from its first item)."""
    return dict(ReadState.objects.filter(advisor=advisor).values_list("conversation_id", "seq"))


def changes_since(*, advisor: Advisor, since: int) -> tuple[list[int], int]:
    """The conversations in the advisor's scope that changed after `since` (status, assignment, an item, or this
    advisor's read state), by id, and the greatest change number among them (`since` if none): the position a
    client resumes from next. Two index range scans; the rows load by page (changed_page)."""
    in_scope = Conversation.objects.filter(site_id__in=advisor.site_ids)
    if not advisor.sees_chatbot:
        in_scope = in_scope.exclude(status=Status.BOT)
    changed = dict(in_scope.filter(change__gt=since).values_list("pk", "change"))
    reads = dict(ReadState.objects.filter(advisor=advisor, change__gt=since).values_list("conversation_id", "change"))
    if reads:
        reads_in_scope = set(in_scope.filter(pk__in=list(reads)).values_list("pk", flat=True))
        reads = {pk: change for pk, change in reads.items() if pk in reads_in_scope}
    upto = max([since, *changed.values(), *reads.values()])
    return sorted(changed.keys() | reads.keys()), upto


def latest_change(*, advisor: Advisor) -> int:
    """The greatest change number committed so far among conversations and this advisor's read states (two
    index lookups): a socket that joined its groups before asking has every later change coming to it."""
    conversation = Conversation.objects.order_by("-change").values_list("change", flat=True).first() or 0
    read = (ReadState.objects.filter(advisor=advisor).order_by("-change").values_list("change", flat=True).first()
            or 0)
    return max(conversation, read)


def changed_page(*, advisor: Advisor, ids: list[int]) -> list[Conversation]:
    """Those conversations as the list loads them (CONV with `last_message`), in one query."""
    queryset = _with_read_seq(_list_related(Conversation.objects, advisor), advisor).filter(
        pk__in=ids, site_id__in=advisor.site_ids).order_by("pk")
    return _with_sites(list(queryset), advisor)


def read_seq_for(*, advisor: Advisor, conversation_id: int) -> int:
    return ReadState.objects.filter(advisor=advisor, conversation_id=conversation_id).values_list(
        "seq", flat=True).first() or 0


def assignable_advisors(*, advisor: Advisor) -> QuerySet:
    """Advisors of the account who share at least one site with the asking advisor."""
    return (Advisor.objects.select_related("user").filter(account_id=advisor.account_id,
                                                            sites__in=advisor.site_ids)
            .distinct().order_by("display_name"))


# ------------------------------------------------------------------------------ visitors


def site_for_key(key: str | None) -> Site | None:
    """The site a widget names (with its chatbot), or None."""
    if not isinstance(key, str) or not key or "\x00" in key:
        return None
    return _SITE_BY_KEY.get(key)


# Compiled once (livechat.compiled): every widget request and socket asks for these.
_SITE_BY_KEY = CompiledLookup(lambda key: Site.objects.select_related("chatbot").filter(key=key).order_by()[:2],
                              TEXT_PLACEHOLDER)
_VISITOR_BY_TOKEN_HASH = CompiledLookup(
    lambda hashed: Visitor.objects.select_related("site", "conversation__assigned__user").filter(token_hash=hashed)
    .order_by()[:2], TEXT_PLACEHOLDER)


def site_allows_origin(site: Site, origin: str | None) -> bool:
    """The widget's Origin rule, REST and socket alike: a browser's Origin must be one the site allows; a request
    without one (not a browser) is not refused for that."""
    return origin is None or origin.rstrip("/") in site.allowed_origins


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def visitor_for_token(*, token: str | None, site: Site | None = None, site_key: str | None = None) -> Visitor | None:
    """The one rule for a visitor token, for REST (bearer), the widget socket and the session start alike: it names
    a visitor (of `site` / `site_key` when given) seen within TOKEN_TTL; anything else is None (401, 4401, or a new
    visitor at the session start). With the site and the conversation (and its advisor), in one query."""
    if not isinstance(token, str) or not token or "\x00" in token:  # PostgreSQL refuses NUL in text: never a token
        return None
    visitor = _VISITOR_BY_TOKEN_HASH.get(token_hash(token))  # the hash is unique: the rest is checked here
    if visitor is None or visitor.last_seen_at < timezone.now() - TOKEN_TTL:
        return None
    if (site is not None and visitor.site_id != site.pk) or (site_key is not None and visitor.site.key != site_key):
        return None
    return visitor
