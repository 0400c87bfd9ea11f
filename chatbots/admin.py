"""Chatbot flows in the admin: chatbot -> sequences (inline), sequence -> steps and buttons (inlines).

Every save is validated as a whole flow, with the validator and messages of `manage.py flow validate`
(chatbots.engine.validate: the one place for the flow's rules; nothing here re-checks them).
The admin saves the forms and inlines inside one transaction; we validate the stored result at the end of
`save_related` and, if it is invalid, raise to roll everything back, then render the same POST again with
each error beside the field it is about (its path in the document names the row, see `_located`), the others
above the form, so nothing is stored and the user keeps what they typed.

The editor shows each step only the fields of its kind (engine.STEP_FIELDS, read by chatbots/flow_editor.js) and
offers the stored sequences and the advisors as choices; a value that is not among them stays selectable, so the
validator, not the widget, says what is wrong with it.
"""
import json
import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from chatbots.engine import STEP_FIELDS
from chatbots.models import Button, Chatbot, Sequence, Step
from chatbots.selectors import advisor_choices, flow_errors, flow_rows, flow_warnings, sequence_keys
from chatbots.services import button_keys_assign, chatbot_touch

# The export format's step fields -> the Step model's columns (the selectors' `_step_document` reads them back).
STEP_COLUMNS = {"text": "text", "message": "text", "url": "image_url", "variable": "variable", "type": "input_type",
                "value": "value", "target": "target", "assign_to": "assign_to", "back_label": "back_label",
                "return_to": "return_to", "kind": "kind"}
BUTTON_COLUMNS = {"id": "key", "label": "label", "target": "target"}
CHATBOT_COLUMNS = {"name": "name", "pseudonym_template": "pseudonym_template", "welcome": "welcome_sequence",
                   "fallback": "fallback_sequence"}
# What the shared `text` column means for each kind, as the editor labels it.
TEXT_LABELS = {"text": _("Text"), "note": _("Note for the advisor"), "buttons": _("Question above the buttons"),
               "input": _("Question"), "image": _("Caption"), "escalate": _("Message to the visitor")}
_ERROR = re.compile(r"^(?P<path>[^:\s]+): (?P<reason>.*)$", re.S)
_STEP_PATH = re.compile(r"^(?P<row>sequences\[\d+\](?:\.steps\[\d+\])?)(?:\.buttons\[(?P<button>\d+)\])?"
                        r"(?:\.(?P<field>\w+))?$")


def _located(error: str, rows: dict, chatbot: Chatbot) -> tuple[object | None, str | None, str]:
    """(row, column or None, reason) for an error of `flow validate`; (None, None, error) when no row is named."""
    match = _ERROR.match(error)
    if not match:
        return None, None, error
    path, reason = match["path"], match["reason"]
    if path in CHATBOT_COLUMNS:
        return chatbot, CHATBOT_COLUMNS[path], reason
    step = _STEP_PATH.match(path)
    if not step or step["row"] not in rows:
        return None, None, error
    row, field = rows[step["row"]], step["field"]
    if step["button"] is not None:  # a sequence's buttons hang on its closing step in the document
        sequence_path = step["row"].split(".steps[")[0]
        button = rows.get(f"{sequence_path}.buttons[{step['button']}]")
        if button is None:
            return None, None, error
        return button, BUTTON_COLUMNS.get(field), reason
    if isinstance(row, Sequence):
        return row, ("key" if field == "key" else None), reason
    return row, STEP_COLUMNS.get(field), reason


def _choices(values: list[tuple[str, str]], current, *, blank: str = "---------") -> list[tuple[str, str]]:
    choices = [("", blank), *values]
    if current not in (None, "") and current not in {value for value, _ in values}:
        choices.append((current, gettext("%(value)s (not found)") % {"value": current}))
    return choices


class FlowChoicesForm(forms.ModelForm):
    """Sequence keys and advisors as choices. The fields stay text fields, so the flow validator decides."""

    sequence_fields: tuple[str, ...] = ()
    advisor_fields: tuple[str, ...] = ()
    sequences: list[str] | None = None  # None: free text (a new chatbot has no stored sequence yet)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        advisors = advisor_choices() if self.advisor_fields else []
        for name in self.sequence_fields:
            if name in self.fields and self.sequences is not None:
                self.fields[name].widget = forms.Select(choices=_choices(
                    [(key, key) for key in self.sequences], self[name].value()))
        for name in self.advisor_fields:
            if name in self.fields:
                self.fields[name].widget = forms.Select(choices=_choices(advisors, self[name].value(),
                                                                         blank=gettext("nobody: the team's queue")))


def form_for(base: type[FlowChoicesForm], chatbot: Chatbot | None) -> type[FlowChoicesForm]:
    return type(base.__name__, (base,), {"sequences": sequence_keys(chatbot=chatbot) if chatbot else None})


class ChatbotForm(FlowChoicesForm):
    sequence_fields = ("welcome_sequence", "fallback_sequence")


class StepForm(FlowChoicesForm):
    sequence_fields = ("target", "return_to")
    advisor_fields = ("assign_to",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kind = self.fields.get("kind")
        if kind is not None:  # which columns each kind uses, for chatbots/flow_editor.js
            columns = {k: sorted({STEP_COLUMNS[f] for f in fields if f in STEP_COLUMNS})
                       for k, fields in STEP_FIELDS.items()}
            # In the page's language, with the form's label suffix, as Django writes the other labels.
            labels = {k: f"{label}{self.label_suffix}" for k, label in TEXT_LABELS.items()}
            kind.widget.attrs.update({"data-step-columns": json.dumps(columns),
                                      "data-text-labels": json.dumps(labels, ensure_ascii=False)})


class ButtonForm(FlowChoicesForm):
    sequence_fields = ("target",)


class FlowRejected(Exception):
    """`errors`: the validator's lines; `located`: (form, column, reason) of those that name a row of this page."""

    def __init__(self, errors: list[str], located: list[tuple[tuple, str | None, str]] | None = None,
                 unlocated: list[str] | None = None):
        super().__init__(errors)
        self.errors = errors
        self.located = located or []
        self.unlocated = errors if unlocated is None else unlocated


def _place(errors: list[str], chatbot: Chatbot, form, formsets) -> FlowRejected:
    """Where each error goes on this page: ("main",) or (formset prefix, form index), else above the form."""
    rows = flow_rows(chatbot=chatbot)
    places = {(type(form.instance), form.instance.pk): ("main",)}
    for formset in formsets:
        for index, inline_form in enumerate(formset.forms):
            if inline_form.instance.pk is not None:
                places[(type(inline_form.instance), inline_form.instance.pk)] = (formset.prefix, index)
    located, unlocated = [], []
    for error in errors:
        row, column, reason = _located(error, rows, chatbot)
        place = places.get((type(row), getattr(row, "pk", None))) if row is not None else None
        if place is None:
            unlocated.append(error)
        else:
            located.append((place, column, reason))
    return FlowRejected(errors, located, unlocated)


def _add_error(form, column: str | None, reason: str) -> None:
    form.add_error(column if column in form.fields else None, reason)


class FlowInlineMixin:
    """Inline formsets that show the refused flow's errors beside their rows' fields on the second pass."""

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        rejected = getattr(request, "_chatbot_flow_rejected", None)
        if rejected is None:
            return formset

        class RefusedFormSet(formset):
            def clean(self):
                super().clean()
                for place, column, reason in rejected.located:
                    if place[0] == self.prefix and place[1] < len(self.forms):
                        _add_error(self.forms[place[1]], column, reason)

        return RefusedFormSet


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
        rejected = getattr(request, "_chatbot_flow_rejected", None)
        if rejected is None:
            return form

        class RefusedForm(form):
            def clean(self):
                cleaned = super().clean()
                for place, column, reason in rejected.located:
                    if place == ("main",):
                        _add_error(self, column, reason)
                if rejected.unlocated:
                    self.add_error(None, ValidationError(rejected.unlocated))
                return cleaned

        return RefusedForm

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        chatbot = self.chatbot_of(form.instance)
        button_keys_assign(chatbot=chatbot)
        errors = flow_errors(chatbot=chatbot)
        if errors:
            raise _place(errors, chatbot, form, formsets)
        chatbot_touch(chatbot=chatbot)
        for warning in flow_warnings(chatbot=chatbot):
            self.message_user(request, warning, messages.WARNING)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except FlowRejected as rejected:
            # The first pass was rolled back; the second pass refuses in form validation and re-renders.
            request._chatbot_flow_rejected = rejected
            return super().changeform_view(request, object_id, form_url, extra_context)


class SequenceInline(FlowInlineMixin, admin.TabularInline):
    model = Sequence
    fields = ("key", "position")
    extra = 0
    show_change_link = True


@admin.register(Chatbot)
class ChatbotAdmin(FlowValidatingAdmin):
    form = ChatbotForm
    list_display = ("name", "pseudonym_template", "welcome_sequence", "fallback_sequence", "updated_at")
    fields = ("name", "pseudonym_template", "welcome_sequence", "fallback_sequence")
    inlines = [SequenceInline]

    def chatbot_of(self, obj: Chatbot) -> Chatbot:
        return obj

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = form_for(ChatbotForm, obj)
        form = super().get_form(request, obj, change, **kwargs)
        warnings = flow_warnings(chatbot=obj) if obj is not None else []
        if warnings:  # beside the field too, each time the page opens, not only after a save

            class WarnedForm(form):
                def __init__(self, *args, **kwargs):
                    super().__init__(*args, **kwargs)
                    field = self.fields["pseudonym_template"]
                    field.help_text = f"{field.help_text} ⚠ {' '.join(warnings)}"

            return WarnedForm
        return form


class StepInline(FlowInlineMixin, admin.StackedInline):
    model = Step
    form = StepForm
    extra = 0
    fields = ("position", "kind", "text", "image_url", ("variable", "input_type"), "value", "target",
              "assign_to", ("back_label", "return_to"))


class ButtonInline(FlowInlineMixin, admin.TabularInline):
    model = Button
    form = ButtonForm
    extra = 0
    fields = ("position", "label", "target", "key")
    verbose_name_plural = _("buttons (of the buttons step that ends the sequence)")


@admin.register(Sequence)
class SequenceAdmin(FlowValidatingAdmin):
    list_display = ("key", "chatbot", "position")
    list_filter = ("chatbot",)
    fields = ("chatbot", "key", "position")
    inlines = [StepInline, ButtonInline]

    class Media:
        js = ["chatbots/flow_editor.js"]

    def chatbot_of(self, obj: Sequence) -> Chatbot:
        return obj.chatbot

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        for inline in inlines:  # the stored sequences of this chatbot (of every chatbot on the add page) as choices
            inline.form = form_for(type(inline).form, obj.chatbot if obj else None)
            if obj is None:
                inline.form.sequences = sorted(set(Sequence.objects.values_list("key", flat=True)))
        return inlines

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
                self.message_user(request, gettext("Not deleted: %(error)s") % {"error": error}, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:chatbots_sequence_change", args=[object_id]))
