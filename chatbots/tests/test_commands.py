import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from chatbots.models import Chatbot, Sequence
from chatbots.services import demo_chatbot_ensure, flow_import
from chatbots.tests.flows import ask, buttons, escalate, flow_doc, seq, text

pytestmark = pytest.mark.django_db


def every_kind_flow() -> dict:
    return flow_doc(
        seq("welcome", text("Hi"), {"kind": "image", "url": "/media/bot/hi.png", "text": "Look"},
            {"kind": "image", "url": "https://cdn.example/x.png", "text": None}, ask("Mail?", "EMAIL", "email"),
            {"kind": "set_variable", "variable": "SEEN", "value": "yes {{EMAIL}}"},
            {"kind": "note", "text": "{{EMAIL}} came"}, {"kind": "goto", "target": "menu"}),
        seq("menu", buttons("Pick \u20ac", ("b-7", "Human", "human"), ("x-1", "Again", "welcome"))),
        seq("human", escalate("Wait\u2026", back_label="Back to chatbot", return_to="menu")),
        seq("dead-end", escalate()),
        seq("fallback", text("Sorry"), {"kind": "goto", "target": "menu"}),
        name="Every kind", pseudonym_template="{{EMAIL}}")


def test_export_import_export_is_byte_identical(tmp_path):
    flow_import(data=every_kind_flow())
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    call_command("flow", "export", "Every kind", str(first))
    Chatbot.objects.filter(name="Every kind").update(pseudonym_template="changed")
    call_command("flow", "import", str(first))
    call_command("flow", "export", "Every kind", str(second))
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(first.read_text(encoding="utf-8")) == every_kind_flow()
    assert "Pick \u20ac".encode() in first.read_bytes()      # versionable: readable UTF-8, not \u escapes


def test_demo_bot_round_trips_too(tmp_path, capsys):
    demo_chatbot_ensure()
    call_command("flow", "export", "Demo bot")
    exported = capsys.readouterr().out
    (tmp_path / "demo.json").write_text(exported, encoding="utf-8")
    call_command("flow", "import", str(tmp_path / "demo.json"))
    assert capsys.readouterr().out.endswith('imported chatbot "Demo bot" (5 sequences)\n')
    call_command("flow", "export", "Demo bot")
    assert capsys.readouterr().out == exported


def test_validate_names_the_bad_element_and_exits_non_zero(tmp_path, capsys):
    document = flow_doc(seq("welcome", text("Hi")), seq("menu", text("Menu")),
                        seq("pick", text("Choose"), buttons("Pick", ("b-1", "Menu", "menuu"))), fallback=None)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError, match="1 error, invalid"):
        call_command("flow", "validate", str(path))
    assert capsys.readouterr().err.strip() == 'sequences[2].steps[1].buttons[0].target: unknown sequence "menuu"'


def test_validate_accepts_a_valid_file(tmp_path, capsys):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(every_kind_flow()))
    call_command("flow", "validate", str(path))
    assert capsys.readouterr().out.strip() == f"{path}: valid"


def test_import_of_a_broken_file_imports_nothing(tmp_path, capsys):
    document = every_kind_flow()
    document["sequences"][1]["steps"][0]["buttons"][1]["id"] = "b-7"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError):
        call_command("flow", "import", str(path))
    assert "sequences[1].steps[0].buttons[1].id: duplicate button id" in capsys.readouterr().err
    assert not Chatbot.objects.exists() and not Sequence.objects.exists()


def test_the_cli_exits_non_zero_on_a_broken_file(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "broken.json"
    path.write_text('{"format": 1,')
    done = subprocess.run([sys.executable, "manage.py", "flow", "validate", str(path)], capture_output=True, text=True)
    assert done.returncode != 0 and "not valid JSON" in done.stderr


def test_export_of_an_unknown_chatbot_fails():
    with pytest.raises(CommandError, match='no chatbot named "Nope"'):
        call_command("flow", "export", "Nope")
