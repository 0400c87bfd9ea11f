"""Writing chatbot flows. Every write here bumps `Chatbot.updated_at`, which invalidates `flow_for`."""
from __future__ import annotations

import re

from django.db import transaction

from chatbots.demo import DEMO_FLOW
from chatbots.engine import FlowInvalid, validate
from chatbots.models import Button, Chatbot, Sequence, Step
from chatbots.selectors import advisor_usernames, flow_document

_BUTTON_KEY_RE = re.compile(r"^b-(\d+)$")


def chatbot_touch(*, chatbot: Chatbot) -> None:
    """Mark the flow as changed so every process re-reads it on its next event."""
    chatbot.save(update_fields=["updated_at"])


@transaction.atomic
def button_keys_assign(*, chatbot: Chatbot) -> None:
    """Give every button without an id the next free "b-N" of its chatbot (ids stay stable afterwards)."""
    buttons = list(Button.objects.select_for_update().filter(sequence__chatbot=chatbot).order_by("id"))
    numbers = [int(m.group(1)) for b in buttons if (m := _BUTTON_KEY_RE.match(b.key))]
    following = max(numbers, default=0) + 1
    for button in buttons:
        if not button.key:
            button.key = f"b-{following}"
            following += 1
            button.save(update_fields=["key"])


def _step_fields(raw: dict) -> dict:
    kind = raw["kind"]
    fields = {"kind": kind}
    if kind == "escalate":
        fields.update(text=raw.get("message") or "", assign_to=raw.get("assign_to") or "",
                      back_label=raw.get("back_label") or "", return_to=raw.get("return_to") or "")
    elif kind == "image":
        fields.update(image_url=raw["url"], text=raw.get("text") or "")
    elif kind == "input":
        fields.update(text=raw["text"], variable=raw["variable"], input_type=raw["type"])
    elif kind == "set_variable":
        fields.update(variable=raw["variable"], value=raw["value"])
    elif kind == "goto":
        fields.update(target=raw["target"])
    else:  # text, note, buttons
        fields.update(text=raw["text"])
    return fields


@transaction.atomic
def flow_import(*, data: dict) -> Chatbot:
    """Create or replace the chatbot named in `data` with that flow; raises FlowInvalid and stores nothing.

    The chatbot row is kept (sites point at it); its sequences, steps and buttons are replaced.
    """
    errors = validate(data, advisors=advisor_usernames())
    if errors:
        raise FlowInvalid(errors)
    chatbot, _ = Chatbot.objects.select_for_update().get_or_create(name=data["name"])
    chatbot.pseudonym_template = data.get("pseudonym_template") or ""
    chatbot.welcome_sequence = data["welcome"]
    chatbot.fallback_sequence = data.get("fallback") or ""
    chatbot.sequences.all().delete()
    buttons = []
    for position, raw_sequence in enumerate(data["sequences"]):
        sequence = Sequence.objects.create(chatbot=chatbot, key=raw_sequence["key"], position=position)
        steps = [Step(sequence=sequence, position=i, **_step_fields(raw))
                 for i, raw in enumerate(raw_sequence["steps"])]
        Step.objects.bulk_create(steps)
        # A valid sequence has at most one buttons step (its last); the buttons are stored on the sequence.
        for raw in raw_sequence["steps"]:
            if raw["kind"] != "buttons":
                continue
            for i, button in enumerate(raw["buttons"]):
                buttons.append(Button(sequence=sequence, key=button["id"], position=i, label=button["label"],
                                      target=button["target"]))
    Button.objects.bulk_create(buttons)
    chatbot.save(update_fields=["pseudonym_template", "welcome_sequence", "fallback_sequence", "updated_at"])
    return chatbot


@transaction.atomic
def demo_chatbot_ensure() -> Chatbot:
    """The "Demo bot" of CONTRACT section 2; left untouched (updated_at included) when already exact."""
    chatbot = Chatbot.objects.filter(name=DEMO_FLOW["name"]).first()
    if chatbot is not None and flow_document(chatbot=chatbot) == (DEMO_FLOW, []):
        return chatbot
    return flow_import(data=DEMO_FLOW)
