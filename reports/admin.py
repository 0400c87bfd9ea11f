from django.contrib import admin

from reports.models import Rating


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    """What visitors said (read-only: ratings are the visitors' own)."""

    list_display = ["created_at", "site", "advisor", "score", "comment", "conversation"]
    list_filter = ["site", "score"]
    list_select_related = ["site", "advisor", "conversation"]
    readonly_fields = ["conversation", "episode", "site", "advisor", "score", "comment", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
