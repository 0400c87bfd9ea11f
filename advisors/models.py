import secrets
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


def timezone_validate(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a time zone name (e.g. Europe/Paris)."),
                              params={"value": repr(value)})


def new_site_key() -> str:
    return secrets.token_urlsafe(12)


class Account(models.Model):
    """The customer company: it holds the live-chat license quota."""

    name = models.CharField(_("name"), max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="owned_accounts")
    license_quota = models.PositiveIntegerField(_("license quota"), default=5)
    timezone = models.CharField(_("timezone"), max_length=64, default="UTC", blank=True, validators=[timezone_validate],
                                help_text=_("Reports count days in this time zone, e.g. Europe/Paris (empty: UTC)."))
    retention_days = models.PositiveIntegerField(
        _("retention days"), null=True, blank=True,
        help_text=_("Closed conversations older than this many days are erased every night; empty keeps them."))

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    account = models.ForeignKey(Account, verbose_name=_("account"), on_delete=models.CASCADE, related_name="sites")
    name = models.CharField(_("name"), max_length=100)
    key = models.SlugField(_("key"), max_length=64, unique=True, default=new_site_key,
                           help_text=_("The public key the embed snippet names in data-site."))
    color = models.CharField(_("color"), max_length=7, default="#2563eb")
    allowed_origins = models.JSONField(_("allowed origins"), default=list, blank=True,
                                       help_text=_("Origins allowed to embed the widget, e.g. https://shop.example.com"))
    chatbot = models.ForeignKey("chatbots.Chatbot", verbose_name=_("chatbot"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="sites")
    livechat_only = models.BooleanField(_("live-chat-only mode"), default=False,
                                        help_text=_("Skip the bot: conversations start waiting for a human."))
    csat_enabled = models.BooleanField(_("ask visitors to rate conversations"), default=True,
                                       help_text=_("When an advisor closes a conversation, the widget asks the "
                                                   "visitor how it was (1 to 5, an optional comment)."))

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")

    def __str__(self) -> str:
        return self.name

    @property
    def mode(self) -> str:
        return "livechat" if self.livechat_only or self.chatbot_id is None else "chatbot"


class Advisor(models.Model):
    """A collaborator of the account who may work in the inbox."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE,
                                related_name="advisor")
    account = models.ForeignKey(Account, verbose_name=_("account"), on_delete=models.CASCADE, related_name="advisors")
    display_name = models.CharField(_("display name"), max_length=100, help_text=_("The name visitors see."))
    avatar = models.ImageField(_("avatar"), upload_to="avatars/", blank=True)
    last_activity_at = models.DateTimeField(_("last activity at"), null=True, blank=True, editable=False)
    message_count = models.PositiveIntegerField(_("message count"), default=0, editable=False)
    licensed = models.BooleanField(_("Livechat Premium"), default=False, editable=False)
    sees_chatbot = models.BooleanField(_("show discussions where the chatbot has the lead"), default=False)
    email_on_escalation = models.BooleanField(_("e-mail me when a visitor asks for a human"), default=True)
    sound = models.BooleanField(_("sound on new visitor messages"), default=True)
    # "" follows the browser (Accept-Language); otherwise one of settings.LANGUAGES, for the inbox, the login's
    # aftermath, the admin and the e-mails sent to this advisor.
    language = models.CharField(_("language"), max_length=8, blank=True, default="", choices=settings.LANGUAGES,
                                help_text=_("Empty: the browser's language."))
    sites = models.ManyToManyField(Site, verbose_name=_("sites"), blank=True, related_name="advisors")

    class Meta:
        verbose_name = _("advisor")
        verbose_name_plural = _("advisors")
        indexes = [models.Index(fields=["account", "licensed"])]

    def __str__(self) -> str:
        return self.display_name or self.user.get_username()

    @property
    def username(self) -> str:
        return self.user.get_username()

    @property
    def email(self) -> str:
        return self.user.email


def invitation_secret() -> str:
    return secrets.token_urlsafe(32)


class Invitation(models.Model):
    """A single-use invitation to join the account as a collaborator, opened by a link that carries its own random
    secret, and valid for a while after its creation."""

    account = models.ForeignKey(Account, verbose_name=_("account"), on_delete=models.CASCADE,
                                related_name="invitations")
    email = models.EmailField(_("email"))
    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    sites = models.ManyToManyField(Site, verbose_name=_("sites"), blank=True)
    licensed = models.BooleanField(_("Livechat Premium"), default=False,
                                   help_text=_("Grant a license when the invitation is accepted, if one is left then."))
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("invited by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("accepted by"), null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    secret = models.CharField(_("secret"), max_length=64, default=invitation_secret, editable=False)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")

    def __str__(self) -> str:
        return self.email


class Notification(models.Model):
    """One e-mail to one recipient for one reason, recorded so a task run twice never sends it twice."""

    kind = models.CharField(max_length=20)  # escalation, reminder, invitation
    key = models.CharField(max_length=100, help_text=_("What it is about, e.g. conversation:45:escalation:7."))
    recipient = models.EmailField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key", "recipient"], name="notification_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} -> {self.recipient}"
