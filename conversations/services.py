"""Every write to visitors, conversations and their timeline. Each runs in one transaction, locks the
conversation row (which serializes its `seq`), and announces what changed on commit (conversations.events)."""
import asyncio
import logging
import operator
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import reduce
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from PIL import Image as PILImage
from redis.exceptions import RedisError

from advisors.models import Advisor, Notification, Site
from advisors.selectors import advisor_of_site
from advisors.services import advisor_record_activity
from chatbots import engine
from chatbots.selectors import flow_for
from conversations import events, figures, live_message, ratelimit, selectors
from conversations.changes import SEQUENCE, next_change, next_change_sql
from conversations.errors import Conflict, ErrorCode, Forbidden, RateLimited, Refused, refuse_nul
from conversations.images import ProcessedImage
from conversations.models import Conversation, Message, ReadState, Visitor
from conversations.presenters import timestamp
from integrations import webhooks
from livechat import compiled
from livechat.compiled import ID_PLACEHOLDER, CompiledLookup, prepared_cursor
from routing import services as routing

logger = logging.getLogger(__name__)

Status = Conversation.Status
Kind = Message.Kind
Sender = Message.Sender
# Reads that used to live here; the rules are the selectors' (kept importable for older callers).
TOKEN_TTL = selectors.TOKEN_TTL
token_hash = selectors.token_hash
visitor_for_token = selectors.visitor_for_token


# What a cache that is down raises: the limit is then not applied (the database decides what is stored).
_CACHE_OUTAGES = (RedisError, OSError, TimeoutError)


def visitor_send_wait(*, visitor_id: int) -> float | None:
    """Take a slot of the visitor's send limit, which every send of one token counts against together: socket
    messages, buttons, back_to_bot and image uploads. None when allowed, else the seconds to wait. Blocking (the
    cache): call it from a thread, never on the event loop (there: visitor_send_wait_on_loop)."""
    try:
        return ratelimit.hit(**_visitor_send_limit(visitor_id))
    except _CACHE_OUTAGES as error:
        _limit_not_checked(visitor_id, error)
        return None


async def visitor_send_wait_on_loop(*, visitor_id: int) -> float | None:
    """visitor_send_wait on the event loop: the same slot of the same limit."""
    try:
        return await ratelimit.hit_on_loop(**_visitor_send_limit(visitor_id))
    except _CACHE_OUTAGES as error:
        _limit_not_checked(visitor_id, error)
        return None


def _visitor_send_limit(visitor_id: int) -> dict:
    limits = settings.LIVECHAT
    return {"key": f"widget:{visitor_id}", "limit": limits["RATE_LIMIT_COUNT"],
            "window_s": limits["RATE_LIMIT_WINDOW_S"]}


def _limit_not_checked(visitor_id: int, error: Exception) -> None:
    logger.warning("rate limit not checked for visitor %s: %s: %s", visitor_id, type(error).__name__, error)


def advisor_upload_wait(*, advisor_id: int) -> float | None:
    """Take a slot of the advisor's image upload limit (INBOX_UPLOADS_PER_MINUTE); None when allowed."""
    try:
        return ratelimit.hit(f"inbox-uploads:{advisor_id}", limit=settings.LIVECHAT["INBOX_UPLOADS_PER_MINUTE"],
                             window_s=60)
    except _CACHE_OUTAGES as error:
        logger.warning("upload limit not checked for advisor %s: %s: %s", advisor_id, type(error).__name__, error)
        return None


@dataclass
class Sent:
    """What a send stored: the new items in `seq` order, or the stored item of a repeated client_id."""

    messages: list[Message] = field(default_factory=list)
    created: bool = True
    conversation: Conversation | None = None
    previous_public_seq: int = 0  # the last item the visitor could see before these: a gap check for sockets

    @property
    def message(self) -> Message:
        """The item the sender's client_id names (a reply may come after a "joined" event)."""
        return next((m for m in self.messages if m.client_id), self.messages[0])


@dataclass
class Session:
    visitor: Visitor
    conversation: Conversation
    token: str
    created: bool


# ------------------------------------------------------------------------------ what a send may carry

CLIENT_ID_MAX = 64


def client_id_clean(value) -> str:
    """The client_id rule for every send, REST and socket: a string of 1 to 64 characters."""
    if not isinstance(value, str) or not 0 < len(value) <= CLIENT_ID_MAX:
        raise Refused(_("client_id is required: a string of at most %(max)s characters.") % {"max": CLIENT_ID_MAX},
                      fields={"client_id": [_("Required, at most %(max)s characters.") % {"max": CLIENT_ID_MAX}]})
    return refuse_nul(value, "client_id")


def message_text_clean(value, *, required: bool = True) -> str:
    """The text rule for every send, visitor or advisor, REST or socket: at most MESSAGE_MAX_CHARS characters
    (`too_long`), not blank when it is the whole message."""
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise Refused(_("A message needs a non-empty `text`."), fields={"text": [_("This field is required.")]})
    limit = settings.LIVECHAT["MESSAGE_MAX_CHARS"]
    if len(value) > limit:
        raise Refused(_("A message has at most %(limit)s characters.") % {"limit": limit}, code=ErrorCode.TOO_LONG,
                      fields={"text": [_("At most %(limit)s characters.") % {"limit": limit}]})
    return refuse_nul(value, "text")


# ------------------------------------------------------------------------------ the timeline


class _Timeline:
    """Appends items to a locked conversation and remembers what to announce once the caller saves."""

    def __init__(self, conversation: Conversation):
        self.conversation = conversation
        self.created: list[Message] = []
        self.dirty: set[str] = set()
        self.status_before = conversation.status
        self.assigned_before = conversation.assigned_id
        self.back_before = conversation.back_to_bot_label
        self.awaiting_before = conversation.awaiting_email
        self.previous_public_seq = conversation.last_public_seq
        self.advisor_seq_before = conversation.last_advisor_seq
        # A call for a human (True), or not yet (False); None: conversations.figures infers it.
        self.escalation: bool | None = None

    def sent(self) -> "Sent":
        return Sent(self.created, conversation=self.conversation, previous_public_seq=self.previous_public_seq)

    def append(self, *, kind: str, sender: str, text: str = "", client_id: str | None = None,
               advisor: Advisor | None = None, buttons: list | None = None, input: dict | None = None,
               image: ProcessedImage | None = None, image_url: str = "") -> Message:
        conversation = self.conversation
        previous_public = conversation.last_public_seq
        conversation.last_seq += 1
        message = Message(conversation=conversation, seq=conversation.last_seq, kind=kind, sender=sender, text=text,
                          client_id=client_id, advisor=advisor, buttons=buttons or [], input=input,
                          image_url=image_url)
        if image is not None:
            message.image_width, message.image_height = _upright_size(image)
            message.image.save(image.file.name, image.file, save=False)
        compiled.insert(message)
        conversation.last_message = message
        self.dirty |= {"last_seq", "last_message", "updated_at"}
        if kind != Kind.NOTE:
            conversation.last_public_seq = message.seq
            conversation.last_public_message = message
            self.dirty |= {"last_public_seq", "last_public_message"}
        if sender == Sender.VISITOR:
            conversation.last_visitor_seq = message.seq
            self.dirty.add("last_visitor_seq")
        elif sender == Sender.ADVISOR and kind != Kind.NOTE:
            conversation.last_advisor_seq = message.seq
            self.dirty.add("last_advisor_seq")
        self.created.append(message)
        events.message_created(conversation, message, previous_public_seq=previous_public)
        return message

    def set(self, **changes) -> None:
        for name, value in changes.items():
            setattr(self.conversation, name, value)
            self.dirty.add("assigned" if name == "assigned" else name)

    def event(self, words: Callable[[], str]) -> Message:
        """A visible line ("Alice joined the conversation"), worded in the visitor's language: it is stored once
        and shown as stored, in the widget and in the inbox."""
        with translation.override(_load_related(self.conversation).visitor.language):
            return self.append(kind=Kind.EVENT, sender=Sender.SYSTEM, text=words())

    def save(self, *, reader: tuple[Advisor, int] | None = None) -> None:
        """`reader`: the advisor whose read position this write moves too (a reply), and to what."""
        conversation = self.conversation
        if figures.needed(self):
            figures.keep(self)
        conversation.updated_at = timezone.now()
        # Taken last, just before the commit, so that a number is rarely still uncommitted when a bigger one
        # is already visible to a resume; in the row's own UPDATE (no query of its own), which returns it: the
        # CONV frames below need it.
        conversation.change = next_change_sql()
        self.dirty |= {"updated_at", "change"}
        compiled.save_fields(conversation, sorted(self.dirty), read_back="change")
        if (conversation.status != self.status_before or conversation.assigned_id != self.assigned_before
                or conversation.back_to_bot_label != self.back_before
                or conversation.awaiting_email != self.awaiting_before):
            events.conversation_changed(_load_related(conversation), reader=reader)
            events.conversation_moved(conversation, status_before=self.status_before,
                                      assigned_before=self.assigned_before)


def _upright_size(image: ProcessedImage) -> tuple[int, int]:
    """The stored file's width and height. ProcessedImage's are the upload's, before its EXIF orientation was
    applied (a portrait photo taken sideways swaps them). Reads the header only."""
    image.file.seek(0)
    with PILImage.open(image.file) as stored:
        size = stored.size
    image.file.seek(0)
    return size


def _lock(*, pk: int | None = None, visitor: Visitor | None = None, related: bool = False) -> Conversation:
    """The conversation (by id, or the visitor's) with its row locked, which serializes its `seq`. Its own columns
    only, unless `related`: that is all a message to a live conversation needs, and joining the related rows cost
    that path a fifth of its time (profiled). `related` (the visitor's only): its site with the chatbot, visitor and
    advisor (_RELATED, as _load_related loads them) in the same query, locking its own row only, for a write
    that reads them (a step of the bot's walk: they were a second query of every step). By SQL compiled once
    (livechat.compiled): every write of a conversation starts here."""
    if visitor is None:
        conversation = _LOCK_BY_ID.get(int(pk))
    else:
        conversation = (_LOCK_BY_VISITOR_WITH_RELATED if related else _LOCK_BY_VISITOR).get(visitor.pk)
    if conversation is None:
        raise Conversation.DoesNotExist(f"no conversation for {'visitor %s' % visitor.pk if visitor else pk}")
    return conversation


_LOCK_BY_ID = CompiledLookup(
    lambda pk: Conversation.objects.select_for_update().filter(pk=pk).order_by()[:2], ID_PLACEHOLDER)
_LOCK_BY_VISITOR = CompiledLookup(
    lambda visitor_id: Conversation.objects.select_for_update().filter(visitor_id=visitor_id).order_by()[:2],
    ID_PLACEHOLDER)
_LOCK_BY_VISITOR_WITH_RELATED = CompiledLookup(
    lambda visitor_id: Conversation.objects.select_for_update(of=("self",))
    .select_related("site__chatbot", "visitor", "assigned__user").filter(visitor_id=visitor_id).order_by()[:2],
    ID_PLACEHOLDER)


def lock_presented(conversation_id: int) -> Conversation:
    """The conversation under its row lock, with everything conversation_dict reads: for a write that announces
    the CONV it leaves behind (a label change, a read), whose content must be as new as the change number it takes.
    Every change of a conversation takes its number under this lock."""
    return (Conversation.objects.select_for_update(of=("self",), no_key=True)
            .select_related(*selectors.PRESENTED_RELATED).get(pk=conversation_id))


_RELATED = ("site", "visitor", "assigned")
# Compiled once (livechat.compiled): the bot loads it for every step of a walk.
_WITH_RELATED = CompiledLookup(
    lambda pk: Conversation.objects.select_related("site__chatbot", "visitor", "assigned__user").filter(pk=pk)
    .order_by()[:2], ID_PLACEHOLDER)


def _load_related(conversation: Conversation) -> Conversation:
    """Site (with its chatbot), visitor and assigned advisor (with its user), in one query, unless loaded already.
    Read under the conversation's row lock, like everything the services write about it."""
    missing = [name for name in _RELATED if not Conversation._meta.get_field(name).is_cached(conversation)]
    if missing:
        loaded = _WITH_RELATED.get(conversation.pk)
        if loaded is None:
            raise Conversation.DoesNotExist(f"conversation {conversation.pk} is gone")
        for name in missing:
            if name == "assigned" and loaded.assigned_id != conversation.assigned_id:
                continue  # changed in memory (set to an id only): leave it to the ordinary lazy load
            setattr(conversation, name, getattr(loaded, name))
    return conversation


# Every send asks: written as SQL once rather than built by the ORM for each (the (conversation, client_id) index).
_REPEATED_SQL = (f"SELECT id, sender, advisor_id, kind FROM {Message._meta.db_table} "
                 "WHERE conversation_id = %s AND client_id = %s AND sender IN (%s, %s) LIMIT 50")


def _repeated(conversation: Conversation, client_id: str, *, advisor: Advisor | None = None) -> Message | None:
    """The sender's own stored item for a repeated client_id (the visitor's, or `advisor`'s), None for a new one.

    A client_id is unique per conversation and sender (CONTRACT section 3). One that names an item its sender may
    not have back is refused (Conflict) and reveals nothing: another sender's item, or a note for someone who may
    not see notes. The one exception: two advisors may happen to choose the same string, and an advisor who may
    see the other's item loses nothing by getting a new item of their own (the constraints keep them apart).
    Almost every send is new: a bare lookup first, on the (conversation, client_id) index."""
    with prepared_cursor(connection) as cursor:
        cursor.execute(_REPEATED_SQL, [conversation.pk, client_id, Sender.VISITOR, Sender.ADVISOR])
        found = cursor.fetchall()
    if not found:
        return None
    sees_notes = advisor is not None and selectors.advisor_sees_notes(advisor)
    own = None
    for pk, sender, advisor_id, kind in found:
        mine = (sender == Sender.ADVISOR and advisor_id == advisor.pk) if advisor is not None \
            else sender == Sender.VISITOR
        visible = kind != Kind.NOTE or sees_notes
        if mine and visible:
            own = pk
        elif not (visible and advisor is not None and sender == Sender.ADVISOR and not mine):
            raise Conflict(_("This client_id names another item; send with a new client_id."))
    return Message.objects.select_related("advisor__user").get(pk=own) if own is not None else None


# ------------------------------------------------------------------------------ the bot


def _run_bot(timeline: _Timeline, event: engine.Event) -> engine.Result | None:
    """Hand one visitor event to the site's chatbot and store what it answers. None: the site has no bot."""
    conversation = _load_related(timeline.conversation)
    chatbot = conversation.site.chatbot
    if chatbot is None:
        return None
    visitor = conversation.visitor
    try:
        flow = flow_for(chatbot)
    except engine.FlowInvalid:  # only a database edited behind the admin's back; a human answers instead
        logger.exception("chatbot %s has an invalid flow; conversation %s waits for a human", chatbot.pk,
                         conversation.pk)
        return None
    result = engine.run(flow, variables=dict(visitor.variables), position=conversation.bot_position, event=event)
    if result.error:
        raise Refused(result.error)
    for output in result.outputs:
        if isinstance(output, engine.Note):
            timeline.append(kind=Kind.NOTE, sender=Sender.BOT, text=output.text)
        else:
            timeline.append(kind=Kind.IMAGE if output.image_url else Kind.TEXT, sender=Sender.BOT, text=output.text,
                            buttons=[{"id": b.id, "label": b.label} for b in output.buttons], input=output.input,
                            image_url=output.image_url or "")
    timeline.set(bot_position=result.position)
    if result.variables != visitor.variables:
        visitor.variables = result.variables
        compiled.save_fields(visitor, ["variables"])
    if result.escalation is not None:
        _escalate(timeline, assign_to=result.escalation.assign_to, back_label=result.escalation.back_label or "")
    return result


def _bot_or_human(timeline: _Timeline, event: engine.Event) -> None:
    if _run_bot(timeline, event) is None:
        _wait_for_human(timeline, notify=event.kind != "start")


def _escalate(timeline: _Timeline, *, assign_to: str | None, back_label: str) -> None:
    timeline.set(status=Status.LIVE, assigned=None, waiting_since=timezone.now(), back_to_bot_label=back_label,
                 closed_at=None)
    timeline.escalation = True
    _route(timeline, assign_to=assign_to)


def _route(timeline: _Timeline, *, assign_to: str | None = None) -> None:
    """A conversation now waits for a human: who takes it (routing: a named assignee only while online, round
    robin), the away message or its timer, and the e-mails."""
    conversation = _load_related(timeline.conversation)
    route = routing.escalation_route(conversation=conversation, assign_to=assign_to)
    if route.advisor is not None:
        timeline.set(assigned=route.advisor)
        timeline.event(lambda: _("%(name)s joined the conversation") % {"name": route.advisor.display_name})
    routing.escalation_follow_up(timeline, route)
    _notify_on_commit(conversation)


def _notify_on_commit(conversation: Conversation) -> None:
    """The e-mails of this escalation, and one reminder if it is still unassigned after the delay."""
    from conversations.tasks import escalation_notify, escalation_remind

    arguments = (conversation.pk, timestamp(conversation.waiting_since))
    delay = settings.LIVECHAT["REMINDER_DELAY_S"]
    events.conversation_escalated(conversation)

    def queue() -> None:
        escalation_notify.delay(*arguments)
        if delay > 0 and not settings.CELERY_TASK_ALWAYS_EAGER:  # eagerly, a countdown would block the chat
            escalation_remind.apply_async(arguments, countdown=delay)

    transaction.on_commit(queue)


def _wait_for_human(timeline: _Timeline, *, notify: bool) -> None:
    """Live and unassigned. Advisors are e-mailed once the visitor has said something, not on a bare visit."""
    timeline.set(status=Status.LIVE, assigned=None, waiting_since=timezone.now(), closed_at=None)
    timeline.escalation = notify  # a live-chat-only visitor calls for a human with their words, not a visit
    if notify:
        _route(timeline)


# ------------------------------------------------------------------------------ visitors


def visitor_language(language: str | None = None) -> str:
    """One of settings.LANGUAGES: the one given, else the active one (the widget's Accept-Language), else the
    default."""
    known = dict(settings.LANGUAGES)
    for candidate in (language, translation.get_language()):
        if candidate:
            code = candidate.split("-")[0].lower()
            if code in known:
                return code
    return settings.LANGUAGE_CODE


def visitor_session_start(*, site: Site, token: str | None = None, page: str = "",
                          address: str | None = None, language: str | None = None) -> Session:
    """Resume the visitor a token names (a new session after 30 idle minutes), or start a new one.

    A new visitor, whatever the token said (none, made up, expired, another site's), takes a slot of the
    per-address limit when `address` is given: RateLimited past it, and nothing is created.
    `language` (default: the request's) is kept for what reaches the visitor later by e-mail."""
    now = timezone.now()
    language = visitor_language(language)
    visitor = selectors.visitor_for_token(token=token, site=site) if token else None
    if visitor is not None:
        changes = {"last_seen_at": now}
        if language != visitor.language:
            changes["language"] = visitor.language = language
        new_session = visitor.last_seen_at < now - timedelta(seconds=settings.LIVECHAT["SESSION_IDLE_S"])
        if new_session:
            changes["sessions"] = F("sessions") + 1
        moved = bool(page) and page != visitor.page
        if page:
            changes["page"] = page
        with transaction.atomic():
            Visitor.objects.filter(pk=visitor.pk).update(**changes)
            if moved or new_session:
                # The inbox's side panel shows the visitor's page and sessions: it hears of them as it hears of
                # any change of the conversation (the widget's view did not change).
                visitor.page = page or visitor.page
                visitor.sessions += 1 if new_session else 0
                conversation = _load_related(visitor.conversation)
                # A change of what the inbox shows: it takes a change number, so a resume finds it and a page
                # that holds the conversation with a newer read state's number does not take the frame for old.
                conversation.change = next_change()
                Conversation.objects.filter(pk=conversation.pk).update(change=conversation.change)
                conversation.visitor = visitor
                events.conversation_changed(conversation, widget=False)
        return Session(visitor, visitor.conversation, token, created=False)

    if address is not None:
        wait = ratelimit.hit(f"sessions:{address}", window_s=60,
                             limit=settings.LIVECHAT["SESSIONS_PER_ADDRESS_PER_MINUTE"])
        if wait is not None:
            raise RateLimited(_("Too many new visitors from this address."), retry_after=wait)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        visitor = Visitor(site=site, token_hash=token_hash(token), last_seen_at=now, page=page, language=language)
        compiled.insert(visitor)
        # Its related rows as _load_related wants them, known already (the site with its chatbot, the visitor just
        # made, nobody assigned): the bot's greeting then loads nothing more.
        conversation = Conversation(site=site, visitor=visitor, assigned=None, updated_at=now)
        compiled.insert(conversation)
        timeline = _Timeline(conversation)
        if site.mode == "livechat":
            _wait_for_human(timeline, notify=False)
        else:
            _bot_or_human(timeline, engine.Event(kind="start"))
        timeline.save()
        if timeline.status_before == conversation.status:  # a new bot conversation is news for the inbox too
            events.conversation_changed(conversation, widget=False)
    return Session(visitor, conversation, token, created=True)


def _reopen_for_visitor(timeline: _Timeline) -> None:
    """A visitor writing to a closed conversation brings it back: to the bot, or waiting for a human."""
    conversation = _load_related(timeline.conversation)
    if conversation.site.mode == "livechat":
        _wait_for_human(timeline, notify=True)
    else:
        # position None: whatever the bot was waiting for when it closed, the new text is free text
        timeline.set(status=Status.BOT, assigned=None, closed_at=None, back_to_bot_label="", waiting_since=None,
                     bot_position=None)


def _visitor_send(*, visitor: Visitor, client_id: str, write: Callable[[_Timeline], None],
                  for_the_bot: bool = False) -> Sent:
    """One visitor send: lock, answer a repeated client_id with the stored item, else write and save.
    `for_the_bot`: the send probably goes to the bot, which reads the related rows: locked with them (_lock)."""
    client_id = client_id_clean(client_id)
    with transaction.atomic():
        conversation = _lock(visitor=visitor, related=for_the_bot)
        if (repeated := _repeated(conversation, client_id)) is not None:
            return Sent([repeated], created=False, conversation=conversation)
        timeline = _Timeline(conversation)
        write(timeline)
        timeline.save()
    return timeline.sent()


def visitor_message_send(*, visitor: Visitor, client_id: str, text: str, live_hint: bool = True) -> Sent:
    """`live_hint`: False when the caller last saw the conversation not live (a widget socket while the bot has
    it), so the one-statement write, which would write nothing, is not tried. A stale hint costs that statement,
    or a live message takes the general path: both store the same item."""
    text = message_text_clean(text)
    # The commonest write (a live conversation, the visitor spoke before) in one statement on PostgreSQL; anything
    # else writes nothing there and goes the general way below (conversations/live_message.py). Not while a webhook
    # of the site wants message.created: its delivery row is written in the item's own transaction, which the one
    # statement (committed on its own) has no room for; a crash between the two would lose the event.
    if live_hint and not webhooks.listens_for_messages(visitor.site_id) and (written := live_message.write(
            visitor_id=visitor.pk, client_id=client_id_clean(client_id), text=text)) is not None:
        events.message_created(written.conversation, written.message,
                               previous_public_seq=written.previous_public_seq)
        return Sent([written.message], conversation=written.conversation,
                    previous_public_seq=written.previous_public_seq)

    def write(timeline: _Timeline) -> None:
        conversation = timeline.conversation
        if conversation.status == Status.CLOSED:
            _reopen_for_visitor(timeline)
        first_words = conversation.last_visitor_seq == 0
        timeline.append(kind=Kind.TEXT, sender=Sender.VISITOR, text=text, client_id=client_id)
        if first_words and conversation.status == Status.LIVE and conversation.assigned_id is None:
            timeline.escalation = True
            _route(timeline)  # a live-chat-only site: the first words are the call for a human
        elif conversation.awaiting_email:
            routing.email_capture(timeline, text)
        if conversation.status == Status.BOT:
            _bot_or_human(timeline, engine.Event(kind="text", text=text))

    return _visitor_send(visitor=visitor, client_id=client_id, write=write, for_the_bot=not live_hint)


async def visitor_text_on_loop(*, visitor: Visitor, client_id: str, text: str) -> Sent | None:
    """visitor_message_send's one-statement case, on the event loop (livechat/loop_io.py): a visitor's text to a
    live conversation the visitor spoke in before, on a site no webhook of which wants message.created (as this
    process's cache knows it without the database). The caller checked the text and client_id (message_text_clean,
    client_id_clean) and took the send's slot. None: nothing was written; call visitor_message_send, in a thread.

    The write and its frames run as a task of their own that a cancelled caller (its socket closed) does not
    stop: once the statement is sent, its item is announced."""
    if webhooks.listens_for_messages_as_cached(visitor.site_id) is not False:
        return None
    return await asyncio.shield(asyncio.ensure_future(_visitor_text_on_loop(visitor.pk, client_id, text)))


async def _visitor_text_on_loop(visitor_id: int, client_id: str, text: str) -> Sent | None:
    written = await live_message.write_on_loop(visitor_id=visitor_id, client_id=client_id, text=text)
    if written is None:
        return None
    events.message_broadcast(written.conversation, written.message, previous_public_seq=written.previous_public_seq)
    return Sent([written.message], conversation=written.conversation, previous_public_seq=written.previous_public_seq)


def visitor_button_press(*, visitor: Visitor, client_id: str, button: str) -> Sent:
    """A button press is stored as the visitor's text (the label), then the bot follows the button."""
    if not isinstance(button, str):
        raise Refused(_("A button frame needs the button's `id`."), fields={"button": [_("This field is required.")]})

    def write(timeline: _Timeline) -> None:
        conversation = _load_related(timeline.conversation)
        chatbot = conversation.site.chatbot
        try:
            label = flow_for(chatbot).button_label(button) if chatbot else None
        except engine.FlowInvalid:
            label = None
        if label is None:
            raise Refused(_("Unknown button %(button)r.") % {"button": button})
        if conversation.status == Status.CLOSED:
            _reopen_for_visitor(timeline)
        timeline.append(kind=Kind.TEXT, sender=Sender.VISITOR, text=label, client_id=client_id)
        if conversation.status == Status.BOT:
            _bot_or_human(timeline, engine.Event(kind="button", button=button))

    return _visitor_send(visitor=visitor, client_id=client_id, write=write, for_the_bot=True)


def visitor_back_to_bot(*, visitor: Visitor, client_id: str) -> Sent:
    """While a human has the lead, the visitor may hand the conversation back to the bot's return sequence."""
    def write(timeline: _Timeline) -> None:
        conversation = timeline.conversation
        if conversation.status != Status.LIVE or not conversation.back_to_bot_label:
            raise Refused(_("The chatbot can take over only while an advisor has the lead and the flow offers it."))
        timeline.append(kind=Kind.TEXT, sender=Sender.VISITOR, text=conversation.back_to_bot_label,
                        client_id=client_id)
        timeline.set(status=Status.BOT, assigned=None, waiting_since=None, back_to_bot_label="")
        _bot_or_human(timeline, engine.Event(kind="back_to_bot"))

    return _visitor_send(visitor=visitor, client_id=client_id, write=write, for_the_bot=True)


def visitor_image_send(*, visitor: Visitor, client_id: str, image: ProcessedImage) -> Sent:
    def write(timeline: _Timeline) -> None:
        if timeline.conversation.status == Status.CLOSED:
            _reopen_for_visitor(timeline)
        timeline.append(kind=Kind.IMAGE, sender=Sender.VISITOR, client_id=client_id, image=image)

    return _visitor_send(visitor=visitor, client_id=client_id, write=write)


def visitor_presence_set(*, visitor_id: int, online: bool) -> None:
    """Count the visitor's open sockets; the inbox hears only when the visitor comes or goes."""
    with transaction.atomic():
        visitor = _LOCK_VISITOR.get(visitor_id)
        if visitor is None:  # deleted with its conversation while its sockets were open
            return
        was_online = visitor.online
        visitor.online_sockets = max(0, visitor.online_sockets + (1 if online else -1))
        visitor.last_seen_at = timezone.now()
        compiled.save_fields(visitor, ["online_sockets", "last_seen_at"])
        if visitor.online != was_online:
            conversation = _CONVERSATION_OF_VISITOR.get(visitor.pk)
            if conversation is None:
                raise Conversation.DoesNotExist(f"no conversation for visitor {visitor.pk}")
            events.visitor_presence(conversation, online=visitor.online)


# Every widget socket's opening and closing: compiled once (livechat.compiled).
_LOCK_VISITOR = CompiledLookup(lambda pk: Visitor.objects.select_for_update().filter(pk=pk).order_by()[:2],
                               ID_PLACEHOLDER)
_CONVERSATION_OF_VISITOR = CompiledLookup(
    lambda visitor_id: Conversation.objects.filter(visitor_id=visitor_id).order_by()[:2], ID_PLACEHOLDER)


# ------------------------------------------------------------------------------ advisors


def advisor_message_send(*, conversation_id: int, advisor: Advisor, client_id: str, text: str = "",
                         note: bool = False, image: ProcessedImage | None = None,
                         checked: Conversation | None = None) -> Sent:
    """A reply (or a private note). Replying to an unassigned conversation assigns it to the replier.
    `checked`: the row the caller's access check loaded (selectors.access_conversation, for_write). When it shows
    a conversation a plain reply may be written to in one statement (conversations/live_message.py) on a site no
    webhook of which wants message.created (known beforehand, as for the visitor's), the reply tries it; the
    statement checks again under the row lock. Without it, or for a first reply, the general path alone."""
    client_id = client_id_clean(client_id)
    text = message_text_clean(text, required=image is None)
    if note and not selectors.advisor_sees_notes(advisor):
        raise Forbidden(_("Notes need a Livechat Premium license."))
    if (not note and image is None and checked is not None and checked.pk == conversation_id
            and live_message.reply_may_apply(checked)
            and not webhooks.listens_for_messages(checked.site_id)
            and (written := live_message.reply(conversation_id=conversation_id, advisor_id=advisor.pk,
                                               client_id=client_id, text=text)) is not None):
        sent = _reply_announced(written, advisor, events.message_created)
        routing.reply_stored(conversation=written.conversation, reach=written.reach)
        return sent
    with transaction.atomic():
        conversation = _lock(pk=conversation_id)
        if (repeated := _repeated(conversation, client_id, advisor=advisor)) is not None:
            return Sent([repeated], created=False, conversation=conversation)
        if conversation.status == Status.CLOSED:
            raise Conflict(_("The conversation is closed; reopen it to reply."), code=ErrorCode.CLOSED)
        timeline = _Timeline(conversation)
        if not note:
            if conversation.assigned_id is None:
                timeline.set(assigned=advisor)
                timeline.event(lambda: _("%(name)s joined the conversation") % {"name": advisor.display_name})
            timeline.set(status=Status.LIVE, waiting_since=None)
        kind = Kind.NOTE if note else (Kind.IMAGE if image is not None else Kind.TEXT)
        message = timeline.append(kind=kind, sender=Sender.ADVISOR, text=text, client_id=client_id, advisor=advisor,
                                  image=image)
        timeline.save(reader=(advisor, message.seq))
        _read_up_to(conversation, advisor, message.seq)
        advisor_record_activity(advisor_id=advisor.pk, messages=1)
        if not note:
            routing.reply_stored(conversation=conversation)
    return timeline.sent()


def _reply_announced(written: live_message.Replied, advisor: Advisor, announce: Callable) -> Sent:
    """A reply the one statement wrote, announced: its frames (`announce`: events.message_created, or on the event
    loop message_broadcast, which leaves out the webhooks it knew none of wanted) and the replier's read position."""
    message = written.message
    message.advisor = advisor
    announce(written.conversation, message, previous_public_seq=written.previous_public_seq)
    if written.read_moved:
        events.read_moved(written.conversation.pk, advisor, message.seq)
    return Sent([message], conversation=written.conversation, previous_public_seq=written.previous_public_seq)


async def advisor_reply_on_loop(*, conversation: Conversation, advisor: Advisor, client_id, text) -> Sent | None:
    """advisor_message_send's one-statement case on the event loop (conversations.api_on_loop, livechat.loop_io): a
    plain text reply to a conversation the caller's access check loaded
    (selectors.access_conversation_for_write_on_loop) that reply_may_apply to, on a site no webhook of which wants
    message.created (as this process's cache knows it without the database). None: nothing was written; call
    advisor_message_send, in a thread, which decides as if this had not run. Refused: the client_id or the text
    break their rules (the thread path then answers the same refusal).

    The write and its announcement run as a task that a cancelled caller does not stop: once the statement is sent,
    its item is announced."""
    client_id = client_id_clean(client_id)
    text = message_text_clean(text)
    if (not live_message.reply_may_apply(conversation)
            or webhooks.listens_for_messages_as_cached(conversation.site_id) is not False):
        return None
    return await asyncio.shield(asyncio.ensure_future(
        _advisor_reply_on_loop(conversation.pk, advisor, client_id, text)))


async def _advisor_reply_on_loop(conversation_id: int, advisor: Advisor, client_id: str, text: str) -> Sent | None:
    written = await live_message.reply_on_loop(conversation_id=conversation_id, advisor_id=advisor.pk,
                                               client_id=client_id, text=text)
    if written is None:
        return None
    sent = _reply_announced(written, advisor, events.message_broadcast)
    await routing.reply_stored_on_loop(conversation=written.conversation, reach=written.reach)
    return sent


def conversation_take(*, conversation_id: int, advisor: Advisor) -> Conversation:
    with transaction.atomic():
        conversation = _lock(pk=conversation_id)
        if conversation.assigned_id not in (None, advisor.pk):
            raise Conflict(_("%(name)s already has this conversation.")
                           % {"name": _load_related(conversation).assigned.display_name},
                           code=ErrorCode.ASSIGNED)
        if conversation.status == Status.CLOSED:
            raise Conflict(_("The conversation is closed; reopen it first."), code=ErrorCode.CLOSED)
        if conversation.assigned_id == advisor.pk and conversation.status == Status.LIVE:
            return conversation
        timeline = _Timeline(conversation)
        timeline.set(assigned=advisor, status=Status.LIVE)
        timeline.event(lambda: _("%(name)s joined the conversation") % {"name": advisor.display_name})
        timeline.save()
        advisor_record_activity(advisor_id=advisor.pk)
    return conversation


def conversation_assign(*, conversation_id: int, by: Advisor, username: str | None) -> Conversation:
    with transaction.atomic():
        conversation = _lock(pk=conversation_id)
        target = None
        if username:
            target = advisor_of_site(username=username, site_id=conversation.site_id, account_id=by.account_id)
            if target is None:
                raise Refused(_("No advisor of this site has that username."),
                              fields={"advisor": [_("Not an advisor of this conversation's site.")]})
        if conversation.assigned_id == (target.pk if target else None):
            return conversation
        timeline = _Timeline(conversation)
        timeline.set(assigned=target)
        if target is not None:
            if conversation.status == Status.BOT:
                timeline.set(status=Status.LIVE)
            timeline.event(lambda: _("%(name)s joined the conversation") % {"name": target.display_name})
        timeline.save()
        advisor_record_activity(advisor_id=by.pk)
    return conversation


def conversation_close(*, conversation_id: int, advisor: Advisor | None, idle_min: int | None = None,
                       now=None) -> Conversation:
    """Closed by an advisor, or (advisor None) by routing's idle close: then only a live conversation with no new
    item for `idle_min` minutes (checked under the lock: one that moved on meanwhile stays open)."""
    with transaction.atomic():
        conversation = _lock(pk=conversation_id)
        if conversation.status == Status.CLOSED:
            return conversation
        now = now or timezone.now()
        if advisor is None and (conversation.status != Status.LIVE
                                or conversation.updated_at > now - timedelta(minutes=idle_min)):
            return conversation
        timeline = _Timeline(conversation)
        # A live conversation an advisor closes asks the visitor for a rating once (reports.services.rating_create).
        asked = (advisor is not None and conversation.status == Status.LIVE
                 and _load_related(conversation).site.csat_enabled)
        timeline.set(status=Status.CLOSED, closed_at=timezone.now(), waiting_since=None, awaiting_email=False,
                     rating_asked=asked)
        timeline.event(lambda: _("%(name)s closed the conversation") % {"name": advisor.display_name}
                       if advisor is not None
                       else ngettext("Closed after %(minutes)s minute without activity",
                                     "Closed after %(minutes)s minutes without activity", idle_min)
                       % {"minutes": idle_min})
        timeline.save()
        if advisor is not None:
            advisor_record_activity(advisor_id=advisor.pk)
    return conversation


def conversation_reopen(*, conversation_id: int, advisor: Advisor) -> Conversation:
    with transaction.atomic():
        conversation = _lock(pk=conversation_id)
        if conversation.status != Status.CLOSED:
            return conversation
        timeline = _Timeline(conversation)
        timeline.set(status=Status.LIVE, closed_at=None)
        timeline.event(lambda: _("%(name)s reopened the conversation") % {"name": advisor.display_name})
        timeline.save()
        advisor_record_activity(advisor_id=advisor.pk)
    return conversation


def _read_up_to(conversation: Conversation, advisor: Advisor, seq: int, *, announce: bool = True
                ) -> tuple[int, int]:
    """Move the advisor's read position forward; returns it and its change number. Each move takes a change
    number (a resume finds it) and, unless the caller announces it itself, tells the advisor's sockets, which
    keep their advisor's read positions in memory rather than asking the database on every event."""
    seq = max(0, min(seq, conversation.last_seq))
    if connection.vendor == "postgresql":
        # One statement where the ORM took three (look up, take a number, update): a reply moves its advisor's
        # read position every time. A number taken for a position that did not move is a harmless gap.
        with connection.cursor() as cursor:
            cursor.execute(_READ_UP_TO_SQL, {"advisor": advisor.pk, "conversation": conversation.pk, "seq": seq})
            moved = cursor.fetchone()
        if moved is None:  # already read that far
            read_seq, change = ReadState.objects.filter(advisor=advisor, conversation=conversation).values_list(
                "seq", "change").get()
        else:
            read_seq, change = moved
    else:
        state, created = ReadState.objects.get_or_create(advisor=advisor, conversation=conversation,
                                                         defaults={"seq": seq, "change": next_change()})
        moved = created or state.seq < seq
        if not created and state.seq < seq:
            state.change = next_change()
            ReadState.objects.filter(pk=state.pk, seq__lt=seq).update(seq=seq, change=state.change)
        read_seq, change = max(seq, state.seq), state.change
    if announce and moved:
        events.read_moved(conversation.pk, advisor, read_seq)
    return read_seq, change


# The read position's insert or forward move, with its change number; no row when it was already that far. The
# BEFORE trigger of migration 0002 fills the copied columns on either path, as for the ORM's INSERT and UPDATE.
_READ_UP_TO_SQL = f"""
INSERT INTO conversations_readstate (advisor_id, conversation_id, seq, change, live_caught_up, live_caught_up_public)
VALUES (%(advisor)s, %(conversation)s, %(seq)s, nextval('{SEQUENCE}'), false, false)
ON CONFLICT ON CONSTRAINT read_state_unique DO UPDATE SET seq = EXCLUDED.seq, change = EXCLUDED.change
WHERE conversations_readstate.seq < EXCLUDED.seq
RETURNING seq, change
"""


class ReadPosition(NamedTuple):
    seq: int
    change: int  # the read state's change number
    conversation: Conversation  # as it was when that number was taken, with what conversation_dict reads


def conversation_read(*, conversation_id: int, advisor: Advisor, seq: int) -> ReadPosition:
    """Mark read up to `seq`; only this advisor's sockets hear of it. Returns the read position.

    The CONV it announces carries the read state's change number, which is newer than the conversation's own: its
    content must be at least as new, or a client that keeps the CONV with the highest `change` would drop a change
    made meanwhile (a label added while the read was on its way vanished from the row). Every change of the
    conversation takes its number under the row's lock: loaded under that lock, the row holds every change
    numbered before ours, and any later one waits for our commit and takes a higher number."""
    with transaction.atomic():
        conversation = lock_presented(conversation_id)
        read_seq, change = _read_up_to(conversation, advisor, seq, announce=False)
        events.conversation_read(conversation, advisor, read_seq, read_change=change)
    return ReadPosition(read_seq, change, conversation)


# ------------------------------------------------------------------------------ deletion


def conversation_delete(*, conversation_id: int) -> bool:
    """Delete a conversation with its visitor, items, read states and stored image files; False if already gone.

    The visitor goes too: it exists for this one conversation (one per site), holds the variables captured in
    it, and a visitor row without its conversation broke every later request of its token (500, 1011). Its
    token now names nobody, so the widget gets 401/4401 and starts a new session: a new visitor and
    conversation, like `visitor erase`. The inbox counts follow by the triggers on DELETE (migration 0002).
    Files are removed after commit: a rollback must not leave items pointing at deleted files."""
    return bool(conversations_delete(conversation_ids=[conversation_id]))


def conversations_delete(*, conversation_ids: list[int], where: Q | None = None, skip_locked: bool = False
                         ) -> list[int]:
    """conversation_delete for many at once, in one transaction; returns the ids deleted. `where`: only those that
    still match it once locked (retention: still closed since before the cutoff). `skip_locked`: leave out a
    conversation another transaction is writing (it is taken next time) rather than wait for it."""
    with transaction.atomic():
        rows = Conversation.objects.select_for_update(skip_locked=skip_locked).filter(pk__in=conversation_ids)
        if where is not None:
            rows = rows.filter(where)
        rows = list(rows.order_by("pk").values_list("pk", "visitor_id"))
        if not rows:
            return []
        deleted = [pk for pk, _ in rows]
        images = [name for name in Message.objects.filter(conversation_id__in=deleted).exclude(image="")
                  .values_list("image", flat=True) if name]
        Visitor.objects.filter(pk__in=[visitor_id for _, visitor_id in rows]).delete()  # cascades to the rest
        # The e-mails' "sent once" records name the conversation in their key and hold the recipient: for the
        # replies and the transcript, that is the visitor's own address, which must go with the rest.
        Notification.objects.filter(reduce(operator.or_, (Q(key__startswith=f"conversation:{pk}:")
                                                          for pk in deleted))).delete()
        transaction.on_commit(lambda: _delete_files(images))
        for conversation_id, visitor_id in rows:
            events.conversation_deleted(conversation_id=conversation_id, visitor_id=visitor_id)
    logger.info("%d conversation(s) deleted with their visitors and %d image files (first: %s)", len(rows),
                len(images), deleted[0])
    return deleted


def _delete_files(names: list[str]) -> None:
    storage = Message._meta.get_field("image").storage
    for name in names:
        try:
            storage.delete(name)
        except OSError:  # the rows are gone either way; a file left behind is logged for the operator
            logger.exception("could not delete the image file %s", name)
