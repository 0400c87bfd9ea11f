"""Every write to visitors, conversations and their timeline. Each runs in one transaction, locks the
conversation row (which serializes its `seq`), and announces what changed on commit (conversations.events)."""
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image as PILImage

from advisors.models import Advisor, Site
from advisors.services import advisor_record_activity
from chatbots import engine
from chatbots.selectors import flow_for
from conversations import events
from conversations.errors import Conflict, Forbidden, Refused
from conversations.images import ProcessedImage
from conversations.models import Conversation, Message, ReadState, Visitor
from conversations.presenters import timestamp

logger = logging.getLogger(__name__)

TOKEN_TTL = timedelta(days=180)
Status = Conversation.Status
Kind = Message.Kind
Sender = Message.Sender


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
        self.previous_public_seq = conversation.last_public_seq

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
        message.save()
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

    def event(self, text: str) -> Message:
        return self.append(kind=Kind.EVENT, sender=Sender.SYSTEM, text=text)

    def save(self) -> None:
        conversation = self.conversation
        conversation.updated_at = timezone.now()
        self.dirty.add("updated_at")
        conversation.save(update_fields=sorted(self.dirty))
        if (conversation.status != self.status_before or conversation.assigned_id != self.assigned_before
                or conversation.back_to_bot_label != self.back_before):
            events.conversation_changed(_load_related(conversation))


def _upright_size(image: ProcessedImage) -> tuple[int, int]:
    """The stored file's width and height. ProcessedImage's are the upload's, before its EXIF orientation was
    applied (a portrait photo taken sideways swaps them). Reads the header only."""
    image.file.seek(0)
    with PILImage.open(image.file) as stored:
        size = stored.size
    image.file.seek(0)
    return size


def _lock(**lookup) -> Conversation:
    """The conversation with its row locked, which serializes its `seq`. Its own columns only: that is all a
    message to a live conversation needs, and joining the related rows cost that path a fifth of its time
    (profiled). The bot, a reopening and an announcement load them when they need them (_load_related)."""
    return Conversation.objects.select_for_update().get(**lookup)


_RELATED = ("site", "visitor", "assigned")


def _load_related(conversation: Conversation) -> Conversation:
    """Site (with its chatbot), visitor and assigned advisor (with its user), in one query, unless loaded already.
    Read under the conversation's row lock, like everything the services write about it."""
    missing = [name for name in _RELATED if not Conversation._meta.get_field(name).is_cached(conversation)]
    if missing:
        loaded = (Conversation.objects.select_related("site__chatbot", "visitor", "assigned__user")
                  .get(pk=conversation.pk))
        for name in missing:
            if name == "assigned" and loaded.assigned_id != conversation.assigned_id:
                continue  # changed in memory (set to an id only): leave it to the ordinary lazy load
            setattr(conversation, name, getattr(loaded, name))
    return conversation


def _repeated(conversation: Conversation, client_id: str) -> Message | None:
    """The stored item of a repeated client_id. A bare id first: almost every send is new, and the unique
    (conversation, client_id) needs no ORDER BY (Message's default ordering) nor the advisor's rows to tell."""
    found = list(Message.objects.filter(conversation=conversation, client_id=client_id)
                 .order_by().values_list("pk", flat=True)[:1])
    return Message.objects.select_related("advisor__user").get(pk=found[0]) if found else None


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
        visitor.save(update_fields=["variables"])
    if result.escalation is not None:
        _escalate(timeline, assign_to=result.escalation.assign_to, back_label=result.escalation.back_label or "")
    return result


def _bot_or_human(timeline: _Timeline, event: engine.Event) -> None:
    if _run_bot(timeline, event) is None:
        _wait_for_human(timeline, notify=event.kind != "start")


def _escalate(timeline: _Timeline, *, assign_to: str | None, back_label: str) -> None:
    conversation = timeline.conversation
    advisor = None
    if assign_to:
        advisor = (Advisor.objects.select_related("user")
                   .filter(user__username=assign_to, account_id=conversation.site.account_id,
                           sites=conversation.site_id).first())
        if advisor is None:
            logger.warning("escalation of conversation %s names %r, who is not an advisor of its site",
                           conversation.pk, assign_to)
    timeline.set(status=Status.LIVE, assigned=advisor, waiting_since=timezone.now(), back_to_bot_label=back_label,
                 closed_at=None)
    if advisor is not None:
        timeline.event(f"{advisor.display_name} joined the conversation")
    _notify_on_commit(conversation)


def _notify_on_commit(conversation: Conversation) -> None:
    """The e-mails of this escalation, and one reminder if it is still unassigned after the delay."""
    from conversations.tasks import escalation_notify, escalation_remind

    arguments = (conversation.pk, timestamp(conversation.waiting_since))
    delay = settings.LIVECHAT["REMINDER_DELAY_S"]

    def queue() -> None:
        escalation_notify.delay(*arguments)
        if delay > 0 and not settings.CELERY_TASK_ALWAYS_EAGER:  # eagerly, a countdown would block the chat
            escalation_remind.apply_async(arguments, countdown=delay)

    transaction.on_commit(queue)


def _wait_for_human(timeline: _Timeline, *, notify: bool) -> None:
    """Live and unassigned. Advisors are e-mailed once the visitor has said something, not on a bare visit."""
    timeline.set(status=Status.LIVE, assigned=None, waiting_since=timezone.now(), closed_at=None)
    if notify:
        _notify_on_commit(timeline.conversation)


# ------------------------------------------------------------------------------ visitors


def visitor_session_start(*, site: Site, token: str | None = None, page: str = "") -> Session:
    """Resume the visitor a token names (a new session after 30 idle minutes), or start a new one."""
    now = timezone.now()
    if token:
        visitor = (Visitor.objects.select_related("conversation__assigned__user", "site")
                   .filter(token_hash=token_hash(token), site=site).first())
        if visitor is not None and visitor.last_seen_at >= now - TOKEN_TTL:
            changes = {"last_seen_at": now}
            new_session = visitor.last_seen_at < now - timedelta(seconds=settings.LIVECHAT["SESSION_IDLE_S"])
            if new_session:
                changes["sessions"] = F("sessions") + 1
            moved = bool(page) and page != visitor.page
            if page:
                changes["page"] = page
            with transaction.atomic():
                Visitor.objects.filter(pk=visitor.pk).update(**changes)
                if moved or new_session:
                    # The inbox's side panel shows the visitor's page and sessions: it hears of them as it hears
                    # of any change of the conversation (the widget's view did not change).
                    visitor.page = page or visitor.page
                    visitor.sessions += 1 if new_session else 0
                    conversation = _load_related(visitor.conversation)
                    conversation.visitor = visitor
                    events.conversation_changed(conversation, widget=False)
            return Session(visitor, visitor.conversation, token, created=False)

    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        visitor = Visitor.objects.create(site=site, token_hash=token_hash(token), last_seen_at=now, page=page)
        conversation = Conversation.objects.create(site=site, visitor=visitor, updated_at=now)
        timeline = _Timeline(conversation)
        if site.livechat_only or site.chatbot is None:
            _wait_for_human(timeline, notify=False)
        else:
            _bot_or_human(timeline, engine.Event(kind="start"))
        timeline.save()
        if timeline.status_before == conversation.status:  # a new bot conversation is news for the inbox too
            events.conversation_changed(conversation, widget=False)
    return Session(visitor, conversation, token, created=True)


def visitor_for_token(*, site_key: str, token: str) -> Visitor | None:
    return (Visitor.objects.select_related("site", "conversation")
            .filter(token_hash=token_hash(token), site__key=site_key,
                    last_seen_at__gte=timezone.now() - TOKEN_TTL).first())


def _reopen_for_visitor(timeline: _Timeline) -> None:
    """A visitor writing to a closed conversation brings it back: to the bot, or waiting for a human."""
    conversation = _load_related(timeline.conversation)
    if conversation.site.livechat_only or conversation.site.chatbot is None:
        _wait_for_human(timeline, notify=True)
    else:
        # position None: whatever the bot was waiting for when it closed, the new text is free text
        timeline.set(status=Status.BOT, assigned=None, closed_at=None, back_to_bot_label="", waiting_since=None,
                     bot_position=None)


def _visitor_send(*, visitor: Visitor, client_id: str, write: Callable[[_Timeline], None]) -> Sent:
    """One visitor send: lock, answer a repeated client_id with the stored item, else write and save."""
    with transaction.atomic():
        conversation = _lock(visitor=visitor)
        if (repeated := _repeated(conversation, client_id)) is not None:
            return Sent([repeated], created=False, conversation=conversation)
        timeline = _Timeline(conversation)
        write(timeline)
        timeline.save()
    return timeline.sent()


def visitor_message_send(*, visitor: Visitor, client_id: str, text: str) -> Sent:
    def write(timeline: _Timeline) -> None:
        conversation = timeline.conversation
        if conversation.status == Status.CLOSED:
            _reopen_for_visitor(timeline)
        first_words = conversation.last_visitor_seq == 0
        timeline.append(kind=Kind.TEXT, sender=Sender.VISITOR, text=text, client_id=client_id)
        if first_words and conversation.status == Status.LIVE and conversation.assigned_id is None:
            _notify_on_commit(conversation)  # a live-chat-only site: the first words are the call for a human
        if conversation.status == Status.BOT:
            _bot_or_human(timeline, engine.Event(kind="text", text=text))

    return _visitor_send(visitor=visitor, client_id=client_id, write=write)


def visitor_button_press(*, visitor: Visitor, client_id: str, button: str) -> Sent:
    """A button press is stored as the visitor's text (the label), then the bot follows the button."""
    def write(timeline: _Timeline) -> None:
        conversation = _load_related(timeline.conversation)
        chatbot = conversation.site.chatbot
        try:
            label = flow_for(chatbot).button_label(button) if chatbot else None
        except engine.FlowInvalid:
            label = None
        if label is None:
            raise Refused(f"Unknown button {button!r}.")
        if conversation.status == Status.CLOSED:
            _reopen_for_visitor(timeline)
        timeline.append(kind=Kind.TEXT, sender=Sender.VISITOR, text=label, client_id=client_id)
        if conversation.status == Status.BOT:
            _bot_or_human(timeline, engine.Event(kind="button", button=button))

    return _visitor_send(visitor=visitor, client_id=client_id, write=write)


def visitor_back_to_bot(*, visitor: Visitor, client_id: str) -> Sent:
    """While a human has the lead, the visitor may hand the conversation back to the bot's return sequence."""
    def write(timeline: _Timeline) -> None:
        conversation = timeline.conversation
        if conversation.status != Status.LIVE or not conversation.back_to_bot_label:
            raise Refused("The chatbot can take over only while an advisor has the lead and the flow offers it.")
        timeline.append(kind=Kind.TEXT, sender=Sender.VISITOR, text=conversation.back_to_bot_label,
                        client_id=client_id)
        timeline.set(status=Status.BOT, assigned=None, waiting_since=None, back_to_bot_label="")
        _bot_or_human(timeline, engine.Event(kind="back_to_bot"))

    return _visitor_send(visitor=visitor, client_id=client_id, write=write)


def visitor_image_send(*, visitor: Visitor, client_id: str, image: ProcessedImage) -> Sent:
    def write(timeline: _Timeline) -> None:
        if timeline.conversation.status == Status.CLOSED:
            _reopen_for_visitor(timeline)
        timeline.append(kind=Kind.IMAGE, sender=Sender.VISITOR, client_id=client_id, image=image)

    return _visitor_send(visitor=visitor, client_id=client_id, write=write)


def visitor_presence_set(*, visitor_id: int, online: bool) -> None:
    """Count the visitor's open sockets; the inbox hears only when the visitor comes or goes."""
    with transaction.atomic():
        visitor = Visitor.objects.select_for_update().get(pk=visitor_id)
        was_online = visitor.online
        visitor.online_sockets = max(0, visitor.online_sockets + (1 if online else -1))
        visitor.last_seen_at = timezone.now()
        visitor.save(update_fields=["online_sockets", "last_seen_at"])
        if visitor.online != was_online:
            conversation = Conversation.objects.get(visitor=visitor)
            events.visitor_presence(conversation, online=visitor.online)


# ------------------------------------------------------------------------------ advisors


def advisor_message_send(*, conversation_id: int, advisor: Advisor, client_id: str, text: str = "",
                         note: bool = False, image: ProcessedImage | None = None) -> Sent:
    """A reply (or a private note). Replying to an unassigned conversation assigns it to the replier."""
    if note and not advisor.licensed:
        raise Forbidden("Notes need a Livechat Premium license.")
    with transaction.atomic():
        conversation = _lock(pk=conversation_id)
        if (repeated := _repeated(conversation, client_id)) is not None:
            return Sent([repeated], created=False, conversation=conversation)
        if conversation.status == Status.CLOSED:
            raise Conflict("The conversation is closed; reopen it to reply.", code="closed")
        timeline = _Timeline(conversation)
        if not note:
            if conversation.assigned_id is None:
                timeline.set(assigned=advisor)
                timeline.event(f"{advisor.display_name} joined the conversation")
            timeline.set(status=Status.LIVE, waiting_since=None)
        kind = Kind.NOTE if note else (Kind.IMAGE if image is not None else Kind.TEXT)
        message = timeline.append(kind=kind, sender=Sender.ADVISOR, text=text, client_id=client_id, advisor=advisor,
                                  image=image)
        timeline.save()
        _read_up_to(conversation, advisor, message.seq)
        advisor_record_activity(advisor_id=advisor.pk, messages=1)
    return timeline.sent()


def conversation_take(*, conversation_id: int, advisor: Advisor) -> Conversation:
    with transaction.atomic():
        conversation = _lock(pk=conversation_id)
        if conversation.assigned_id not in (None, advisor.pk):
            raise Conflict(f"{_load_related(conversation).assigned.display_name} already has this conversation.", code="assigned")
        if conversation.status == Status.CLOSED:
            raise Conflict("The conversation is closed; reopen it first.", code="closed")
        if conversation.assigned_id == advisor.pk and conversation.status == Status.LIVE:
            return conversation
        timeline = _Timeline(conversation)
        timeline.set(assigned=advisor, status=Status.LIVE)
        timeline.event(f"{advisor.display_name} joined the conversation")
        timeline.save()
        advisor_record_activity(advisor_id=advisor.pk)
    return conversation


def conversation_assign(*, conversation_id: int, by: Advisor, username: str | None) -> Conversation:
    with transaction.atomic():
        conversation = _lock(pk=conversation_id)
        target = None
        if username:
            target = (Advisor.objects.select_related("user")
                      .filter(user__username=username, account_id=by.account_id, sites=conversation.site_id).first())
            if target is None:
                raise Refused("No advisor of this site has that username.",
                              fields={"advisor": ["Not an advisor of this conversation's site."]})
        if conversation.assigned_id == (target.pk if target else None):
            return conversation
        timeline = _Timeline(conversation)
        timeline.set(assigned=target)
        if target is not None:
            if conversation.status == Status.BOT:
                timeline.set(status=Status.LIVE)
            timeline.event(f"{target.display_name} joined the conversation")
        timeline.save()
        advisor_record_activity(advisor_id=by.pk)
    return conversation


def conversation_close(*, conversation_id: int, advisor: Advisor) -> Conversation:
    with transaction.atomic():
        conversation = _lock(pk=conversation_id)
        if conversation.status == Status.CLOSED:
            return conversation
        timeline = _Timeline(conversation)
        timeline.set(status=Status.CLOSED, closed_at=timezone.now(), waiting_since=None)
        timeline.event(f"{advisor.display_name} closed the conversation")
        timeline.save()
        advisor_record_activity(advisor_id=advisor.pk)
    return conversation


def conversation_reopen(*, conversation_id: int, advisor: Advisor) -> Conversation:
    with transaction.atomic():
        conversation = _lock(pk=conversation_id)
        if conversation.status != Status.CLOSED:
            return conversation
        timeline = _Timeline(conversation)
        timeline.set(status=Status.LIVE, closed_at=None)
        timeline.event(f"{advisor.display_name} reopened the conversation")
        timeline.save()
        advisor_record_activity(advisor_id=advisor.pk)
    return conversation


def _read_up_to(conversation: Conversation, advisor: Advisor, seq: int) -> int:
    seq = max(0, min(seq, conversation.last_seq))
    state, created = ReadState.objects.get_or_create(advisor=advisor, conversation=conversation,
                                                     defaults={"seq": seq})
    if not created and state.seq < seq:
        ReadState.objects.filter(pk=state.pk, seq__lt=seq).update(seq=seq)
    return max(seq, state.seq)


def conversation_read(*, conversation: Conversation, advisor: Advisor, seq: int) -> int:
    """Mark read up to `seq`; only this advisor's sockets hear of it. Returns the read position."""
    with transaction.atomic():
        read_seq = _read_up_to(conversation, advisor, seq)
        events.conversation_read(conversation, advisor, read_seq)
    return read_seq
