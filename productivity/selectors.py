"""Reads for canned responses, labels, search and transcripts. Which conversations an advisor may see is
conversations.selectors' one rule (access_conversation, conversations_visible_to); the license rule is
advisor_sees_notes plus the presenters' (names and variables only for licensed advisors)."""
import contextlib
import functools
import json
import operator
import re
import time

from django.db import connection, transaction
from django.db.models import BooleanField, F, Func, OuterRef, Q, QuerySet, Subquery, TextField, Value
from django.db.models.functions import StrIndex
from django.utils.translation import gettext as _

from advisors.models import Advisor
from conversations import selectors as conversation_selectors
from conversations.errors import Refused
from conversations.models import Conversation, Message
from productivity.folding import fold
from productivity.models import CannedResponse, ConversationLabel, Label

VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def canned_list(*, advisor: Advisor, q: str | None = None) -> list[CannedResponse]:
    """The account's canned responses and the advisor's own; `q` matches shortcut or text (accents and case
    ignored), in Python: an account has tens of them, not thousands."""
    found = list(CannedResponse.objects.filter(Q(owner__isnull=True) | Q(owner=advisor), account_id=advisor.account_id)
                 .order_by("shortcut", "owner_id", "id"))
    if q:
        wanted = fold(q.strip().lstrip("/"))
        found = [c for c in found if wanted in c.shortcut or wanted in fold(c.text)]
    return found


def canned_for_advisor(*, advisor: Advisor, canned_id) -> CannedResponse:
    """One the advisor can see (the account's, or their own), else NotFound."""
    from conversations.errors import NotFound

    try:
        pk = int(canned_id)
    except (TypeError, ValueError):
        raise NotFound(_("No such canned response.")) from None
    found = CannedResponse.objects.filter(Q(owner__isnull=True) | Q(owner=advisor), account_id=advisor.account_id,
                                          pk=pk).first()
    if found is None:
        raise NotFound(_("No such canned response."))
    return found


def canned_fill(text: str, variables: dict) -> str:
    """`{{VARIABLE}}` replaced by the conversation's value; a missing one stays as written (the inbox fills the same
    way in the browser, where it highlights what is left)."""
    return VARIABLE.sub(lambda m: str(variables[m.group(1)]) if variables.get(m.group(1)) not in (None, "")
                        else m.group(0), text)


def label_list(*, account_id: int) -> list[Label]:
    return list(Label.objects.filter(account_id=account_id).order_by("name"))


# ------------------------------------------------------------------------------ search

SEARCH_PAGE = 50
_TSQUERY_WORD = re.compile(r"[^\W_]+")


def search_words(q: str | None) -> list[str]:
    """The folded words of a query (at most 8, each at most 64 characters): every one must match."""
    return list(dict.fromkeys(_TSQUERY_WORD.findall(fold(q or ""))))[:8]


class _MatchesWords(Func):
    """Whether an item's text has every query word, as the start of one of its words. PostgreSQL: the full-text
    index's own expression (migration productivity 0002); SQLite: livechat_words, a scan."""

    output_field = BooleanField()

    def __init__(self, *expressions, indexed: bool = True, **extra):
        super().__init__(*expressions, **extra)
        self.indexed = indexed

    def as_sql(self, compiler, connection, **extra_context):
        text, query = (compiler.compile(e) for e in self.source_expressions)
        return f"livechat_words({text[0]}, {query[0]})", [*text[1], *query[1]]

    def as_postgresql(self, compiler, connection, **extra_context):
        text, query = (compiler.compile(e) for e in self.source_expressions)
        # The item's stored search_vector (migration productivity 0002), under the alias its text has here.
        table = text[0].rsplit(".", 1)[0]
        tsquery = f"to_tsquery('simple'::regconfig, {query[0]})"
        if not self.indexed:
            # The same test as @@, which the index does not answer: a check of the rows the other words found.
            return f"ts_match_vq({table}.search_vector, {tsquery})", [*text[1], *query[1]]
        return f"{table}.search_vector @@ {tsquery}", [*text[1], *query[1]]


class _VisitorText(Func):
    """The folded values of a visitor's variables: the stored search_text column on PostgreSQL (migration
    productivity 0002, with its trigram index), livechat_visitor_text on SQLite."""

    function = "livechat_visitor_text"
    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        variables = compiler.compile(self.source_expressions[0])
        return f"{variables[0].rsplit('.', 1)[0]}.search_text", list(variables[1])


def _message_match(words: list[str], *, indexed: bool = True) -> _MatchesWords:
    if connection.vendor == "postgresql":
        query = " & ".join(f"{word[:64]}:*" for word in words)
    else:
        query = " ".join(words)
    return _MatchesWords(F("text"), Value(query, output_field=TextField()), indexed=indexed)


def _visitors_matching(words: list[str]) -> QuerySet:
    """Visitors whose variable values hold every word (substrings). On PostgreSQL a word of three characters or more
    is a `LIKE '%word%'` the trigram index answers; a shorter one has no trigram, and as a LIKE it would make the
    index return every visitor: it is a plain `strpos` filter on what the other words found."""
    visitors = conversation_selectors.Visitor.objects.alias(search_text=_VisitorText("variables"))
    postgresql = connection.vendor == "postgresql"
    for n, word in enumerate(words):
        if postgresql and len(word) < 3:
            visitors = visitors.alias(**{f"at{n}": StrIndex("search_text", Value(word))}).filter(**{f"at{n}__gt": 0})
        else:
            visitors = visitors.filter(search_text__contains=word)
    return visitors


class _AnyOf(Func):
    """`expression = ANY(array)`: one parameter for a list of ids, however long."""

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra_context):  # SQLite: the list as JSON
        column, values = (compiler.compile(e) for e in self.source_expressions)
        return f"{column[0]} IN (SELECT value FROM json_each({values[0]}))", [*column[1], *values[1]]

    def as_postgresql(self, compiler, connection, **extra_context):
        column, values = (compiler.compile(e) for e in self.source_expressions)
        return f"{column[0]} = ANY({values[0]}::bigint[])", [*column[1], *values[1]]


# Item hits listed at most: past it the words are common, and walking the newest conversations finds a page sooner
# than reading every hit from the index (at 1M items, a word in half of them costs the index ~300 ms).
LISTED_HITS = 20_000
# Visitors listed at most: past it the words are common in names, and the walk meets a match within a few rows.
LISTED_VISITORS = 2_000
_STATS_TTL_S = 600
_stats: dict = {"at": -_STATS_TTL_S, "freqs": {}, "floor": 0.0, "rows": 0.0}


def _any_of(field: str, ids: list[int]) -> "_AnyOf":
    ids = sorted(set(ids))
    value = Value(ids) if connection.vendor == "postgresql" else Value(json.dumps(ids))
    return _AnyOf(F(field), value)


def _lexeme_stats() -> dict:
    """The planner's statistics of the items' search_vector (its most common lexemes and their frequencies, and the
    number of items), read at most every ten minutes: which words are common, without asking the index."""
    now = time.monotonic()
    if now - _stats["at"] < _STATS_TTL_S:
        return _stats
    with connection.cursor() as cursor:
        cursor.execute("""SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples
                          FROM pg_class c LEFT JOIN pg_stats s
                            ON s.tablename = c.relname AND s.attname = 'search_vector'
                          WHERE c.relname = %s""", [Message._meta.db_table])
        row = cursor.fetchone()
    elems, freqs, rows = row if row else (None, None, 0)
    found = dict(zip(elems or [], freqs or [], strict=False))
    # A word missing from the list is rarer than its least common entry: PostgreSQL's own guess for one
    # (tsquery_opr_selec) is the lesser of half that frequency and 0.5%.
    floor = min(0.005, min(found.values()) / 2) if found else 0.005
    _stats.update(at=now, freqs=found, floor=floor, rows=max(0.0, rows or 0.0))
    return _stats


def _estimated_item_hits(words: list[str]) -> dict[str, float]:
    """How many items match each word (a prefix), from the statistics; every word's: at most the least of them."""
    stats = _lexeme_stats()
    counts = {}
    for word in words:
        share = sum(freq for lexeme, freq in stats["freqs"].items() if lexeme.startswith(word))
        counts[word] = stats["rows"] * (share or stats["floor"])
    return counts


def _listed_hits(advisor: Advisor, words: list[str]) -> tuple[list[int] | None, list[int] | None]:
    """On PostgreSQL, in one statement, what the indexes say matches, each list read with a LIMIT so that a common
    word costs no more than that:

    - the conversations with a matching item (the full-text index), when the statistics call the words rare;
    - the visitors of the advisor's sites whose variables match (the trigram index), for licensed advisors.

    None for a side to walk instead: common words, past LISTED_HITS or LISTED_VISITORS, or SQLite. An unlicensed
    advisor's visitor side is empty (names and variables are not theirs to search)."""
    visitors_wanted = advisor.licensed and bool(advisor.site_ids)
    if connection.vendor != "postgresql":
        return None, (None if visitors_wanted else [])
    parts = []
    counts = _estimated_item_hits(words)
    items_wanted = min(counts.values()) <= LISTED_HITS
    if items_wanted:
        # The index reads the rare words' hits only; the common words (each past LISTED_HITS) check those rows:
        # asked of the index, a word in half the items costs ~10 ms at 1M items, whatever the other words.
        rare = [word for word in words if counts[word] <= LISTED_HITS]
        common = [word for word in words if counts[word] > LISTED_HITS]
        hits = _items(advisor).filter(_message_match(rare))
        if common:
            hits = hits.filter(_message_match(common, indexed=False))
        # In the index's order: the items' default ordering would sort every hit before the LIMIT.
        parts.append(hits.order_by().values_list("conversation_id", flat=True)[: LISTED_HITS + 1])
    if visitors_wanted:
        parts.append(_visitors_matching(words).filter(site_id__in=advisor.site_ids).values_list("pk", flat=True)
                     [: LISTED_VISITORS + 1])
    if not parts:
        return None, []
    arrays, params = [], []
    for part in parts:
        sql, part_params = part.query.sql_with_params()
        arrays.append(f"ARRAY({sql})")
        params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(arrays)}", params)
        row = list(cursor.fetchone())
    items = visitors = None
    if items_wanted:
        hits = row.pop(0)
        items = None if len(hits) > LISTED_HITS else sorted(set(hits))
    if visitors_wanted:
        named = row.pop(0)
        visitors = None if len(named) > LISTED_VISITORS else sorted(named)
    return items, (visitors if visitors_wanted else [])


@contextlib.contextmanager
def _serial():
    """On PostgreSQL, the search's statements in one transaction without parallel workers: starting them costs
    ~20-30 ms, more than reading a rare word's hits, and a parallel walk over the newest conversations does not
    stop at its LIMIT (each worker reads on)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        yield


def _items(advisor: Advisor) -> QuerySet:
    items = Message.objects.exclude(kind=Message.Kind.EVENT).exclude(text="")
    if not conversation_selectors.advisor_sees_notes(advisor):
        items = items.exclude(kind=Message.Kind.NOTE)
    return items


def search(*, advisor: Advisor, q: str | None, site_key: str | None = None,
           cursor: str | None = None) -> tuple[list[tuple[dict, dict | None]], str | None]:
    """Conversations in the advisor's scope whose visitor (names and variables: licensed advisors only) or items
    (notes: licensed advisors only) match every word of `q`, newest activity first, SEARCH_PAGE a page, each with
    its newest matching item (None when only the visitor matched); as rows (conversation_rows, message_rows). At
    most four queries whatever the page (five when the index statistics are read again, every ten minutes), and
    the transaction around them on PostgreSQL."""
    words = search_words(q)
    if not words:
        raise Refused(_("q must contain at least one word."), fields={"q": [_("Type a word to search for.")]})
    visible = conversation_selectors.conversations_visible_to(advisor=advisor, site_key=site_key)
    if cursor:
        after = conversation_selectors.Cursor.decode(cursor)
        visible = visible.filter(updated_at__lte=after.updated_at).filter(
            Q(updated_at__lt=after.updated_at) | Q(id__lt=after.id))
    newest_first = ("-updated_at", "-id")
    with _serial():
        listed_items, listed_visitors = _listed_hits(advisor, words)
        # Each side is a list of ids the index gave (rare words), or, for common words, a check of each of the
        # newest conversations as the walk meets them, which finds a page quickly when matches are many. A scalar
        # subquery, which PostgreSQL never turns into a join that would read every hit from the index.
        either = []
        if listed_items is None:
            first_hit = _items(advisor).filter(_message_match(words), conversation_id=OuterRef("pk")).values("pk")[:1]
            visible = visible.alias(first_hit=Subquery(first_hit))
            either.append(Q(first_hit__isnull=False))
        elif listed_items:
            either.append(Q(_any_of("pk", listed_items)))
        if listed_visitors is None:
            named = _visitors_matching(words).filter(pk=OuterRef("visitor_id")).values("pk")[:1]
            visible = visible.alias(named=Subquery(named))
            either.append(Q(named__isnull=False))
        elif listed_visitors:
            either.append(Q(_any_of("visitor_id", listed_visitors)))
        if not either:
            return [], None
        # The page's ids in a subquery of their own, so that its LIMIT comes before the CONVs' joins (joined to
        # the listed rows first, the related rows would be read for every match); one statement.
        ids = (visible.filter(functools.reduce(operator.or_, either)).order_by(*newest_first)
               .values("pk")[: SEARCH_PAGE + 1])
        page = conversation_selectors.presentable(Q(pk__in=ids), advisor=advisor, order_by=newest_first,
                                                  limit=SEARCH_PAGE + 1)
        next_cursor = None
        if len(page) > SEARCH_PAGE:
            last = page[SEARCH_PAGE - 1]
            next_cursor = conversation_selectors.Cursor(last["updated_at"], last["id"]).encode()
            page = page[:SEARCH_PAGE]
        hits = _newest_hits(advisor, [row["id"] for row in page], words)
    return [(row, hits.get(row["id"])) for row in page], next_cursor


def _newest_hits(advisor: Advisor, conversation_ids: list[int], words: list[str]) -> dict[int, dict]:
    """The newest matching item of each conversation (as conversations.selectors.message_rows gives it): per
    conversation, a walk back over its items that stops at the first match (the stored search_vector makes each
    check cheap), and those items, in one query."""
    if not conversation_ids:
        return {}
    newest = (_items(advisor).filter(_message_match(words), conversation_id=OuterRef("pk"))
              .order_by("-seq").values("pk")[:1])
    firsts = Conversation.objects.filter(_any_of("pk", conversation_ids)).values(hit=Subquery(newest))
    return {row["conversation_id"]: row for row in conversation_selectors.message_rows(
        Message.objects.filter(pk__in=firsts))}


# ------------------------------------------------------------------------------ transcripts


def transcript_items(*, conversation_id: int, notes: bool) -> list[Message]:
    """Every item of the conversation in order; notes only when `notes` (a licensed advisor's transcript)."""
    items = Message.objects.filter(conversation_id=conversation_id).select_related("advisor__user").order_by("seq")
    if not notes:
        items = items.exclude(kind=Message.Kind.NOTE)
    return list(items)


def labelled(*, account_id: int, name: str) -> QuerySet:
    """The ids of the conversations that carry the account's label `name` (the list's `label=` filter), as a
    subquery on the (label, conversation) unique index."""
    return ConversationLabel.objects.filter(label__account_id=account_id, label__name=name).values("conversation_id")
