"""Reading chatbot flows: the export document, its validation, and the parsed `Flow` for the hot path."""
from __future__ import annotations

import json
import threading
from datetime import datetime

from django.db import models

from chatbots.engine import STEP_FIELDS, Flow, FlowInvalid, uncaptured_variables, validate
from chatbots.models import Chatbot, Step

# Variables filled outside the flow: the away message asks for the visitor's e-mail into EMAIL (CONTRACT 7).
OUTSIDE_VARIABLES = frozenset({"EMAIL"})

# chatbot pk -> (updated_at, Flow). Only the newest version of each chatbot is kept, so the cache is
# bounded by the number of chatbots; the lock only guards the dict, parsing happens outside it.
_flows: dict[int, tuple[datetime, Flow]] = {}
_flows_lock = threading.Lock()


def _step_document(step: Step, buttons: list[dict]) -> dict:
    """One step in export shape: "kind" then exactly that kind's fields, optional ones as null."""
    values = {
        "text": step.text, "url": step.image_url, "variable": step.variable, "type": step.input_type,
        "value": step.value, "target": step.target, "buttons": buttons,
        "message": step.text or None, "assign_to": step.assign_to or None,
        "back_label": step.back_label or None, "return_to": step.return_to or None,
    }
    if step.kind == "image":
        values["text"] = step.text or None
    document = {"kind": step.kind}
    for field in STEP_FIELDS.get(step.kind, ("text",)):
        document[field] = values[field]
    return document


def flow_document(*, chatbot: Chatbot) -> tuple[dict, list[str]]:
    """The chatbot's flow in the export format, plus the errors the stored rows have that JSON cannot express.

    Buttons are stored per sequence and belong to its closing buttons step; buttons left on a sequence that
    does not end with one are such an error.
    """
    sequences = list(chatbot.sequences.prefetch_related("steps", "buttons").order_by("position", "id"))
    document_sequences, errors = [], []
    for i, sequence in enumerate(sequences):
        steps = list(sequence.steps.all())
        buttons = [{"id": b.key, "label": b.label, "target": b.target} for b in sequence.buttons.all()]
        closing = steps[-1] if steps and steps[-1].kind == "buttons" else None
        if buttons and closing is None:
            errors.append(f"sequences[{i}].buttons: the sequence has buttons but does not end with a buttons step")
        document_sequences.append({
            "key": sequence.key,
            "steps": [_step_document(step, buttons if step is closing else []) for step in steps],
        })
    document = {
        "format": 1,
        "name": chatbot.name,
        "pseudonym_template": chatbot.pseudonym_template,
        "welcome": chatbot.welcome_sequence,
        "fallback": chatbot.fallback_sequence or None,
        "sequences": document_sequences,
    }
    return document, errors


def flow_dumps(document: dict) -> str:
    """The versionable text of a flow document: stable key order, UTF-8 as is, one trailing newline."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def advisor_choices() -> list[tuple[str, str]]:
    """The advisors an escalation may auto-assign to, as (username, "Name (username)") for the flow editor."""
    from advisors.models import Advisor  # advisors depends on chatbots (Site.chatbot): import late

    rows = Advisor.objects.values_list("user__username", "display_name").order_by("display_name", "user__username")
    return [(username, f"{name} ({username})" if name and name != username else username) for username, name in rows]


def advisor_usernames() -> set[str]:
    """The usernames an escalation may auto-assign to."""
    return {username for username, _ in advisor_choices()}


def sequence_keys(*, chatbot: Chatbot | None) -> list[str]:
    """The keys of a chatbot's stored sequences, in flow order: what a target, a welcome or a return may name."""
    if chatbot is None or chatbot.pk is None:
        return []
    return list(chatbot.sequences.order_by("position", "id").values_list("key", flat=True))


def flow_rows(*, chatbot: Chatbot) -> dict[str, models.Model]:
    """The stored row behind each path of the flow document, in the order `flow_document` reads them:
    "sequences[0]" -> Sequence, "sequences[0].steps[1]" -> Step, "sequences[0].buttons[2]" -> Button (in the document
    a sequence's buttons sit on its closing buttons step, as "sequences[0].steps[J].buttons[2]")."""
    rows: dict[str, models.Model] = {}
    sequences = chatbot.sequences.prefetch_related("steps", "buttons").order_by("position", "id")
    for i, sequence in enumerate(sequences):
        rows[f"sequences[{i}]"] = sequence
        for j, step in enumerate(sequence.steps.all()):
            rows[f"sequences[{i}].steps[{j}]"] = step
        for k, button in enumerate(sequence.buttons.all()):
            rows[f"sequences[{i}].buttons[{k}]"] = button
    return rows


def flow_errors(*, chatbot: Chatbot) -> list[str]:
    """Every error of the stored flow, with the same messages `flow validate` prints for its export."""
    document, errors = flow_document(chatbot=chatbot)
    return errors + validate(document, advisors=advisor_usernames())


def flow_warnings(*, chatbot: Chatbot) -> list[str]:
    """What is allowed but probably a mistake: the pseudonym naming a variable no step captures."""
    document, _ = flow_document(chatbot=chatbot)
    missing = uncaptured_variables(document, also_captured=OUTSIDE_VARIABLES)
    if not missing:
        return []
    names = ", ".join("{{%s}}" % name for name in missing)
    return [f"The pseudonym template names {names}, which no step of the flow captures (an input or a set "
            f"variable step): advisors will see \"Visitor #…\" instead of a name."]


def flow_for(chatbot: Chatbot) -> Flow:
    """The parsed flow of a chatbot, cached in-process until `chatbot.updated_at` changes.

    Raises FlowInvalid if the stored flow is invalid (the admin and the import refuse to store one).
    An advisor named by an escalation who was deleted since does not make the flow invalid here: the
    caller simply finds nobody to assign.
    """
    with _flows_lock:
        hit = _flows.get(chatbot.pk)
    if hit is not None and hit[0] == chatbot.updated_at:
        return hit[1]
    document, errors = flow_document(chatbot=chatbot)
    if errors:
        raise FlowInvalid(errors)
    flow = Flow.from_dict(document)
    with _flows_lock:
        _flows[chatbot.pk] = (chatbot.updated_at, flow)
    return flow
