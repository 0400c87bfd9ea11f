"""The admin edits flows with inlines and refuses an invalid flow with the messages of `flow validate`."""
import copy
import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from chatbots.demo import DEMO_FLOW
from chatbots.engine import validate
from chatbots.models import Button, Chatbot, Sequence, Step
from chatbots.selectors import flow_for
from chatbots.services import demo_chatbot_ensure

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(user)
    return client


@pytest.fixture
def demo():
    return demo_chatbot_ensure()


def form_data(response) -> dict:
    """The POST the change page would send unchanged: main form, inline management forms and rows."""
    data = {}

    def add(form):
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            data[field.html_name] = "on" if value is True else value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.forms:
            add(form)
    return data


def refused_errors(response) -> list[str]:
    assert response.status_code == 200, "the admin should re-render the form, not redirect"
    return list(response.context["adminform"].form.non_field_errors())


def page_errors(response) -> dict[str, list[str]]:
    """Every error of the re-rendered page, by the field it stands beside: "welcome_sequence", "steps-1-target",
    "steps-1" (the row itself), "__all__" (above the form)."""
    assert response.status_code == 200, "the admin should re-render the form, not redirect"
    found = {}
    for field, errors in response.context["adminform"].form.errors.items():
        found[field] = list(errors)
    for inline in response.context["inline_admin_formsets"]:
        for index, form in enumerate(inline.formset.forms):
            for field, errors in form.errors.items():
                name = f"{inline.formset.prefix}-{index}" + ("" if field == "__all__" else f"-{field}")
                found[name] = list(errors)
    return found


def cli_errors(document: dict) -> list[str]:
    return validate(document, advisors=set())


def test_chatbot_admin_refuses_an_unknown_welcome_sequence_with_the_cli_message(admin_client, demo):
    url = reverse("admin:chatbots_chatbot_change", args=[demo.pk])
    data = form_data(admin_client.get(url))
    data["welcome_sequence"] = "welcomme"

    response = admin_client.post(url, data)

    document = copy.deepcopy(DEMO_FLOW)
    document["welcome"] = "welcomme"
    assert cli_errors(document) == ['welcome: unknown sequence "welcomme"']
    # the validator's error, beside the field it is about
    assert page_errors(response) == {"welcome_sequence": ['unknown sequence "welcomme"']}
    html = response.content.decode()
    field_row = html.index("field-welcome_sequence")
    assert html.index("unknown sequence &quot;welcomme&quot;", field_row) < html.index("field-fallback_sequence")
    stored = Chatbot.objects.get(pk=demo.pk)
    assert stored.welcome_sequence == "welcome" and stored.updated_at == demo.updated_at


def test_chatbot_admin_refuses_deleting_a_sequence_still_referenced(admin_client, demo):
    url = reverse("admin:chatbots_chatbot_change", args=[demo.pk])
    data = form_data(admin_client.get(url))
    menu_row = next(k for k, v in data.items() if k.startswith("sequences-") and k.endswith("-key") and v == "menu")
    data[menu_row.replace("-key", "-DELETE")] = "on"

    response = admin_client.post(url, data)

    assert refused_errors(response) == [
        'sequences[0].steps[2].target: unknown sequence "menu"',
        'sequences[1].steps[1].target: unknown sequence "menu"',
        'sequences[2].steps[1].return_to: unknown sequence "menu"',
        'sequences[3].steps[1].target: unknown sequence "menu"',
    ]
    assert Sequence.objects.filter(chatbot=demo, key="menu").exists()
    assert Button.objects.filter(sequence__key="menu").count() == 2


def test_sequence_admin_refuses_a_button_to_an_unknown_sequence_with_the_cli_message(admin_client, demo):
    menu = Sequence.objects.get(chatbot=demo, key="menu")
    url = reverse("admin:chatbots_sequence_change", args=[menu.pk])
    data = form_data(admin_client.get(url))
    target = next(k for k, v in data.items() if k.startswith("buttons-") and k.endswith("-target") and v == "pricing")
    data[target] = "menuu"

    response = admin_client.post(url, data)

    document = copy.deepcopy(DEMO_FLOW)
    document["sequences"][1]["steps"][0]["buttons"][0]["target"] = "menuu"
    assert cli_errors(document) == ['sequences[1].steps[0].buttons[0].target: unknown sequence "menuu"']
    row = next(k for k, v in data.items() if v == "menuu").rsplit("-", 1)[0]
    assert page_errors(response) == {f"{row}-target": ['unknown sequence "menuu"']}
    assert Button.objects.get(sequence=menu, key="b-1").target == "pricing"


def test_sequence_admin_refuses_buttons_without_a_buttons_step(admin_client, demo):
    pricing = Sequence.objects.get(chatbot=demo, key="pricing")
    url = reverse("admin:chatbots_sequence_change", args=[pricing.pk])
    data = form_data(admin_client.get(url))
    data.update({"buttons-TOTAL_FORMS": "1", "buttons-0-position": "0", "buttons-0-label": "Hi",
                 "buttons-0-target": "menu", "buttons-0-key": "", "buttons-0-sequence": str(pricing.pk)})

    response = admin_client.post(url, data)

    assert refused_errors(response) == ["the sequence has buttons but does not end with a buttons step"]
    assert not Button.objects.filter(sequence=pricing).exists()


def test_sequence_admin_saves_a_valid_change_assigns_button_ids_and_refreshes_the_flow(admin_client, demo):
    menu = Sequence.objects.get(chatbot=demo, key="menu")
    before = flow_for(demo)
    url = reverse("admin:chatbots_sequence_change", args=[menu.pk])
    data = form_data(admin_client.get(url))
    data.update({"buttons-TOTAL_FORMS": "3", "buttons-2-position": "2", "buttons-2-label": "Prices again",
                 "buttons-2-target": "pricing", "buttons-2-key": "", "buttons-2-sequence": str(menu.pk)})
    step_text = next(k for k, v in data.items() if k.startswith("steps-") and k.endswith("-text"))
    data[step_text] = "What now, {{PRENOM}}?"

    response = admin_client.post(url, data)

    assert response.status_code == 302
    assert list(Button.objects.filter(sequence=menu).values_list("key", "label")) == [
        ("b-1", "Pricing"), ("b-2", "Talk to a human"), ("b-3", "Prices again")]
    chatbot = Chatbot.objects.get(pk=demo.pk)
    assert chatbot.updated_at > demo.updated_at
    after = flow_for(chatbot)
    assert after is not before and after.button_label("b-3") == "Prices again"
    assert Step.objects.get(sequence=menu).text == "What now, {{PRENOM}}?"


def test_sequence_delete_view_refuses_deleting_a_referenced_sequence(admin_client, demo):
    pricing = Sequence.objects.get(chatbot=demo, key="pricing")
    response = admin_client.post(reverse("admin:chatbots_sequence_delete", args=[pricing.pk]), {"post": "yes"},
                                 follow=True)
    assert Sequence.objects.filter(pk=pricing.pk).exists()
    texts = [str(m) for m in response.context["messages"]]
    assert texts == ['Not deleted: sequences[1].steps[0].buttons[0].target: unknown sequence "pricing"']


def test_sequence_delete_view_deletes_an_unreferenced_sequence(admin_client, demo):
    extra = Sequence.objects.create(chatbot=demo, key="spare", position=9)
    response = admin_client.post(reverse("admin:chatbots_sequence_delete", args=[extra.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Sequence.objects.filter(pk=extra.pk).exists()
    assert Chatbot.objects.get(pk=demo.pk).updated_at > demo.updated_at


def test_a_new_chatbot_can_be_created_with_its_welcome_sequence_in_one_form(admin_client):
    url = reverse("admin:chatbots_chatbot_add")
    data = {"name": "Shop bot", "pseudonym_template": "", "welcome_sequence": "welcome", "fallback_sequence": "",
            "sequences-TOTAL_FORMS": "1", "sequences-INITIAL_FORMS": "0", "sequences-MIN_NUM_FORMS": "0",
            "sequences-MAX_NUM_FORMS": "1000", "sequences-0-key": "welcome", "sequences-0-position": "0"}
    assert admin_client.post(url, data).status_code == 302
    assert Sequence.objects.get(chatbot__name="Shop bot").key == "welcome"

    data.update({"name": "Broken bot", "welcome_sequence": "start"})
    response = admin_client.post(url, data)
    assert page_errors(response) == {"welcome_sequence": ['unknown sequence "start"']}
    assert not Chatbot.objects.filter(name="Broken bot").exists()


def test_a_steps_error_stands_beside_that_steps_field_and_other_sequences_errors_above(admin_client, demo):
    human = Sequence.objects.get(chatbot=demo, key="human")
    url = reverse("admin:chatbots_sequence_change", args=[human.pk])
    data = form_data(admin_client.get(url))
    data["key"] = "humans"  # the menu's button still names "human": an error of another sequence, above the form
    escalate = next(k for k, v in data.items() if k.startswith("steps-") and k.endswith("-kind") and v == "escalate")
    row = escalate.rsplit("-", 1)[0]
    data[f"{row}-return_to"] = ""  # a way back needs both its label and its sequence: an error of the step itself
    data[f"{row}-assign_to"] = "nobody-by-that-name"  # a crafted POST: the validator still decides

    response = admin_client.post(url, data)

    assert page_errors(response) == {
        "__all__": ['sequences[1].steps[0].buttons[1].target: unknown sequence "human"'],
        row: ["back_label and return_to go together (a way back needs both)"],
        f"{row}-assign_to": ['unknown advisor "nobody-by-that-name"'],
    }
    assert Sequence.objects.filter(pk=human.pk, key="human").exists()


def test_the_editor_offers_stored_sequences_and_advisors_as_choices(admin_client, demo):
    from advisors.demo import seed_demo

    seed_demo()
    human = Sequence.objects.get(chatbot=demo, key="human")
    response = admin_client.get(reverse("admin:chatbots_sequence_change", args=[human.pk]))
    forms = {f.instance.kind: f for f in next(i.formset for i in response.context["inline_admin_formsets"]
                                               if i.formset.prefix == "steps").forms}
    escalate = forms["escalate"]
    assert [value for value, _ in escalate.fields["return_to"].widget.choices] == [
        "", "welcome", "menu", "pricing", "human", "fallback"]
    assert ("alice", "Alice (alice)") in escalate.fields["assign_to"].widget.choices
    html = response.content.decode()
    assert '<select name="steps-1-return_to"' in html and '<option value="menu" selected>' in html
    # the kind select carries which fields each kind shows (from engine.STEP_FIELDS), for flow_editor.js
    columns = json.loads(escalate.fields["kind"].widget.attrs["data-step-columns"])
    assert columns["escalate"] == ["assign_to", "back_label", "return_to", "text"]
    assert columns["goto"] == ["target"]
    assert "chatbots/flow_editor.js" in html
    chatbot_page = admin_client.get(reverse("admin:chatbots_chatbot_change", args=[demo.pk]))
    welcome = chatbot_page.context["adminform"].form.fields["welcome_sequence"]
    assert [value for value, _ in welcome.widget.choices][1:] == ["welcome", "menu", "pricing", "human", "fallback"]


def test_a_pseudonym_naming_a_variable_no_step_captures_is_saved_with_a_warning(admin_client, demo):
    url = reverse("admin:chatbots_chatbot_change", args=[demo.pk])
    data = form_data(admin_client.get(url))
    assert "no step of the flow captures" not in admin_client.get(url).content.decode()
    data["pseudonym_template"] = "{{PRENOM}} {{NOM}} ({{SOCIETE}})"

    response = admin_client.post(url, data, follow=True)

    assert Chatbot.objects.get(pk=demo.pk).pseudonym_template == "{{PRENOM}} {{NOM}} ({{SOCIETE}})"
    warnings = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    assert len(warnings) == 1 and "{{NOM}}, which no step of the flow captures" in warnings[0]
    assert "{{NOM}}, which no step of the flow captures" in admin_client.get(url).content.decode()
