"""Availability and routing (CONTRACT section 7): an advisor's chosen status and capacity, a site's rules.

A row exists only once something was set: an advisor or a site without one has the defaults (online, no capacity
limit; manual assignment, always open, handoff after 120 s, no idle close), which is what the demo data uses."""
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

# Stored as written (English) on each site; marked so routing.services.away_send can send it translated.
DEFAULT_AWAY_MESSAGE = gettext_noop(
    "Nobody from our team is available right now. Leave your e-mail address and we will answer you there.")
DEFAULT_HANDOFF_TIMEOUT_S = 120


class AdvisorRouting(models.Model):
    advisor = models.OneToOneField("advisors.Advisor", verbose_name=_("advisor"), primary_key=True,
                                   on_delete=models.CASCADE, related_name="routing")
    away = models.BooleanField(_("away"), default=False,
                               help_text=_("Chosen in the inbox: away takes no new conversation."))
    capacity = models.PositiveIntegerField(
        _("capacity"), default=0,
        help_text=_("The most live conversations assigned at once by round robin; 0 means no limit."))
    last_assigned_at = models.DateTimeField(_("last assigned at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("availability")
        verbose_name_plural = _("availability")

    def __str__(self) -> str:
        return f"availability of advisor {self.advisor_id}"


class SiteRouting(models.Model):
    class Assignment(models.TextChoices):
        MANUAL = "manual", _("manual: advisors take conversations")
        ROUND_ROBIN = "round_robin", _("round robin among online advisors")

    site = models.OneToOneField("advisors.Site", verbose_name=_("site"), primary_key=True, on_delete=models.CASCADE,
                                related_name="routing")
    assignment = models.CharField(_("assignment"), max_length=11, choices=Assignment.choices, default=Assignment.MANUAL)
    hours = models.JSONField(
        _("hours"), null=True, blank=True,
        help_text=_('Empty: always open. Else {"timezone": "Europe/Paris", "intervals": [{"day": 0, "start": "09:00", '
                    '"end": "18:00"}, …]} (day 0 is Monday; "24:00" ends at midnight).'))
    away_message = models.TextField(_("away message"), default=DEFAULT_AWAY_MESSAGE, max_length=1000)
    handoff_timeout_s = models.PositiveIntegerField(
        _("handoff timeout s"), default=DEFAULT_HANDOFF_TIMEOUT_S,
        help_text=_("Seconds an escalation may stay unassigned before the visitor gets the away message; 0: never."))
    idle_close_min = models.PositiveIntegerField(
        _("idle close min"), null=True, blank=True,
        help_text=_("Close a live conversation with no new item for this many minutes."))

    class Meta:
        verbose_name = _("routing")
        verbose_name_plural = _("routing")

    def __str__(self) -> str:
        return f"routing of site {self.site_id}"
