"""Property tests: any valid flow, under any sequence of events, never raises and always stops."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbots.engine import MAX_STEPS, BotMessage, Event, Flow, FlowInvalid, Note, Result, run, validate

VARIABLES = ["A", "B", "PRENOM"]
TEXTS = st.sampled_from(["", "Hi {{A}}", "{{B}} and {{PRENOM}}", "plain", "€…"])
ANSWERS = st.sampled_from(["", "  ", "Jean", "jean@acme.example", "not mail", "42", "-3.5", "x" * 250, "{{A}}"])


@st.composite
def flows(draw) -> dict:
    """A valid flow document: references only existing sequences, terminal steps only last."""
    keys = [f"s{i}" for i in range(draw(st.integers(1, 5)))]
    target = st.sampled_from(keys)
    counter = iter(range(1000))
    sequences = []
    for key in keys:
        steps = []
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(["text", "image", "input", "set_variable", "note"]))
            if kind == "text" or kind == "note":
                steps.append({"kind": kind, "text": draw(TEXTS.filter(str.strip))})
            elif kind == "image":
                steps.append({"kind": "image", "url": "/media/x.png", "text": draw(st.none() | TEXTS)})
            elif kind == "input":
                steps.append({"kind": "input", "text": "Q?", "variable": draw(st.sampled_from(VARIABLES)),
                              "type": draw(st.sampled_from(["text", "email", "number"]))})
            else:
                steps.append({"kind": "set_variable", "variable": draw(st.sampled_from(VARIABLES)),
                              "value": draw(TEXTS)})
        ending = draw(st.sampled_from(["none", "buttons", "goto", "escalate"]))
        if ending == "buttons":
            steps.append({"kind": "buttons", "text": "Pick", "buttons": [
                {"id": f"b-{next(counter)}", "label": "L", "target": draw(target)}
                for _ in range(draw(st.integers(1, 3)))]})
        elif ending == "goto":
            steps.append({"kind": "goto", "target": draw(target)})
        elif ending == "escalate":
            back = draw(st.booleans())
            steps.append({"kind": "escalate", "message": draw(st.none() | TEXTS),
                          "assign_to": draw(st.none() | st.just("alice")),
                          "back_label": "Back" if back else None, "return_to": draw(target) if back else None})
        sequences.append({"key": key, "steps": steps})
    return {"format": 1, "name": "Random", "pseudonym_template": "{{A}}", "welcome": draw(target),
            "fallback": draw(st.none() | target), "sequences": sequences}


def button_ids(document: dict) -> list[str]:
    return [b["id"] for s in document["sequences"] for step in s["steps"] for b in step.get("buttons", [])]


@st.composite
def flows_and_events(draw):
    document = draw(flows())
    known = button_ids(document)
    event = st.one_of(
        st.just(Event("start")),
        ANSWERS.map(lambda t: Event("text", text=t)),
        st.sampled_from(known + ["nope"]).map(lambda b: Event("button", button=b)),
        st.just(Event("back_to_bot")),
    )
    return document, draw(st.lists(event, min_size=1, max_size=12))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows_and_events())
def test_random_valid_flows_never_raise_and_always_stop(case):
    document, events = case
    assert validate(document) == []
    flow = Flow.from_dict(document)
    variables, position = {}, None
    for event in events:
        result = run(flow, variables=variables, position=position, event=event)
        assert isinstance(result, Result)
        # Bounded: a run executes at most MAX_STEPS steps, twice (the fallback after a loop) plus a re-ask.
        assert len(result.outputs) <= 2 * MAX_STEPS + 2
        assert all(isinstance(o, (BotMessage, Note)) for o in result.outputs)
        assert json.loads(json.dumps(result.position)) == result.position   # the caller stores it as JSON
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.variables.items())
        if result.error:
            assert result.outputs == () and result.variables == variables and result.position == position
            continue
        if result.escalation is not None:
            assert result.position["waiting"] == "escalated"
        variables, position = result.variables, result.position


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(flows(), st.lists(st.tuples(st.integers(0, 50), st.text(max_size=8), JSON), max_size=3))
def test_a_damaged_document_is_either_valid_or_refused_with_flow_invalid(document, damages):
    # Overwrite random fields of random steps/sequences with random JSON: from_dict must not crash.
    for index, field, value in damages:
        places = [document] + document["sequences"] + [s for q in document["sequences"] for s in q["steps"]]
        places[index % len(places)][field or "kind"] = value
    try:
        Flow.from_dict(document)
    except FlowInvalid as invalid:
        assert invalid.errors and all(isinstance(e, str) and ": " in e for e in invalid.errors)
