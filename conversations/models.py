from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Visitor(models.Model):
    """A browser on a customer site, known by a token the widget keeps (only its hash is stored)."""

    site = models.ForeignKey("advisors.Site", verbose_name=_("site"), on_delete=models.CASCADE, related_name="visitors")
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True)
    variables = models.JSONField(_("variables"), default=dict, blank=True)
    sessions = models.PositiveIntegerField(_("sessions"), default=1)
    page = models.URLField(_("page"), max_length=2000, blank=True)
    first_seen_at = models.DateTimeField(_("first seen at"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen at"))
    online_sockets = models.IntegerField(_("online sockets"), default=0)
    # The widget's language when the visitor last came (its Accept-Language): e-mails to the visitor use it.
    language = models.CharField(_("language"), max_length=8, default="en", db_default="en", editable=False)

    class Meta:
        verbose_name = _("visitor")
        verbose_name_plural = _("visitors")

    def __str__(self) -> str:
        return f"Visitor #{self.pk}"

    @property
    def online(self) -> bool:
        return self.online_sockets > 0


class Conversation(models.Model):
    """One per visitor and site. Holds the fields the inbox list shows, kept up to date on every write,
    so the list never aggregates over messages."""

    class Status(models.TextChoices):
        BOT = "bot", _("Bot")
        LIVE = "live", _("Live")
        CLOSED = "closed", _("Closed")

    site = models.ForeignKey("advisors.Site", verbose_name=_("site"), on_delete=models.CASCADE,
                             related_name="conversations")
    visitor = models.OneToOneField(Visitor, verbose_name=_("visitor"), on_delete=models.CASCADE,
                                   related_name="conversation")
    status = models.CharField(_("status"), max_length=6, choices=Status.choices, default=Status.BOT)
    assigned = models.ForeignKey("advisors.Advisor", verbose_name=_("assigned"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="assigned_conversations")
    last_seq = models.PositiveIntegerField(_("last seq"), default=0)
    last_public_seq = models.PositiveIntegerField(_("last public seq"), default=0,
                                                  help_text=_("The last item a visitor may see."))
    last_message = models.ForeignKey("Message", verbose_name=_("last message"), null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    last_public_message = models.ForeignKey("Message", verbose_name=_("last public message"), null=True, blank=True,
                                            on_delete=models.SET_NULL, related_name="+")
    last_visitor_seq = models.PositiveIntegerField(_("last visitor seq"), default=0)
    last_advisor_seq = models.PositiveIntegerField(_("last advisor seq"), default=0)
    bot_position = models.JSONField(_("bot position"), null=True, blank=True)
    back_to_bot_label = models.CharField(_("back to bot label"), max_length=100, blank=True)
    waiting_since = models.DateTimeField(_("waiting since"), null=True, blank=True)
    # Routing (CONTRACT section 7): when the bot last sent the site's away message (once per escalation), and
    # whether the visitor's next e-mail address is the answer to it (routing.services.email_capture).
    away_sent_at = models.DateTimeField(_("away sent at"), null=True, blank=True)
    awaiting_email = models.BooleanField(_("awaiting email"), default=False, db_default=False)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), db_index=True,
                                      help_text=_("Last activity: the inbox orders by it."))
    # The figures of the current escalation (conversations.figures keeps them, and its reports.Episode row, on each
    # state change): when the visitor called for a human, was first taken or assigned, first answered.
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    first_reply_at = models.DateTimeField(_("first reply at"), null=True, blank=True)
    # Satisfaction: an advisor's closing asks the visitor once (the widget shows it while this holds); the last
    # rating given, {"score", "comment"}, is on CONV.
    rating_asked = models.BooleanField(_("rating asked"), default=False)
    rating = models.JSONField(_("rating"), null=True, blank=True)
    # Grows with every change (status, assignment, a new item): the inbox socket's `resume` sends what changed
    # after a client's `since`. From one server-wide source (conversations.changes), never a counter row.
    change = models.BigIntegerField(_("change"), default=0)
    # The labels shown on the conversation, [{"name", "color"}], a copy kept by productivity.services beside
    # productivity.ConversationLabel (which the list's label filter reads): CONV needs no join for them.
    labels = models.JSONField(_("labels"), null=True, blank=True, editable=False)  # null: none (a plain ADD COLUMN)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        indexes = [
            # The inbox lists: a box of one site (filters all and unread), and unassigned/mine/advisor=.
            models.Index(fields=["site", "status", "-updated_at", "-id"], name="conv_box"),
            models.Index(fields=["site", "assigned", "status", "-updated_at", "-id"], name="conv_assigned"),
            # The "mine" count and badge: an advisor's live conversations, without visiting the table.
            models.Index(fields=["assigned", "site"], condition=Q(status="live"), name="conv_live_assigned"),
            models.Index(fields=["change"], name="conv_change"),  # a resume's range scan
            models.Index(fields=["site", "created_at"], name="conv_site_created"),  # reports: started per day
        ]

    def __str__(self) -> str:
        return f"Conversation #{self.pk}"

    # Unread and unanswered are advisors' states. While the bot has the lead it answers the visitor and there
    # is nothing for an advisor to read or answer; the chatbot box would otherwise look unanswered forever.
    # selectors._unread_q is the same rule for the database; the inbox counts only ever count live ones.
    @property
    def unanswered(self) -> bool:
        return self.status != self.Status.BOT and self.last_visitor_seq > self.last_advisor_seq

    def unread_after(self, read_seq: int, *, licensed: bool) -> bool:
        """Whether an advisor who has read up to `read_seq` has something new here."""
        last_seq = self.last_seq if licensed else self.last_public_seq
        return self.status != self.Status.BOT and last_seq > read_seq


def message_image_path(instance: "Message", filename: str) -> str:
    return f"conversations/{filename}"


class Message(models.Model):
    """One item of a conversation's timeline: text, image, note or event, numbered by a gapless `seq`."""

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        IMAGE = "image", _("Image")
        NOTE = "note", _("Note")
        EVENT = "event", _("Event")

    class Sender(models.TextChoices):
        VISITOR = "visitor", _("Visitor")
        BOT = "bot", _("Bot")
        ADVISOR = "advisor", _("Advisor")
        SYSTEM = "system", _("System")

    conversation = models.ForeignKey(Conversation, verbose_name=_("conversation"), on_delete=models.CASCADE,
                                     related_name="messages")
    seq = models.PositiveIntegerField(_("seq"))
    kind = models.CharField(_("kind"), max_length=5, choices=Kind.choices)
    sender = models.CharField(_("sender"), max_length=7, choices=Sender.choices)
    text = models.TextField(_("text"), blank=True)
    image = models.FileField(_("image"), upload_to=message_image_path, blank=True, max_length=200)
    image_url = models.CharField(_("image url"), max_length=500, blank=True,
                                 help_text=_("An image a bot step names by URL."))
    # The stored image's size, upright: clients reserve its room before it loads, so a thread stays at its end.
    image_width = models.PositiveIntegerField(_("image width"), null=True, blank=True)
    image_height = models.PositiveIntegerField(_("image height"), null=True, blank=True)
    buttons = models.JSONField(_("buttons"), default=list, blank=True)
    input = models.JSONField(_("input"), null=True, blank=True)
    advisor = models.ForeignKey("advisors.Advisor", verbose_name=_("advisor"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    client_id = models.CharField(_("client id"), max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique"),
            # A client_id is unique per conversation and sender: the visitor, or one advisor (two advisors may
            # happen to choose the same string). Bot and system items carry none.
            models.UniqueConstraint(fields=["conversation", "client_id"], name="message_client_id_visitor",
                                    condition=Q(client_id__isnull=False, sender="visitor")),
            models.UniqueConstraint(fields=["conversation", "client_id", "advisor"], name="message_client_id_advisor",
                                    condition=Q(client_id__isnull=False, sender="advisor")),
        ]
        indexes = [
            # services._repeated looks a client_id up for every sender at once: the partial unique indexes above
            # cannot serve that query (PostgreSQL walked the conversation's items instead).
            models.Index(fields=["conversation", "client_id"], condition=Q(client_id__isnull=False),
                         name="message_client_id"),
        ]
        ordering = ["conversation", "seq"]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq} {self.kind}"

    @property
    def visible_to_visitor(self) -> bool:
        return self.kind != self.Kind.NOTE


class ReadState(models.Model):
    """How far one advisor has read one conversation.

    `site`, `live_caught_up` and `live_caught_up_public` are copies kept by database triggers (migration 0002),
    never by Python: whether this read position reaches the conversation's last item (or last public item, for
    an advisor without a license) while the conversation is live and has items. They let the inbox count unread
    live conversations from a small partial index instead of joining every live conversation to its reads."""

    advisor = models.ForeignKey("advisors.Advisor", on_delete=models.CASCADE, related_name="reads")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="reads")
    seq = models.PositiveIntegerField(default=0)
    site = models.ForeignKey("advisors.Site", null=True, blank=True, editable=False, on_delete=models.DO_NOTHING,
                             db_constraint=False, db_index=False, related_name="+",
                             help_text=_("The conversation's site (trigger)."))
    live_caught_up = models.BooleanField(default=False, db_default=False, editable=False)
    live_caught_up_public = models.BooleanField(default=False, db_default=False, editable=False)
    # The change number of this advisor's last read (same source as Conversation.change): read state is news
    # only for its advisor, so a resume finds it here rather than on the shared conversation row.
    change = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["advisor", "conversation"], name="read_state_unique")]
        indexes = [
            models.Index(fields=["advisor", "change"], name="read_state_change"),
            models.Index(fields=["advisor", "site"], condition=Q(live_caught_up=True), name="read_live_caught_up"),
            models.Index(fields=["advisor", "site"], condition=Q(live_caught_up_public=True),
                         name="read_live_caught_up_public"),
        ]


class ConversationTally(models.Model):
    """How many conversations of a site are in each bucket, kept by database triggers on every insert, update
    and delete of a conversation (migration 0002), whichever code path writes it. Buckets: the statuses `bot`,
    `live`, `closed`; `unassigned` (live, nobody assigned); `live_with_items` and `live_with_public_items`
    (live with at least one item, or one a visitor may see: the most an advisor can have unread).

    Each bucket is spread over SLOTS rows (conversation id modulo SLOTS) so that conversations changing
    status at the same moment on one site rarely wait for the same row; a count is the sum of its slots."""

    SLOTS = 8
    BUCKETS = ("bot", "live", "closed", "unassigned", "live_with_items", "live_with_public_items")

    # No database constraint: a site's rows outlive it at zero (its conversations are deleted first, each one
    # decrementing), and never block deleting it.
    site = models.ForeignKey("advisors.Site", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
                             related_name="+")
    bucket = models.CharField(max_length=24)
    slot = models.PositiveSmallIntegerField()
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "bucket", "slot"], name="conversation_tally_unique")]

    def __str__(self) -> str:
        return f"site {self.site_id} {self.bucket}[{self.slot}] = {self.count}"
