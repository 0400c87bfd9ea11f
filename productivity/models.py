from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

SHORTCUT_PATTERN = r"^[a-z0-9_-]{1,32}$"


class CannedResponse(models.Model):
    """A saved reply. Account-wide (`owner` empty: staff manage it) or personal (its owner's alone). A shortcut is
    unique per scope and owner: one account-wide `/hello`, and each advisor may have a personal `/hello` too."""

    account = models.ForeignKey("advisors.Account", verbose_name=_("account"), on_delete=models.CASCADE,
                                related_name="canned_responses")
    owner = models.ForeignKey("advisors.Advisor", verbose_name=_("owner"), null=True, blank=True,
                              on_delete=models.CASCADE, related_name="canned_responses",
                              help_text=_("Empty: the whole account's."))
    shortcut = models.CharField(_("shortcut"), max_length=32,
                                help_text=_("1-32 of a-z 0-9 - _, typed after / in the composer."))
    text = models.TextField(_("text"), max_length=4000,
                            help_text=_("{{VARIABLE}} is filled from the conversation when inserted."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("canned response")
        verbose_name_plural = _("canned responses")
        constraints = [
            models.UniqueConstraint(fields=["account", "shortcut"], condition=Q(owner__isnull=True),
                                    name="canned_account_shortcut_unique"),
            models.UniqueConstraint(fields=["owner", "shortcut"], condition=Q(owner__isnull=False),
                                    name="canned_personal_shortcut_unique"),
        ]
        indexes = [models.Index(fields=["account", "owner", "shortcut"], name="canned_list")]
        ordering = ["shortcut", "id"]

    def __str__(self) -> str:
        return f"/{self.shortcut}"

    @property
    def scope(self) -> str:
        return "account" if self.owner_id is None else "personal"


class Label(models.Model):
    """One of the account's labels, with its colour."""

    account = models.ForeignKey("advisors.Account", verbose_name=_("account"), on_delete=models.CASCADE,
                                related_name="labels")
    name = models.CharField(_("name"), max_length=40)
    color = models.CharField(_("color"), max_length=7, default="#64748b", help_text=_("#rrggbb"))

    class Meta:
        verbose_name = _("label")
        verbose_name_plural = _("labels")
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="label_name_unique")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ConversationLabel(models.Model):
    """A label on a conversation. The list's `label=` filter reads this table (by label, then conversation); the
    CONV shape reads the copy on the conversation row (Conversation.labels), kept by productivity.services."""

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey("conversations.Conversation", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["label", "conversation"], name="conversation_label_unique")]
        indexes = [models.Index(fields=["conversation"], name="conversation_label_conv")]


class TranscriptRequest(models.Model):
    """A visitor's request for a transcript by e-mail (the widget's POST /api/widget/transcript)."""

    conversation = models.ForeignKey("conversations.Conversation", on_delete=models.CASCADE, related_name="+")
    email = models.EmailField()
    upto_seq = models.PositiveIntegerField(help_text=_("The last item when it was asked for."))
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
