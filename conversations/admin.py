"""Conversations in the admin: read-only, for support and audits. Advisors work in /inbox/.

Deleting goes through services.conversation_delete (the visitor, the items' image files, the widget's sockets),
whether from the change page or the list's "delete selected" action."""
from django.contrib import admin

from conversations import services
from conversations.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["seq", "kind", "sender", "text", "advisor", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["seq"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "site", "status", "assigned", "last_seq", "updated_at"]
    list_filter = ["status", "site"]
    list_select_related = ["site", "assigned"]
    readonly_fields = [f.name for f in Conversation._meta.fields]
    inlines = [MessageInline]

    def has_add_permission(self, request):
        return False

    def delete_model(self, request, obj):
        services.conversation_delete(conversation_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for conversation_id in queryset.values_list("pk", flat=True):
            services.conversation_delete(conversation_id=conversation_id)
