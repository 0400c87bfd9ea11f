"""Small flow documents for tests (export format)."""
import copy


def flow_doc(*sequences: dict, welcome: str = "welcome", fallback: str | None = "fallback",
             name: str = "Test bot", pseudonym_template: str = "") -> dict:
    return {"format": 1, "name": name, "pseudonym_template": pseudonym_template, "welcome": welcome,
            "fallback": fallback, "sequences": [copy.deepcopy(s) for s in sequences]}


def seq(key: str, *steps: dict) -> dict:
    return {"key": key, "steps": list(steps)}


def text(value: str) -> dict:
    return {"kind": "text", "text": value}


def goto(target: str) -> dict:
    return {"kind": "goto", "target": target}


def ask(question: str, variable: str, type_: str = "text") -> dict:
    return {"kind": "input", "text": question, "variable": variable, "type": type_}


def buttons(question: str, *items: tuple[str, str, str]) -> dict:
    return {"kind": "buttons", "text": question,
            "buttons": [{"id": i, "label": label, "target": target} for i, label, target in items]}


def escalate(message: str | None = None, assign_to: str | None = None, back_label: str | None = None,
             return_to: str | None = None) -> dict:
    return {"kind": "escalate", "message": message, "assign_to": assign_to, "back_label": back_label,
            "return_to": return_to}
