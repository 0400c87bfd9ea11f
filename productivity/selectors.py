"""Reads for canned responses, labels, search and transcripts. Which conversations an advisor may see is
conversations.selectors' one rule (access_conversation, conversations_visible_to); the license rule is
advisor_sees_notes plus the presenters' (names and variables only for licensed advisors)."""
import re

from django.db import connection
from django.db.models import BooleanField, F, Func, Q, QuerySet, TextField, Value

from advisors.models import Account, Advisor
from conversations import selectors as conversation_selectors
from conversations.errors import Refused
from conversations.models import Conversation, Message
from productivity.folding import fold
from productivity.models import CannedResponse, ConversationLabel, Label

VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def advisor_is_staff(advisor: Advisor) -> bool:
    """CONTRACT section 7: "staff" is the account owner or a Django staff user."""
    user = advisor.user
    if user.is_staff:
        return True
    return Account.objects.filter(pk=advisor.account_id, owner_id=user.pk).exists()


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
        raise NotFound("No such canned response.") from None
    found = CannedResponse.objects.filter(Q(owner__isnull=True) | Q(owner=advisor), account_id=advisor.account_id,
                                          pk=pk).first()
    if found is None:
        raise NotFound("No such canned response.")
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

    def as_sql(self, compiler, connection, **extra_context):
        text, query = (compiler.compile(e) for e in self.source_expressions)
        return f"livechat_words({text[0]}, {query[0]})", [*text[1], *query[1]]

    def as_postgresql(self, compiler, connection, **extra_context):
        text, query = (compiler.compile(e) for e in self.source_expressions)
        return (f"to_tsvector('simple'::regconfig, livechat_fold({text[0]})) @@ "
                f"to_tsquery('simple'::regconfig, {query[0]})"), [*text[1], *query[1]]


class _VisitorText(Func):
    """The folded values of a visitor's variables (the trigram index's expression on PostgreSQL)."""

    function = "livechat_visitor_text"
    output_field = TextField()


def _message_match(words: list[str]) -> _MatchesWords:
    if connection.vendor == "postgresql":
        query = " & ".join(f"{word[:64]}:*" for word in words)
    else:
        query = " ".join(words)
    return _MatchesWords(F("text"), Value(query, output_field=TextField()))


def _visitors_matching(words: list[str]) -> QuerySet:
    """Visitors whose variable values hold every word (substrings, on the trigram index)."""
    visitors = conversation_selectors.Visitor.objects.alias(search_text=_VisitorText("variables"))
    for word in words:
        visitors = visitors.filter(search_text__contains=word)
    return visitors.values("pk")


def _items(advisor: Advisor) -> QuerySet:
    items = Message.objects.exclude(kind=Message.Kind.EVENT).exclude(text="")
    if not conversation_selectors.advisor_sees_notes(advisor):
        items = items.exclude(kind=Message.Kind.NOTE)
    return items


def search(*, advisor: Advisor, q: str | None, site_key: str | None = None,
           cursor: str | None = None) -> tuple[list[tuple[Conversation, Message | None]], str | None]:
    """Conversations in the advisor's scope whose visitor (names and variables: licensed advisors only) or items
    (notes: licensed advisors only) match every word of `q`, newest activity first, SEARCH_PAGE a page, each with
    its newest matching item (None when only the visitor matched). Three queries whatever the page."""
    words = search_words(q)
    if not words:
        raise Refused("q must contain at least one word.", fields={"q": ["Type a word to search for."]})
    visible = conversation_selectors.conversations_visible_to(advisor=advisor, site_key=site_key)
    if cursor:
        after = conversation_selectors.Cursor.decode(cursor)
        visible = visible.filter(updated_at__lte=after.updated_at).filter(
            Q(updated_at__lt=after.updated_at) | Q(id__lt=after.id))
    newest_first = ("-updated_at", "-id")
    by_item = visible.filter(pk__in=_items(advisor).filter(_message_match(words)).values("conversation_id"))
    parts = [by_item]
    if advisor.licensed:
        parts.append(visible.filter(visitor__in=_visitors_matching(words)))
    if connection.features.supports_slicing_ordering_in_compound and len(parts) > 1:
        ids = parts[0].order_by(*newest_first).values("pk")[: SEARCH_PAGE + 1].union(
            *(p.order_by(*newest_first).values("pk")[: SEARCH_PAGE + 1] for p in parts[1:]), all=True)
        matching = Q(pk__in=ids)
    else:
        matching = Q(pk__in=parts[0].values("pk"))
        for part in parts[1:]:
            matching |= Q(pk__in=part.values("pk"))
    page = conversation_selectors.presentable(Conversation.objects.filter(matching), advisor=advisor,
                                              order_by=newest_first, limit=SEARCH_PAGE + 1)
    next_cursor = None
    if len(page) > SEARCH_PAGE:
        last = page[SEARCH_PAGE - 1]
        next_cursor = conversation_selectors.Cursor(last.updated_at, last.pk).encode()
        page = page[:SEARCH_PAGE]
    hits = _newest_hits(advisor, [c.pk for c in page], words)
    return [(c, hits.get(c.pk)) for c in page], next_cursor


def _newest_hits(advisor: Advisor, conversation_ids: list[int], words: list[str]) -> dict[int, Message]:
    """The newest matching item of each conversation, in one query."""
    if not conversation_ids:
        return {}
    items = _items(advisor).filter(_message_match(words), conversation_id__in=conversation_ids)
    if connection.vendor == "postgresql":
        rows = items.select_related("advisor__user").order_by("conversation_id", "-seq").distinct("conversation_id")
        return {m.conversation_id: m for m in rows}
    hits: dict[int, Message] = {}
    for message in items.select_related("advisor__user").order_by("conversation_id", "-seq"):
        hits.setdefault(message.conversation_id, message)
    return hits


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
