"""Chatbot flows in the admin: chatbot -> sequences (inline), sequence -> steps and buttons (inlines).

Every save is validated as a whole flow, with the validator and messages of `manage.py flow validate`.
The admin saves the forms and inlines inside one transaction; we validate the stored result at the end of
`save_related` and, if it is invalid, raise to roll everything back, then render the same POST again with
the errors attached to the main form, so nothing is stored and the user keeps what they typed.
"""
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse

from chatbots.models import Button, Chatbot, Sequence, Step
from chatbots.selectors import flow_errors
from chatbots.services import button_keys_assign, chatbot_touch


class FlowRejected(Exception):
    def __init__(self, errors: list[str]):
        super().__init__(errors)
        self.errors = errors


class FlowValidatingAdmin(admin.ModelAdmin):
    """Refuses a save that leaves the chatbot's flow invalid; bumps `updated_at` on every accepted save."""

    def chatbot_of(self, obj) -> Chatbot:
        raise NotImplementedError

    def get_actions(self, request):
        # Bulk deletion would bypass the whole-flow validation.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        errors = getattr(request, "_chatbot_flow_errors", None)
        if not errors:
            return form

        class RefusedForm(form):
            def clean(self):
                cleaned = super().clean()
                self.add_error(None, ValidationError(errors))
                return cleaned

        return RefusedForm

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        chatbot = self.chatbot_of(form.instance)
        button_keys_assign(chatbot=chatbot)
        errors = flow_errors(chatbot=chatbot)
        if errors:
            raise FlowRejected(errors)
        chatbot_touch(chatbot=chatbot)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except FlowRejected as rejected:
            # The first pass was rolled back; the second pass refuses in form validation and re-renders.
            request._chatbot_flow_errors = rejected.errors
            return super().changeform_view(request, object_id, form_url, extra_context)


class SequenceInline(admin.TabularInline):
    model = Sequence
    fields = ("key", "position")
    extra = 0
    show_change_link = True


@admin.register(Chatbot)
class ChatbotAdmin(FlowValidatingAdmin):
    list_display = ("name", "pseudonym_template", "welcome_sequence", "fallback_sequence", "updated_at")
    fields = ("name", "pseudonym_template", "welcome_sequence", "fallback_sequence")
    inlines = [SequenceInline]

    def chatbot_of(self, obj: Chatbot) -> Chatbot:
        return obj


class StepInline(admin.StackedInline):
    model = Step
    extra = 0
    fields = ("position", "kind", "text", "image_url", ("variable", "input_type"), "value", "target",
              "assign_to", ("back_label", "return_to"))


class ButtonInline(admin.TabularInline):
    model = Button
    extra = 0
    fields = ("position", "label", "target", "key")
    verbose_name_plural = "buttons (of the buttons step that ends the sequence)"


@admin.register(Sequence)
class SequenceAdmin(FlowValidatingAdmin):
    list_display = ("key", "chatbot", "position")
    list_filter = ("chatbot",)
    fields = ("chatbot", "key", "position")
    inlines = [StepInline, ButtonInline]

    def chatbot_of(self, obj: Sequence) -> Chatbot:
        return obj.chatbot

    def get_readonly_fields(self, request, obj=None):
        # Moving a sequence to another chatbot would need both flows validated; it is not a real use case.
        return ("chatbot",) if obj else ()

    def delete_model(self, request, obj: Sequence) -> None:
        chatbot = obj.chatbot
        super().delete_model(request, obj)
        errors = flow_errors(chatbot=chatbot)
        if errors:
            raise FlowRejected(errors)  # rolls back the deletion (delete_view runs in a transaction)
        chatbot_touch(chatbot=chatbot)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except FlowRejected as rejected:
            for error in rejected.errors:
                self.message_user(request, f"Not deleted: {error}", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:chatbots_sequence_change", args=[object_id]))
