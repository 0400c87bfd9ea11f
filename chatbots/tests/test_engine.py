import json
import logging

import pytest

from chatbots.engine import (
    MAX_STEPS,
    BotMessage,
    Button,
    Escalation,
    Event,
    Flow,
    FlowInvalid,
    Note,
    pseudonym,
    render,
    run,
    validate,
)
from chatbots.tests.flows import ask, buttons, escalate, flow_doc, goto, seq, text

START = Event("start")


def fallback_seq():
    return seq("fallback", text("Sorry?"))


def start(flow, variables=None):
    return run(flow, variables=variables or {}, position=None, event=START)


# ------------------------------------------------------------------------------ templates

def test_render_replaces_variables_and_missing_ones_render_empty():
    assert render("Hi {{PRENOM}} from {{ SOCIETE }}!", {"PRENOM": "Jean"}) == "Hi Jean from !"


def test_render_leaves_non_variable_braces_alone():
    assert render("{{1X}} {x} {{PRENOM", {"PRENOM": "Jean"}) == "{{1X}} {x} {{PRENOM"


def test_pseudonym_needs_every_variable_of_the_template():
    template = "{{PRENOM}} ({{SOCIETE}})"
    assert pseudonym(template, {"PRENOM": "Jean", "SOCIETE": "ACME"}) == "Jean (ACME)"
    assert pseudonym(template, {"PRENOM": "Jean"}) is None
    assert pseudonym(template, {"PRENOM": "Jean", "SOCIETE": "  "}) is None
    assert pseudonym("", {"PRENOM": "Jean"}) is None


# ------------------------------------------------------------------------------ step kinds

def test_text_steps_render_in_order_and_the_sequence_ends():
    flow = Flow.from_dict(flow_doc(seq("welcome", text("Hello"), text("Bye {{X}}")), fallback_seq()))
    result = start(flow, {"X": "you"})
    assert result.outputs == (BotMessage("Hello"), BotMessage("Bye you"))
    assert result.position["waiting"] == "end"
    assert result.escalation is None and result.error is None


def test_image_step_gives_its_url_as_configured_and_the_caption_as_text():
    flow = Flow.from_dict(flow_doc(
        seq("welcome", {"kind": "image", "url": "/media/bot/hello.png", "text": "Hi {{P}}"},
            {"kind": "image", "url": "https://cdn.example/x.png"}), fallback_seq()))
    assert start(flow, {"P": "Jo"}).outputs == (
        BotMessage("Hi Jo", image_url="/media/bot/hello.png"), BotMessage("", image_url="https://cdn.example/x.png"))


def test_buttons_step_is_one_message_with_its_buttons_and_waits():
    flow = Flow.from_dict(flow_doc(
        seq("welcome", text("Hello"), buttons("Pick, {{P}}?", ("b-1", "A", "a"), ("b-2", "B", "b")), ),
        seq("a", text("You chose A")), seq("b", text("You chose B")), fallback_seq()))
    result = start(flow, {"P": "Jo"})
    assert result.outputs == (BotMessage("Hello"),
                              BotMessage("Pick, Jo?", buttons=(Button("b-1", "A"), Button("b-2", "B"))))
    assert result.position["waiting"] == "buttons"
    pressed = run(flow, variables=result.variables, position=result.position, event=Event("button", button="b-2"))
    assert pressed.outputs == (BotMessage("You chose B"),)
    assert flow.button_label("b-1") == "A" and flow.button_label("nope") is None


def test_old_menu_buttons_stay_usable_from_any_position():
    flow = Flow.from_dict(flow_doc(
        seq("welcome", buttons("Pick", ("b-1", "A", "a"))), seq("a", ask("Name?", "N")), fallback_seq()))
    asked = run(flow, variables={}, position=None, event=Event("button", button="b-1"))
    assert asked.position["waiting"] == "input"
    again = run(flow, variables={}, position=asked.position, event=Event("button", button="b-1"))
    assert again.outputs == (BotMessage("Name?", input={"variable": "N", "type": "text"}),)


def test_unknown_button_is_refused_and_changes_nothing():
    flow = Flow.from_dict(flow_doc(seq("welcome", buttons("Pick", ("b-1", "A", "fallback"))), fallback_seq()))
    position = start(flow).position
    result = run(flow, variables={"X": "1"}, position=position, event=Event("button", button="b-9"))
    assert result.error == 'unknown button "b-9"'
    assert result.outputs == () and result.variables == {"X": "1"} and result.position == position


def test_input_step_asks_then_stores_the_answer_and_continues():
    flow = Flow.from_dict(flow_doc(seq("welcome", ask("Name?", "PRENOM"), text("Hi {{PRENOM}}")), fallback_seq()))
    asked = start(flow)
    assert asked.outputs == (BotMessage("Name?", input={"variable": "PRENOM", "type": "text"}),)
    answered = run(flow, variables=asked.variables, position=asked.position, event=Event("text", text="  Jean "))
    assert answered.variables == {"PRENOM": "Jean"}
    assert answered.outputs == (BotMessage("Hi Jean"),)


@pytest.mark.parametrize("type_, bad, explanation, good", [
    ("email", "not-an-email", "That doesn't look like an e-mail address.", "jean@acme.example"),
    ("number", "twelve", "Please answer with a number.", "12,5"),
    ("text", "   ", "Please type an answer.", "ok"),
    ("text", "x" * 201, "Please keep it under 200 characters.", "x" * 200),
])
def test_a_wrong_answer_is_re_asked_and_leaves_the_variable_unchanged(type_, bad, explanation, good):
    flow = Flow.from_dict(flow_doc(seq("welcome", ask("Value?", "V", type_), text("Got {{V}}")), fallback_seq()))
    asked = start(flow, {"V": "old"})
    refused = run(flow, variables={"V": "old"}, position=asked.position, event=Event("text", text=bad))
    assert refused.error is None
    assert refused.outputs == (BotMessage(explanation), BotMessage("Value?", input={"variable": "V", "type": type_}))
    assert refused.variables == {"V": "old"} and refused.position == asked.position
    accepted = run(flow, variables=refused.variables, position=refused.position, event=Event("text", text=good))
    assert accepted.variables == {"V": good} and accepted.outputs == (BotMessage(f"Got {good}"),)


def test_set_variable_renders_its_value_from_other_variables():
    flow = Flow.from_dict(flow_doc(seq("welcome", {"kind": "set_variable", "variable": "FULL", "value": "{{A}}-{{B}}"},
                                       text("{{FULL}}")), fallback_seq()))
    result = start(flow, {"A": "x", "B": "y"})
    assert result.variables == {"A": "x", "B": "y", "FULL": "x-y"}
    assert result.outputs == (BotMessage("x-y"),)


def test_note_step_is_an_automatic_note_in_timeline_order():
    flow = Flow.from_dict(flow_doc(seq("welcome", text("a"), {"kind": "note", "text": "{{P}} is here"}, text("b")),
                                   fallback_seq()))
    assert start(flow, {"P": "Jo"}).outputs == (BotMessage("a"), Note("Jo is here"), BotMessage("b"))


def test_escalate_gives_the_message_the_escalation_and_records_the_way_back():
    flow = Flow.from_dict(flow_doc(
        seq("welcome", escalate("Connecting…", assign_to="alice", back_label="Back to chatbot", return_to="menu")),
        seq("menu", text("Menu")), fallback_seq()))
    result = start(flow)
    assert result.outputs == (BotMessage("Connecting…"),)
    assert result.escalation == Escalation(assign_to="alice", back_label="Back to chatbot")
    assert result.position["waiting"] == "escalated"
    back = run(flow, variables={}, position=result.position, event=Event("back_to_bot"))
    assert back.outputs == (BotMessage("Menu"),) and back.escalation is None


def test_escalate_without_a_way_back_has_no_label_and_refuses_back_to_bot():
    flow = Flow.from_dict(flow_doc(seq("welcome", escalate()), fallback_seq()))
    result = start(flow)
    assert result.outputs == () and result.escalation == Escalation(assign_to=None, back_label=None)
    back = run(flow, variables={}, position=result.position, event=Event("back_to_bot"))
    assert back.error == "this escalation has no way back to the bot" and back.outputs == ()


def test_back_to_bot_when_not_escalated_is_refused():
    flow = Flow.from_dict(flow_doc(seq("welcome", ask("Name?", "N")), fallback_seq()))
    position = start(flow).position
    result = run(flow, variables={}, position=position, event=Event("back_to_bot"))
    assert result.error == "the bot is not escalated" and result.position == position
    assert run(flow, variables={}, position=None, event=Event("back_to_bot")).error == "the bot is not escalated"


def test_goto_continues_in_the_target_sequence():
    flow = Flow.from_dict(flow_doc(seq("welcome", text("1"), goto("next")), seq("next", text("2")), fallback_seq()))
    result = start(flow)
    assert result.outputs == (BotMessage("1"), BotMessage("2"))
    assert result.position == {"sequence": "next", "step": 1, "waiting": "end"}


# ------------------------------------------------------------------------------ free text and fallback

@pytest.mark.parametrize("position", [
    None,
    {"sequence": "welcome", "step": 0, "waiting": "buttons"},
    {"sequence": "welcome", "step": 1, "waiting": "end"},
    {"sequence": "welcome", "step": 0, "waiting": "escalated", "return": None},
    {"sequence": "gone", "step": 0, "waiting": "input", "variable": "N"},   # a stale position from an older flow
    {"sequence": "welcome", "step": 0, "waiting": "input", "variable": "OTHER"},
    "garbage",
])
def test_text_the_bot_does_not_expect_runs_the_fallback(position):
    flow = Flow.from_dict(flow_doc(seq("welcome", buttons("Pick", ("b-1", "A", "fallback"))),
                                   seq("fallback", text("Sorry?"), goto("welcome"))))
    result = run(flow, variables={}, position=position, event=Event("text", text="hello"))
    assert result.outputs == (BotMessage("Sorry?"), BotMessage("Pick", buttons=(Button("b-1", "A"),)))
    assert result.error is None and result.variables == {}


def test_text_without_a_fallback_sequence_does_nothing():
    flow = Flow.from_dict(flow_doc(seq("welcome", text("Hi")), fallback=None))
    result = run(flow, variables={}, position=None, event=Event("text", text="hello"))
    assert result.outputs == () and result.error is None


def test_unknown_event_kind_is_refused():
    flow = Flow.from_dict(flow_doc(seq("welcome", text("Hi")), fallback_seq()))
    assert run(flow, variables={}, position=None, event=Event("dance")).error == "unknown event kind 'dance'"


# ------------------------------------------------------------------------------ loops

def test_a_goto_cycle_stops_logs_and_shows_the_fallback(caplog):
    flow = Flow.from_dict(flow_doc(seq("welcome", {"kind": "set_variable", "variable": "V", "value": "x"},
                                       text("spam"), goto("welcome")),
                                   seq("fallback", text("Sorry?"))))
    with caplog.at_level(logging.ERROR, logger="chatbots.engine"):
        result = start(flow)
    assert result.outputs == (BotMessage("Sorry?"),)      # the looping run's repeats are dropped
    assert result.variables == {}
    assert f"more than {MAX_STEPS} steps" in caplog.text


def test_a_looping_fallback_does_not_loop_again(caplog):
    flow = Flow.from_dict(flow_doc(seq("welcome", goto("fallback")), seq("fallback", goto("welcome"))))
    with caplog.at_level(logging.ERROR, logger="chatbots.engine"):
        result = start(flow)
        text_result = run(flow, variables={}, position=None, event=Event("text", text="hi"))
    assert result.outputs == () and text_result.outputs == ()
    assert json.loads(json.dumps(result.position))["waiting"] == "end"


def test_an_answer_is_kept_when_the_rest_of_the_sequence_loops():
    flow = Flow.from_dict(flow_doc(seq("welcome", ask("Name?", "N"), goto("loop")), seq("loop", goto("loop")),
                                   seq("fallback", text("Sorry {{N}}"))))
    asked = start(flow)
    result = run(flow, variables={}, position=asked.position, event=Event("text", text="Jo"))
    assert result.variables == {"N": "Jo"} and result.outputs == (BotMessage("Sorry Jo"),)


# ------------------------------------------------------------------------------ validation

def test_validation_names_every_bad_element_with_its_path():
    document = flow_doc(
        seq("welcome", text("Hi"), buttons("Pick", ("b-1", "A", "menuu"), ("b-1", "", "welcome"))),
        seq("welcome", {"kind": "dance"}, {"kind": "input", "text": "Q", "variable": "1X", "type": "date"}),
        seq("Bad Key", goto("nowhere"), text("never")),
        seq("esc", escalate(back_label="Back", return_to=None), {"kind": "text", "text": "x", "color": "red"}),
        welcome="missing", fallback="fallback")
    errors = validate(document, advisors={"alice"})
    assert errors == [
        'welcome: unknown sequence "missing"',
        'fallback: unknown sequence "fallback"',
        'sequences[0].steps[1].buttons[0].target: unknown sequence "menuu"',
        'sequences[0].steps[1].buttons[1].id: duplicate button id "b-1" (first at sequences[0].steps[1].buttons[0])',
        "sequences[0].steps[1].buttons[1].label: must not be empty",
        'sequences[1].key: duplicate key "welcome"',
        "sequences[1].steps[0].kind: unknown kind 'dance' (expected one of text, image, buttons, input, "
        "set_variable, note, escalate, goto)",
        "sequences[1].steps[1].variable: invalid variable name '1X' (letters, digits and _, not starting with a digit)",
        "sequences[1].steps[1].type: expected one of text, email, number, got 'date'",
        "sequences[2].key: expected lowercase letters, digits, - or _ (at most 50), got 'Bad Key'",
        'sequences[2].steps[0].target: unknown sequence "nowhere"',
        "sequences[2].steps[1]: never runs, step 0 (goto) ends the sequence",
        "sequences[3].steps[0]: back_label and return_to go together (a way back needs both)",
        "sequences[3].steps[1]: never runs, step 0 (escalate) ends the sequence",
        "sequences[3].steps[1].color: unknown field for a text step",
    ]


def test_validation_of_missing_fields_types_and_advisors():
    document = flow_doc(seq("welcome", {"kind": "input", "text": 3}, {"kind": "image", "url": "ftp://x"},
                            escalate(assign_to="mallory")), fallback=None)
    document["format"] = 2
    document["extra"] = True
    assert validate(document, advisors={"alice"}) == [
        "extra: unknown field",
        "format: expected 1",
        "sequences[0].steps[0].variable: required",
        "sequences[0].steps[0].type: required",
        "sequences[0].steps[0].text: expected text",
        "sequences[0].steps[1].url: expected an absolute http(s) URL or a path starting with /",
        'sequences[0].steps[2].assign_to: unknown advisor "mallory"',
    ]
    # Without a list of advisors (the engine has no database) a username is not checked.
    assert "mallory" not in " ".join(validate(flow_doc(seq("welcome", escalate(assign_to="mallory")), fallback=None)))


@pytest.mark.parametrize("document", [None, [], "x", {"sequences": {}}, {"sequences": [3, {"steps": "no"}]}])
def test_garbage_documents_raise_flow_invalid(document):
    with pytest.raises(FlowInvalid) as raised:
        Flow.from_dict(document)
    assert raised.value.errors


def test_a_flow_is_immutable():
    flow = Flow.from_dict(flow_doc(seq("welcome", text("Hi")), fallback=None))
    with pytest.raises(Exception):
        flow.welcome = "other"
    with pytest.raises(TypeError):
        flow.sequences["x"] = ()


def test_a_captured_answer_is_one_line_of_text():
    from chatbots.engine import single_line

    assert single_line("  Jean\nBcc: x@y\r\n") == "Jean Bcc: x@y"
    assert single_line("A\tB\x00C\u2028D\x7f") == "A B C D"


def test_uncaptured_variables_are_those_the_pseudonym_names_and_no_step_fills():
    from chatbots.engine import uncaptured_variables

    document = {"pseudonym_template": "{{ PRENOM }} {{NOM}} ({{SOCIETE}}) {{NOM}} {{EMAIL}}", "sequences": [
        {"key": "welcome", "steps": [{"kind": "input", "text": "?", "variable": "PRENOM", "type": "text"},
                                     {"kind": "text", "text": "{{NOM}}"}]},
        {"key": "later", "steps": [{"kind": "set_variable", "variable": "SOCIETE", "value": "x"}]}]}
    assert uncaptured_variables(document) == ["NOM", "EMAIL"]
    assert uncaptured_variables(document, also_captured={"EMAIL"}) == ["NOM"]
    assert uncaptured_variables({"pseudonym_template": "", "sequences": []}) == []
