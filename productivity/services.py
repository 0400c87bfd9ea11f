"""Writes for canned responses, labels and transcript requests. Who may write what is decided here (staff for the
account's canned responses and labels; a conversation through conversations.selectors' access check, done by the
caller, which hands the conversation id)."""
import re

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from advisors.models import Advisor
from advisors.selectors import advisor_is_staff
from conversations import events, ratelimit
from conversations import services as conversation_services
from conversations.changes import next_change
from conversations.errors import Conflict, Forbidden, NotFound, RateLimited, Refused, refuse_nul
from conversations.models import Conversation
from productivity.models import SHORTCUT_PATTERN, CannedResponse, ConversationLabel, Label, TranscriptRequest

_SHORTCUT = re.compile(SHORTCUT_PATTERN)
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_LABEL = re.compile(r"^[^\x00-\x1f/]{1,40}$")
MAX_TEXT = 4000
TRANSCRIPTS_PER_HOUR = 3


def _shortcut_clean(value) -> str:
    if not isinstance(value, str) or not _SHORTCUT.match(value):
        raise Refused(_("shortcut must be 1-32 of a-z 0-9 - _."), fields={"shortcut": [_("1-32 of a-z 0-9 - _.")]})
    return value


def _text_clean(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Refused(_("text is required."), fields={"text": [_("Required.")]})
    refuse_nul(value, "text")
    if len(value) > MAX_TEXT:
        raise Refused(_("text is limited to %(max)s characters.") % {"max": MAX_TEXT}, code="too_long",
                      fields={"text": [_("At most %(max)s characters.") % {"max": MAX_TEXT}]})
    return value


def _may_write(advisor: Advisor, canned: CannedResponse) -> None:
    if canned.owner_id is None and not advisor_is_staff(advisor):
        raise Forbidden(_("Only staff manage the account's canned responses."))
    if canned.owner_id is not None and canned.owner_id != advisor.pk:
        raise NotFound(_("No such canned response."))


def _save(canned: CannedResponse, **kwargs) -> CannedResponse:
    try:
        with transaction.atomic():
            canned.save(**kwargs)
    except IntegrityError:
        raise Conflict(_("/%(shortcut)s is already taken in this scope.") % {"shortcut": canned.shortcut},
                       fields={"shortcut": [_("Already taken.")]}) from None
    return canned


def canned_create(*, advisor: Advisor, shortcut, text, scope) -> CannedResponse:
    if scope not in ("account", "personal"):
        raise Refused(_("scope must be account or personal."), fields={"scope": [_("account or personal.")]})
    canned = CannedResponse(account_id=advisor.account_id, owner=advisor if scope == "personal" else None,
                            shortcut=_shortcut_clean(shortcut), text=_text_clean(text))
    _may_write(advisor, canned)
    return _save(canned)


def canned_update(*, advisor: Advisor, canned: CannedResponse, **changes) -> CannedResponse:
    """`shortcut` and `text` may change; the scope may not (delete and create instead)."""
    _may_write(advisor, canned)
    if "shortcut" in changes:
        canned.shortcut = _shortcut_clean(changes["shortcut"])
    if "text" in changes:
        canned.text = _text_clean(changes["text"])
    return _save(canned, update_fields=["shortcut", "text", "updated_at"])


def canned_delete(*, advisor: Advisor, canned: CannedResponse) -> None:
    _may_write(advisor, canned)
    canned.delete()


# ------------------------------------------------------------------------------ labels


def label_create(*, advisor: Advisor, name, color="#64748b") -> Label:
    if not advisor_is_staff(advisor):
        raise Forbidden(_("Only staff manage the account's labels."))
    if not isinstance(name, str) or not _LABEL.match(name.strip()):
        raise Refused(_("name must be 1-40 characters, without / or control characters."),
                      fields={"name": [_("1-40 characters, no /.")]})
    if not isinstance(color, str) or not _COLOR.match(color):
        raise Refused(_("color must be #rrggbb."), fields={"color": [_("#rrggbb.")]})
    try:
        with transaction.atomic():
            return Label.objects.create(account_id=advisor.account_id, name=name.strip(), color=color.lower())
    except IntegrityError:
        raise Conflict(_("The account already has this label."), fields={"name": [_("Already exists.")]}) from None


def label_delete(*, advisor: Advisor, name: str) -> None:
    """Deletes the label and takes it off every conversation that carried it (each announced to the inbox)."""
    if not advisor_is_staff(advisor):
        raise Forbidden(_("Only staff manage the account's labels."))
    label = Label.objects.filter(account_id=advisor.account_id, name=name).first()
    if label is None:
        raise NotFound(_("No such label."))
    label_delete_any(label=label)


def label_delete_any(*, label: Label) -> None:
    """Deletes a label (the API for staff, or the admin) and takes it off its conversations."""
    with transaction.atomic():
        conversation_ids = list(ConversationLabel.objects.filter(label=label).values_list("conversation_id",
                                                                                          flat=True))
        label.delete()
        for conversation_id in conversation_ids:
            _labels_copy(conversation_id)


def label_changed(*, label_id: int) -> None:
    """A label renamed or recoloured (the admin): the copies on its conversations follow."""
    with transaction.atomic():
        for conversation_id in ConversationLabel.objects.filter(label_id=label_id).values_list("conversation_id",
                                                                                               flat=True):
            _labels_copy(conversation_id)


def _labels_copy(conversation_id: int) -> Conversation:
    """Copies the conversation's labels onto its row (what CONV shows), takes a change number so that a resume
    finds it, and announces the CONV on commit. The row is locked: two label changes never lose one another."""
    conversation = conversation_services.lock_presented(conversation_id)
    labels = list(Label.objects.filter(pk__in=ConversationLabel.objects.filter(conversation_id=conversation_id)
                                       .values("label_id")).order_by("name").values("name", "color"))
    conversation.labels = labels or None
    conversation.change = next_change()
    conversation.save(update_fields=["labels", "change"])
    events.conversation_changed(conversation, widget=False)
    return conversation


def conversation_labels_change(*, advisor: Advisor, conversation_id: int, add=(), remove=()) -> Conversation:
    """Adds and removes the account's labels (by name) on a conversation the caller checked access to. A name the
    account does not have is refused (400) and changes nothing."""
    for names, field in ((add, "add"), (remove, "remove")):
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names) or len(names) > 50:
            raise Refused(_("%(field)s must be a list of label names.") % {"field": field},
                          fields={field: [_("A list of names.")]})
    wanted = set(add) | set(remove)
    labels = {label.name: label for label in Label.objects.filter(account_id=advisor.account_id, name__in=wanted)}
    unknown = sorted(wanted - labels.keys())
    if unknown:
        raise Refused(_("No such label: %(labels)s.") % {"labels": ", ".join(unknown)}, fields={"labels": unknown})
    with transaction.atomic():
        Conversation.objects.select_for_update().filter(pk=conversation_id).values_list("pk", flat=True).first()
        ConversationLabel.objects.filter(conversation_id=conversation_id,
                                         label__in=[labels[n] for n in set(remove) - set(add)]).delete()
        ConversationLabel.objects.bulk_create(
            [ConversationLabel(conversation_id=conversation_id, label=labels[n]) for n in set(add)],
            ignore_conflicts=True)
        return _labels_copy(conversation_id)


# ------------------------------------------------------------------------------ transcripts


def transcript_request(*, visitor, email: str) -> TranscriptRequest:
    """The visitor asks for the transcript by e-mail: only once the conversation is closed (409 before), at most
    TRANSCRIPTS_PER_HOUR an hour per visitor (429). The e-mail leaves from a task, on commit; it never has a note."""
    conversation = visitor.conversation
    if conversation.status != Conversation.Status.CLOSED:
        raise Conflict(_("A transcript can be sent once the conversation is closed."), code="conflict")
    wait = ratelimit.hit(f"transcript:{visitor.pk}", limit=TRANSCRIPTS_PER_HOUR, window_s=3600)
    if wait is not None:
        raise RateLimited(_("At most 3 transcripts an hour."), retry_after=wait)
    with transaction.atomic():
        request = TranscriptRequest.objects.create(conversation=conversation, email=email,
                                                   upto_seq=conversation.last_seq)

        def queue() -> None:
            from productivity.tasks import transcript_email

            transcript_email.delay(request.pk)

        transaction.on_commit(queue)
    return request


def transcript_mark_sent(*, request: TranscriptRequest) -> None:
    request.sent_at = timezone.now()
    request.save(update_fields=["sent_at"])


