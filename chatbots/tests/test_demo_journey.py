"""The whole demo journey of CONTRACT section 2, driven through the engine alone (no database, no web)."""
from chatbots.demo import DEMO_FLOW
from chatbots.engine import BotMessage, Button, Escalation, Event, Flow, Note, pseudonym, run

MENU_BUTTONS = (Button("b-1", "Pricing"), Button("b-2", "Talk to a human"))


class Visitor:
    def __init__(self, flow: Flow):
        self.flow, self.variables, self.position = flow, {}, None

    def send(self, event: Event):
        result = run(self.flow, variables=self.variables, position=self.position, event=event)
        assert result.error is None, result.error
        self.variables, self.position = result.variables, result.position
        return result


def test_the_demo_journey_through_the_engine():
    flow = Flow.from_dict(DEMO_FLOW)
    visitor = Visitor(flow)
    menu = BotMessage("How can I help, Jean?", buttons=MENU_BUTTONS)

    greeting = visitor.send(Event("start"))
    assert greeting.outputs == (BotMessage("Hi! I'm the Demo bot. What's your first name?",
                                           input={"variable": "PRENOM", "type": "text"}),)

    company = visitor.send(Event("text", text="Jean"))
    assert company.outputs == (BotMessage("Nice to meet you, Jean! Which company are you with?",
                                          input={"variable": "SOCIETE", "type": "text"}),)

    shown = visitor.send(Event("text", text="ACME"))
    assert shown.outputs == (menu,)
    assert visitor.variables == {"PRENOM": "Jean", "SOCIETE": "ACME"}
    assert pseudonym(flow.pseudonym_template, visitor.variables) == "Jean (ACME)"

    assert flow.button_label("b-1") == "Pricing"    # the caller stores the press as the label
    pricing = visitor.send(Event("button", button="b-1"))
    assert pricing.outputs == (BotMessage("Plans start at 29 \u20ac/month."), menu)

    human = visitor.send(Event("button", button="b-2"))
    assert human.outputs == (Note("Jean from ACME asked for a human from the menu."),
                             BotMessage("I'm connecting you with an advisor\u2026"))
    assert human.escalation == Escalation(assign_to=None, back_label="Back to chatbot")

    back = visitor.send(Event("back_to_bot"))
    assert back.outputs == (menu,) and back.escalation is None

    lost = visitor.send(Event("text", text="what about delivery?"))
    assert lost.outputs == (BotMessage("Sorry, I didn't get that."), menu)
    assert visitor.variables == {"PRENOM": "Jean", "SOCIETE": "ACME"}


def test_after_a_closed_conversation_free_text_gets_the_fallback_and_the_menu():
    # Closing is a state: the caller may hand back position None; the bot treats the text as free text.
    flow = Flow.from_dict(DEMO_FLOW)
    result = run(flow, variables={"PRENOM": "Jean"}, position=None, event=Event("text", text="hello again"))
    assert result.outputs == (BotMessage("Sorry, I didn't get that."),
                              BotMessage("How can I help, Jean?", buttons=MENU_BUTTONS))
