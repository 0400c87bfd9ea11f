"""The "Demo bot" of CONTRACT section 2, in the export format; the texts are exact."""

DEMO_FLOW = {
    "format": 1,
    "name": "Demo bot",
    "pseudonym_template": "{{PRENOM}} ({{SOCIETE}})",
    "welcome": "welcome",
    "fallback": "fallback",
    "sequences": [
        {"key": "welcome", "steps": [
            {"kind": "input", "text": "Hi! I'm the Demo bot. What's your first name?", "variable": "PRENOM",
             "type": "text"},
            {"kind": "input", "text": "Nice to meet you, {{PRENOM}}! Which company are you with?",
             "variable": "SOCIETE", "type": "text"},
            {"kind": "goto", "target": "menu"},
        ]},
        {"key": "menu", "steps": [
            {"kind": "buttons", "text": "How can I help, {{PRENOM}}?", "buttons": [
                {"id": "b-1", "label": "Pricing", "target": "pricing"},
                {"id": "b-2", "label": "Talk to a human", "target": "human"},
            ]},
        ]},
        {"key": "pricing", "steps": [
            {"kind": "text", "text": "Plans start at 29 \u20ac/month."},
            {"kind": "goto", "target": "menu"},
        ]},
        {"key": "human", "steps": [
            {"kind": "note", "text": "{{PRENOM}} from {{SOCIETE}} asked for a human from the menu."},
            {"kind": "escalate", "message": "I'm connecting you with an advisor\u2026", "assign_to": None,
             "back_label": "Back to chatbot", "return_to": "menu"},
        ]},
        {"key": "fallback", "steps": [
            {"kind": "text", "text": "Sorry, I didn't get that."},
            {"kind": "goto", "target": "menu"},
        ]},
    ],
}
