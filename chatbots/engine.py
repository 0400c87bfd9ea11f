"""The chatbot engine: plain Python, no database, no Django.

A `Flow` is parsed once from the versionable JSON export format (see `validate` for its schema) and is
immutable, so one instance can be shared by every conversation and thread. `run` is a pure function of the
flow, the conversation's variables and position and one visitor event; the caller stores what it returns.

Position (JSON-safe, opaque to callers) is one of:
  {"sequence": KEY, "step": I, "waiting": "input", "variable": NAME}   an input step asked a question
  {"sequence": KEY, "step": I, "waiting": "buttons"}                   a buttons step shows a menu
  {"sequence": KEY, "step": I, "waiting": "escalated", "return": KEY|None}
  {"sequence": KEY, "step": I, "waiting": "end"}                       the sequence ran out of steps
The variable name is kept in the input position so that a flow edited under a waiting conversation
never stores an answer into a different variable than the one the visitor was asked for.
"""
from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
# A run executes at most this many steps; only a go-to cycle can reach it in a valid flow.
MAX_STEPS = 50
INPUT_MAX_CHARS = 200

STEP_KINDS = ("text", "image", "buttons", "input", "set_variable", "note", "escalate", "goto")
INPUT_TYPES = ("text", "email", "number")
# The fields each step kind carries in the export format, in export order; "kind" comes first.
STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "image": ("url", "text"),
    "buttons": ("text", "buttons"),
    "input": ("text", "variable", "type"),
    "set_variable": ("variable", "value"),
    "note": ("text",),
    "escalate": ("message", "assign_to", "back_label", "return_to"),
    "goto": ("target",),
}
# Fields that may be omitted or null in an import (they are exported as null / "").
OPTIONAL_FIELDS = {("image", "text"), ("escalate", "message"), ("escalate", "assign_to"),
                   ("escalate", "back_label"), ("escalate", "return_to")}
# After these kinds the bot waits, escalates or jumps: a later step of the same sequence can never run.
TERMINAL_KINDS = ("buttons", "escalate", "goto")

VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,49}$")
SEQUENCE_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
BUTTON_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
TEMPLATE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
NUMBER_RE = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")
# Control characters and line/paragraph separators: a captured answer is one line of text. Variables end up in
# pseudonyms, notes and e-mail subjects, where a newline broke the escalation e-mail (BadHeaderError).
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def single_line(text: str) -> str:
    """The text on one line: control characters become spaces, runs of whitespace one space, no edges."""
    return " ".join(_NOT_ONE_LINE.sub(" ", text or "").split())

TEXT_MAX = 4000
LABEL_MAX = 100


# ------------------------------------------------------------------------------ public data shapes

@dataclass(frozen=True)
class Button:
    id: str
    label: str


@dataclass(frozen=True)
class BotMessage:
    text: str
    buttons: tuple[Button, ...] = ()
    input: dict | None = None
    image_url: str | None = None


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Escalation:
    assign_to: str | None
    back_label: str | None


@dataclass(frozen=True)
class Event:
    kind: str
    text: str = ""
    button: str = ""


@dataclass(frozen=True)
class Result:
    outputs: tuple[BotMessage | Note, ...]
    variables: dict[str, str]
    position: dict | None
    escalation: Escalation | None = None
    error: str | None = None


class FlowInvalid(ValueError):
    """The flow document breaks the schema or a reference; `errors` are "path: reason" lines."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = list(errors)


# ------------------------------------------------------------------------------ templates

def render(template: str, variables: Mapping[str, str]) -> str:
    """Replace every {{VAR}}; a missing variable renders as the empty string."""
    return TEMPLATE_RE.sub(lambda m: str(variables.get(m.group(1)) or ""), template or "")


def pseudonym(template: str, variables: Mapping[str, str]) -> str | None:
    """The visitor's name for licensed advisors, or None when the template cannot be filled completely. Every row
    of an inbox list asks for one: the template is split once, not searched twice a row."""
    if not template or not template.strip():
        return None
    texts, names = _template_parts(template)
    name_parts = [texts[0]]
    for name, text in zip(names, texts[1:]):
        value = variables.get(name)
        if not isinstance(value, str) or not value.strip():
            return None
        name_parts += (value, text)
    return "".join(name_parts).strip() or None


@functools.lru_cache(maxsize=256)
def _template_parts(template: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The template's literal texts and the variables between them: one text more than variables."""
    parts = TEMPLATE_RE.split(template)
    return tuple(parts[0::2]), tuple(parts[1::2])


def captured_variables(data: Mapping[str, Any]) -> set[str]:
    """The variables a flow document's steps fill: input answers and set-variable steps."""
    names = set()
    for sequence in data.get("sequences") or ():
        for step in (sequence.get("steps") or ()) if isinstance(sequence, dict) else ():
            if isinstance(step, dict) and step.get("kind") in ("input", "set_variable") and _is_str(
                    step.get("variable")):
                names.add(step["variable"])
    return names


def uncaptured_variables(data: Mapping[str, Any], *, also_captured: set[str] = frozenset()) -> list[str]:
    """The variables the pseudonym template names that no step captures (a warning, not an error: the pseudonym
    then stays "Visitor #<id>"), in template order. `also_captured`: variables filled outside the flow."""
    template = data.get("pseudonym_template") or ""
    known = captured_variables(data) | set(also_captured)
    return list(dict.fromkeys(name for name in TEMPLATE_RE.findall(template) if name not in known))


# ------------------------------------------------------------------------------ validation

def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def validate(data: Any, *, advisors: set[str] | None = None) -> list[str]:
    """Every error of a flow document as "path: reason", in document order; [] when it is valid.

    `advisors`, when given, is the set of usernames `assign_to` may name (the engine itself has no
    database, so the caller that has one passes it).
    """
    errors: list[str] = []
    if not isinstance(data, dict):
        return ["(root): expected an object"]
    for key in data:
        if key not in ("format", "name", "pseudonym_template", "welcome", "fallback", "sequences"):
            errors.append(f"{key}: unknown field")
    if data.get("format") != FORMAT_VERSION:
        errors.append(f"format: expected {FORMAT_VERSION}")
    name = data.get("name")
    if not _is_str(name) or not name.strip():
        errors.append("name: required text")
    elif len(name) > 100:
        errors.append("name: at most 100 characters")
    template = data.get("pseudonym_template", "")
    if not _is_str(template):
        errors.append("pseudonym_template: expected text")
    elif len(template) > 200:
        errors.append("pseudonym_template: at most 200 characters")

    sequences = data.get("sequences")
    keys: set[str] = set()
    if not isinstance(sequences, list):
        errors.append("sequences: expected a list")
        sequences = []
    for i, sequence in enumerate(sequences):
        key = sequence.get("key") if isinstance(sequence, dict) else None
        if _is_str(key) and SEQUENCE_KEY_RE.match(key):
            keys.add(key)

    def check_target(path: str, value: Any, *, required: bool = True) -> None:
        if value is None or value == "":
            if required:
                errors.append(f"{path}: required sequence key")
        elif not _is_str(value):
            errors.append(f"{path}: expected a sequence key")
        elif value not in keys:
            errors.append(f'{path}: unknown sequence "{value}"')

    check_target("welcome", data.get("welcome"))
    check_target("fallback", data.get("fallback"), required=False)

    button_ids: dict[str, str] = {}
    seen_keys: set = set()
    for i, sequence in enumerate(sequences):
        path = f"sequences[{i}]"
        if not isinstance(sequence, dict):
            errors.append(f"{path}: expected an object")
            continue
        for field in sequence:
            if field not in ("key", "steps"):
                errors.append(f"{path}.{field}: unknown field")
        key = sequence.get("key")
        if not _is_str(key) or not SEQUENCE_KEY_RE.match(key):
            errors.append(f"{path}.key: expected lowercase letters, digits, - or _ (at most 50), got {key!r}")
        elif key in seen_keys:
            errors.append(f'{path}.key: duplicate key "{key}"')
        else:
            seen_keys.add(key)
        steps = sequence.get("steps")
        if not isinstance(steps, list):
            errors.append(f"{path}.steps: expected a list")
            continue
        terminal_at: int | None = None
        for j, step in enumerate(steps):
            spath = f"{path}.steps[{j}]"
            if terminal_at is not None:
                errors.append(f"{spath}: never runs, step {terminal_at} ({steps[terminal_at]['kind']})"
                              " ends the sequence")
            if not isinstance(step, dict):
                errors.append(f"{spath}: expected an object")
                continue
            kind = step.get("kind")
            if not _is_str(kind) or kind not in STEP_FIELDS:
                errors.append(f"{spath}.kind: unknown kind {kind!r} (expected one of {', '.join(STEP_KINDS)})")
                continue
            if kind in TERMINAL_KINDS and terminal_at is None:
                terminal_at = j
            fields = STEP_FIELDS[kind]
            for field in step:
                if field != "kind" and field not in fields:
                    errors.append(f"{spath}.{field}: unknown field for a {kind} step")
            for field in fields:
                if field not in step and (kind, field) not in OPTIONAL_FIELDS:
                    errors.append(f"{spath}.{field}: required")
            _validate_step(errors, spath, kind, step, check_target, button_ids, advisors)
    return errors


def _text_field(errors: list[str], path: str, value: Any, *, required: bool, limit: int = TEXT_MAX) -> None:
    if value is None:
        if required:
            errors.append(f"{path}: required text")
    elif not _is_str(value):
        errors.append(f"{path}: expected text")
    elif required and not value.strip():
        errors.append(f"{path}: must not be empty")
    elif len(value) > limit:
        errors.append(f"{path}: at most {limit} characters")


def _variable_field(errors: list[str], path: str, value: Any) -> None:
    if value is None:
        return  # "required" was already reported
    if not _is_str(value) or not VARIABLE_RE.match(value):
        errors.append(f"{path}: invalid variable name {value!r} (letters, digits and _, not starting with a digit)")


def _validate_step(errors, spath, kind, step, check_target, button_ids, advisors) -> None:
    if kind in ("text", "note"):
        _text_field(errors, f"{spath}.text", step.get("text"), required="text" in step)
    elif kind == "image":
        url = step.get("url")
        if "url" in step:
            _text_field(errors, f"{spath}.url", url, required=True, limit=500)
            if _is_str(url) and url.strip() and not url.startswith(("/", "http://", "https://")):
                errors.append(f"{spath}.url: expected an absolute http(s) URL or a path starting with /")
        _text_field(errors, f"{spath}.text", step.get("text"), required=False)
    elif kind == "input":
        _text_field(errors, f"{spath}.text", step.get("text"), required="text" in step)
        _variable_field(errors, f"{spath}.variable", step.get("variable"))
        if "type" in step and step.get("type") not in INPUT_TYPES:
            errors.append(f"{spath}.type: expected one of {', '.join(INPUT_TYPES)}, got {step.get('type')!r}")
    elif kind == "set_variable":
        _variable_field(errors, f"{spath}.variable", step.get("variable"))
        if "value" in step:
            _text_field(errors, f"{spath}.value", step.get("value"), required=False)
            if step.get("value") is None:
                errors.append(f"{spath}.value: expected text")
    elif kind == "goto":
        if "target" in step:
            check_target(f"{spath}.target", step.get("target"))
    elif kind == "escalate":
        _text_field(errors, f"{spath}.message", step.get("message"), required=False)
        assign_to = step.get("assign_to")
        if assign_to not in (None, ""):
            if not _is_str(assign_to):
                errors.append(f"{spath}.assign_to: expected a username")
            elif advisors is not None and assign_to not in advisors:
                errors.append(f'{spath}.assign_to: unknown advisor "{assign_to}"')
        back_label, return_to = step.get("back_label"), step.get("return_to")
        _text_field(errors, f"{spath}.back_label", back_label, required=False, limit=LABEL_MAX)
        check_target(f"{spath}.return_to", return_to, required=False)
        has_label = _is_str(back_label) and bool(back_label.strip())
        if has_label != (return_to not in (None, "")):
            errors.append(f"{spath}: back_label and return_to go together (a way back needs both)")
    elif kind == "buttons":
        _text_field(errors, f"{spath}.text", step.get("text"), required="text" in step)
        buttons = step.get("buttons")
        if "buttons" not in step:
            return
        if not isinstance(buttons, list) or not buttons:
            errors.append(f"{spath}.buttons: expected a non-empty list")
            return
        for k, button in enumerate(buttons):
            bpath = f"{spath}.buttons[{k}]"
            if not isinstance(button, dict):
                errors.append(f"{bpath}: expected an object")
                continue
            for field in button:
                if field not in ("id", "label", "target"):
                    errors.append(f"{bpath}.{field}: unknown field")
            button_id = button.get("id")
            if not _is_str(button_id) or not BUTTON_ID_RE.match(button_id):
                errors.append(f"{bpath}.id: expected letters, digits, - or _ (at most 40), got {button_id!r}")
            elif button_id in button_ids:
                errors.append(f'{bpath}.id: duplicate button id "{button_id}" (first at {button_ids[button_id]})')
            else:
                button_ids[button_id] = bpath
            _text_field(errors, f"{bpath}.label", button.get("label"), required=True, limit=LABEL_MAX)
            check_target(f"{bpath}.target", button.get("target"))


# ------------------------------------------------------------------------------ the flow

@dataclass(frozen=True)
class FlowStep:
    kind: str
    text: str = ""
    url: str = ""
    variable: str = ""
    input_type: str = "text"
    value: str = ""
    target: str = ""
    assign_to: str | None = None
    back_label: str | None = None
    return_to: str | None = None
    buttons: tuple[tuple[str, str, str], ...] = ()   # (id, label, target)


@dataclass(frozen=True, eq=False)
class Flow:
    name: str
    pseudonym_template: str
    welcome: str
    fallback: str | None
    sequences: Mapping[str, tuple[FlowStep, ...]]
    buttons: Mapping[str, tuple[str, str]]          # id -> (label, target)

    @classmethod
    def from_dict(cls, data: dict, *, advisors: set[str] | None = None) -> "Flow":
        errors = validate(data, advisors=advisors)
        if errors:
            raise FlowInvalid(errors)
        sequences: dict[str, tuple[FlowStep, ...]] = {}
        buttons: dict[str, tuple[str, str]] = {}
        for sequence in data["sequences"]:
            steps = []
            for raw in sequence["steps"]:
                step = _step_from_dict(raw)
                for button_id, label, target in step.buttons:
                    buttons[button_id] = (label, target)
                steps.append(step)
            sequences[sequence["key"]] = tuple(steps)
        return cls(name=data["name"], pseudonym_template=data.get("pseudonym_template") or "",
                   welcome=data["welcome"], fallback=data.get("fallback") or None,
                   sequences=MappingProxyType(sequences), buttons=MappingProxyType(buttons))

    def button_label(self, button_id: str) -> str | None:
        found = self.buttons.get(button_id)
        return found[0] if found else None


def _step_from_dict(raw: dict) -> FlowStep:
    kind = raw["kind"]
    if kind == "buttons":
        return FlowStep(kind, text=raw["text"],
                    buttons=tuple((b["id"], b["label"], b["target"]) for b in raw["buttons"]))
    if kind == "input":
        return FlowStep(kind, text=raw["text"], variable=raw["variable"], input_type=raw["type"])
    if kind == "image":
        return FlowStep(kind, url=raw["url"], text=raw.get("text") or "")
    if kind == "set_variable":
        return FlowStep(kind, variable=raw["variable"], value=raw["value"])
    if kind == "goto":
        return FlowStep(kind, target=raw["target"])
    if kind == "escalate":
        return_to = raw.get("return_to") or None
        return FlowStep(kind, text=raw.get("message") or "", assign_to=raw.get("assign_to") or None,
                    back_label=(raw.get("back_label") or None) if return_to else None, return_to=return_to)
    return FlowStep(kind, text=raw["text"])                  # text, note


# ------------------------------------------------------------------------------ running

class _Loop(Exception):
    """A run went past MAX_STEPS: a go-to cycle that never waits."""


@dataclass
class _Run:
    outputs: list
    variables: dict[str, str]
    position: dict
    escalation: Escalation | None = None


def _input_message(step: FlowStep, variables: Mapping[str, str]) -> BotMessage:
    return BotMessage(render(step.text, variables), input={"variable": step.variable, "type": step.input_type})


def _execute(flow: Flow, variables: dict[str, str], sequence: str, index: int) -> _Run:
    """Run steps from (sequence, index) until the bot waits, escalates or the sequence ends."""
    run = _Run(outputs=[], variables=dict(variables), position={})
    executed = 0
    while True:
        steps = flow.sequences[sequence]
        if index >= len(steps):
            run.position = {"sequence": sequence, "step": index, "waiting": "end"}
            return run
        executed += 1
        if executed > MAX_STEPS:
            raise _Loop(sequence)
        step = steps[index]
        kind, values = step.kind, run.variables
        if kind == "text":
            run.outputs.append(BotMessage(render(step.text, values)))
        elif kind == "image":
            run.outputs.append(BotMessage(render(step.text, values), image_url=step.url))
        elif kind == "note":
            run.outputs.append(Note(render(step.text, values)))
        elif kind == "set_variable":
            values[step.variable] = render(step.value, values)
        elif kind == "input":
            run.outputs.append(_input_message(step, values))
            run.position = {"sequence": sequence, "step": index, "waiting": "input", "variable": step.variable}
            return run
        elif kind == "buttons":
            run.outputs.append(BotMessage(render(step.text, values),
                                          buttons=tuple(Button(b_id, label) for b_id, label, _ in step.buttons)))
            run.position = {"sequence": sequence, "step": index, "waiting": "buttons"}
            return run
        elif kind == "escalate":
            if step.text:
                run.outputs.append(BotMessage(render(step.text, values)))
            run.escalation = Escalation(assign_to=step.assign_to, back_label=step.back_label)
            run.position = {"sequence": sequence, "step": index, "waiting": "escalated", "return": step.return_to}
            return run
        elif kind == "goto":
            sequence, index = step.target, 0
            continue
        index += 1


def _execute_guarded(flow: Flow, variables: dict[str, str], sequence: str, index: int = 0) -> _Run:
    """`_execute`, but a go-to cycle is logged and replaced by the fallback, which gets one chance."""
    try:
        return _execute(flow, variables, sequence, index)
    except _Loop:
        logger.error("chatbot %r: more than %d steps without waiting from sequence %r; showing the fallback",
                     flow.name, MAX_STEPS, sequence)
    # The looping run's outputs are dropped: a cycle would otherwise flood the visitor with repeats.
    if flow.fallback and flow.fallback != sequence:
        try:
            return _execute(flow, variables, flow.fallback, 0)
        except _Loop:
            logger.error("chatbot %r: the fallback sequence %r loops as well", flow.name, flow.fallback)
    return _Run(outputs=[], variables=dict(variables), position={"sequence": sequence, "step": 0, "waiting": "end"})


def _current(flow: Flow, position: Any) -> tuple[str, FlowStep | None, dict | None]:
    """(waiting, step, position) for a stored position; anything stale or malformed counts as "end"."""
    if not isinstance(position, dict):
        return "end", None, None
    waiting, sequence, index = position.get("waiting"), position.get("sequence"), position.get("step")
    steps = flow.sequences.get(sequence) if isinstance(sequence, str) else None
    if steps is None or not isinstance(index, int) or isinstance(index, bool):
        return "end", None, None
    step = steps[index] if 0 <= index < len(steps) else None
    if waiting == "input":
        if step is None or step.kind != "input" or step.variable != position.get("variable"):
            return "end", None, None
        return "input", step, position
    if waiting == "escalated":
        return "escalated", step, position
    return ("buttons" if waiting == "buttons" else "end"), step, position


def _check_answer(step: FlowStep, text: str) -> tuple[str | None, str]:
    """(explanation, value): an explanation when the answer is refused."""
    value = single_line(text)
    if not value:
        return "Please type an answer.", value
    if len(value) > INPUT_MAX_CHARS:
        return f"Please keep it under {INPUT_MAX_CHARS} characters.", value
    if step.input_type == "email" and not EMAIL_RE.match(value):
        return "That doesn't look like an e-mail address.", value
    if step.input_type == "number" and not NUMBER_RE.match(value):
        return "Please answer with a number.", value
    return None, value


def _result(run: _Run) -> Result:
    return Result(outputs=tuple(run.outputs), variables=run.variables, position=run.position,
                  escalation=run.escalation)


def _refused(variables: dict[str, str], position: dict | None, error: str) -> Result:
    return Result(outputs=(), variables=dict(variables), position=position, error=error)


def run(flow: Flow, *, variables: dict[str, str], position: dict | None, event: Event) -> Result:
    """Apply one visitor event to a conversation's bot state and say what the bot does."""
    variables = {str(k): str(v) for k, v in (variables or {}).items()}
    if event.kind == "start":
        return _result(_execute_guarded(flow, variables, flow.welcome))

    waiting, step, current = _current(flow, position)
    if event.kind == "text":
        if waiting == "input":
            explanation, value = _check_answer(step, event.text)
            if explanation:
                # Re-ask: the variable and the position stay as they were.
                return Result(outputs=(BotMessage(explanation), _input_message(step, variables)),
                              variables=variables, position=dict(current))
            variables[step.variable] = value
            return _result(_execute_guarded(flow, variables, current["sequence"], current["step"] + 1))
        if not flow.fallback:
            return Result(outputs=(), variables=variables, position=position)
        return _result(_execute_guarded(flow, variables, flow.fallback))

    if event.kind == "button":
        found = flow.buttons.get(event.button)
        if found is None:
            return _refused(variables, position, f'unknown button "{event.button}"')
        return _result(_execute_guarded(flow, variables, found[1]))

    if event.kind == "back_to_bot":
        if waiting != "escalated":
            return _refused(variables, position, "the bot is not escalated")
        target = current.get("return")
        if not isinstance(target, str) or target not in flow.sequences:
            return _refused(variables, position, "this escalation has no way back to the bot")
        return _result(_execute_guarded(flow, variables, target))

    return _refused(variables, position, f"unknown event kind {event.kind!r}")
