import pytest

from advisors.demo import seed_demo
from advisors.models import Site
from chatbots.demo import DEMO_FLOW
from chatbots.engine import FlowInvalid
from chatbots.models import Button, Chatbot, Sequence, Step
from chatbots.selectors import flow_document, flow_for
from chatbots.services import button_keys_assign, demo_chatbot_ensure, flow_import
from chatbots.tests.flows import flow_doc, seq, text

pytestmark = pytest.mark.django_db


def test_demo_chatbot_is_stored_exactly_as_the_contract_says():
    chatbot = demo_chatbot_ensure()
    assert flow_document(chatbot=chatbot) == (DEMO_FLOW, [])
    assert chatbot.pseudonym_template == "{{PRENOM}} ({{SOCIETE}})"
    assert Step.objects.get(kind="text", sequence__key="pricing").text == "Plans start at 29 \u20ac/month."


def test_seed_demo_twice_changes_nothing_and_both_sites_use_the_bot():
    seed_demo()
    chatbot = Chatbot.objects.get(name="Demo bot")
    rows = [list(m.objects.order_by("id").values()) for m in (Chatbot, Sequence, Step, Button)]
    seed_demo()
    assert [list(m.objects.order_by("id").values()) for m in (Chatbot, Sequence, Step, Button)] == rows
    assert set(Site.objects.values_list("key", "chatbot")) == {("demo-shop", chatbot.pk), ("demo-blog", chatbot.pk)}


def test_demo_chatbot_ensure_restores_an_edited_demo_bot():
    chatbot = demo_chatbot_ensure()
    Step.objects.filter(sequence__key="pricing", kind="text").update(text="Free!")
    demo_chatbot_ensure()
    assert flow_document(chatbot=Chatbot.objects.get(pk=chatbot.pk)) == (DEMO_FLOW, [])


def test_an_invalid_import_stores_nothing():
    document = flow_doc(seq("welcome", {"kind": "goto", "target": "menuu"}))
    with pytest.raises(FlowInvalid) as raised:
        flow_import(data=document)
    assert raised.value.errors == ['fallback: unknown sequence "fallback"',
                                   'sequences[0].steps[0].target: unknown sequence "menuu"']
    assert not Chatbot.objects.exists() and not Sequence.objects.exists()


def test_import_replaces_the_flow_but_keeps_the_chatbot_row_sites_point_at():
    chatbot = demo_chatbot_ensure()
    replaced = flow_import(data=flow_doc(seq("welcome", text("New")), fallback=None, name="Demo bot"))
    assert replaced.pk == chatbot.pk and replaced.updated_at > chatbot.updated_at
    assert list(Sequence.objects.values_list("key", flat=True)) == ["welcome"]
    assert not Button.objects.exists()


def test_import_refuses_an_escalation_to_an_unknown_advisor():
    document = flow_doc(seq("welcome", {"kind": "escalate", "assign_to": "nobody"}), fallback=None)
    with pytest.raises(FlowInvalid) as raised:
        flow_import(data=document)
    assert raised.value.errors == ['sequences[0].steps[0].assign_to: unknown advisor "nobody"']


def test_button_keys_assign_gives_the_next_free_ids_and_keeps_existing_ones():
    chatbot = demo_chatbot_ensure()
    menu = Sequence.objects.get(chatbot=chatbot, key="menu")
    added = Button.objects.create(sequence=menu, key="", position=2, label="More", target="pricing")
    button_keys_assign(chatbot=chatbot)
    assert list(Button.objects.order_by("id").values_list("key", flat=True)) == ["b-1", "b-2", "b-3"]
    added.refresh_from_db()
    assert added.key == "b-3"


def test_flow_for_is_cached_until_the_chatbot_changes(django_assert_num_queries):
    chatbot = demo_chatbot_ensure()
    first = flow_for(chatbot)
    with django_assert_num_queries(0):
        assert flow_for(chatbot) is first
    flow_import(data={**DEMO_FLOW, "pseudonym_template": "{{PRENOM}}"})
    fresh = Chatbot.objects.get(pk=chatbot.pk)
    assert flow_for(fresh) is not first and flow_for(fresh).pseudonym_template == "{{PRENOM}}"
