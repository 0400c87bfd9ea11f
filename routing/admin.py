"""Routing in the admin, on pages of its own: "Availability" (each advisor's capacity and chosen status, editable
in the list) and "Routing" (each site's assignment, hours, away message and timers). Checked by routing.services,
like the staff API. The advisors list shows each advisor's status (advisor_status)."""
from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from advisors.models import Advisor
from conversations.errors import Refused
from routing import selectors, services
from routing.models import AdvisorRouting, SiteRouting

# The statuses (the API's values) as the admin shows them, in the page's language.
STATUS_LABELS = {selectors.ONLINE: _("online"), selectors.AWAY: _("away"), selectors.OFFLINE: _("offline")}


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


@admin.register(AdvisorRouting)
class AdvisorRoutingAdmin(admin.ModelAdmin):
    list_display = ["advisor", "status", "capacity", "away", "last_assigned_at"]
    list_editable = ["capacity", "away"]
    list_select_related = ["advisor__user"]
    fields = ["advisor", "capacity", "away", "last_assigned_at"]
    readonly_fields = ["last_assigned_at"]

    @admin.display(description=_("Status now"))
    def status(self, rules: AdvisorRouting) -> str:
        return status_label(selectors.advisor_status(rules.advisor))


class SiteRoutingForm(forms.ModelForm):
    class Meta:
        model = SiteRouting
        fields = ["site", *services.SITE_FIELDS]

    def clean_hours(self):
        try:
            return services.hours_clean(self.cleaned_data.get("hours"))
        except Refused as refused:
            raise forms.ValidationError(refused.detail) from None


@admin.register(SiteRouting)
class SiteRoutingAdmin(admin.ModelAdmin):
    form = SiteRoutingForm
    list_display = ["site", "assignment", "hours", "handoff_timeout_s", "idle_close_min"]
    list_select_related = ["site"]


@admin.display(description=_("Status"))
def advisor_status(advisor: Advisor) -> str:
    """online / away / offline (one cache read per row; the list selects `routing` with the advisor)."""
    return status_label(selectors.advisor_status(advisor))
