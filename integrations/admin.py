"""Webhooks (with their deliveries and each attempt), visitors' data (export, erase) and the read-only audit trail.
Every action calls integrations.services."""
import json

from django.contrib import admin, messages
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from conversations.models import Visitor
from integrations import services
from integrations.forms import WebhookForm
from integrations.models import Attempt, AuditEntry, Delivery, Webhook


def json_download(data, filename: str) -> HttpResponse:
    response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ["url", "account", "event_list", "include_notes", "active", "deliveries_link"]
    list_filter = ["active", "account"]

    @admin.display(description=_("Events"))
    def event_list(self, webhook: Webhook) -> str:
        return ", ".join(webhook.events)

    @admin.display(description=_("Deliveries"))
    def deliveries_link(self, webhook: Webhook) -> str:
        return format_html('<a href="../delivery/?webhook__id__exact={}">{}</a>', webhook.pk, gettext("log"))


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ["at", "status_code", "duration_ms", "error", "response_excerpt"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Each event sent to a webhook, and each attempt with its status, duration and the answer's beginning."""

    list_display = ["created_at", "event", "webhook", "conversation_id", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", "event", "webhook"]
    list_select_related = ["webhook"]
    readonly_fields = ["uuid", "webhook", "event", "conversation_id", "status", "attempts", "created_at",
                       "next_attempt_at", "retry_until", "delivered_at", "body"]
    fields = readonly_fields
    inlines = [AttemptInline]
    actions = ["send_again"]
    ordering = ["-id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Send again (same id and body, a new 24-hour window)"))
    def send_again(self, request, queryset):
        count = services.delivery_send_again(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, ngettext("%(count)d delivery queued again.", "%(count)d deliveries queued again.",
                                            count) % {"count": count})


@admin.register(Visitor)
class VisitorAdmin(admin.ModelAdmin):
    """Visitors' data on request: export (JSON) or erase. Erasing deletes the visitor's conversation and items."""

    list_display = ["id", "site", "first_seen_at", "last_seen_at", "sessions"]
    list_filter = ["site"]
    list_select_related = ["site"]
    fields = ["site", "variables", "sessions", "page", "first_seen_at", "last_seen_at"]
    readonly_fields = fields
    actions = ["export_data", "erase_data"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # "Erase" below: through the service, recorded in the audit trail

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Export the visitor's data (JSON)"))
    def export_data(self, request, queryset):
        exports = [services.visitor_export(visitor_id=pk, actor=request.user)
                   for pk in queryset.order_by("pk").values_list("pk", flat=True)]
        if len(exports) == 1:
            return json_download(exports[0], f"visitor-{exports[0]['visitor']['id']}.json")
        return json_download({"visitors": exports}, "visitors.json")

    @admin.action(description=_("Erase the visitor's data (variables, conversation, items, images, token)"))
    def erase_data(self, request, queryset):
        if request.POST.get("post") != "yes":  # a confirmation page first, like "delete selected"
            return TemplateResponse(request, "admin/integrations/erase_confirmation.html", {
                **self.admin_site.each_context(request), "title": gettext("Erase visitors' data"),
                "visitors": list(queryset.select_related("site").order_by("pk")[:500])})
        erased = sum(services.visitor_erase(visitor_id=pk, actor=request.user)
                     for pk in list(queryset.values_list("pk", flat=True)))
        self.message_user(request, ngettext("%(count)d visitor erased.", "%(count)d visitors erased.", erased) % {
            "count": erased}, messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: who granted or revoked a license, changed a scope, exported or erased data, and when."""

    list_display = ["at", "actor_name", "action", "target", "details"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target"]
    fields = ["at", "actor", "actor_name", "action", "target", "details"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
