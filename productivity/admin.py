"""Canned responses and labels in the admin (the inbox has its own small panel for them)."""
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from productivity import services
from productivity.models import CannedResponse, Label

SCOPE_LABELS = {"account": _("account"), "personal": _("personal")}


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    list_display = ["shortcut", "scope_label", "owner", "account", "updated_at"]
    list_filter = ["account"]
    search_fields = ["shortcut", "text"]
    list_select_related = ["owner", "account"]

    @admin.display(description=_("scope"), ordering="owner")
    def scope_label(self, canned: CannedResponse) -> str:
        return str(SCOPE_LABELS[canned.scope])


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["name", "color", "account"]
    list_filter = ["account"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            services.label_changed(label_id=obj.pk)

    def delete_model(self, request, obj):
        services.label_delete_any(label=obj)

    def delete_queryset(self, request, queryset):
        for label in queryset:
            services.label_delete_any(label=label)
