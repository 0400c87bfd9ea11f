"""Hand-made timelines: a settable clock, and conversations walked through the real services."""
from datetime import datetime, timedelta, timezone

import pytest
from django.utils import timezone as django_timezone

from conversations import services
from conversations.models import Conversation, Visitor
from conversations.tests.conftest import api, new_id, start_session, tokens  # noqa: F401 (fixtures)


class Clock:
    """django.utils.timezone.now, as the services, auto_now_add and the report's defaults read it."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def at(self, value: datetime) -> "Clock":
        self.now = value
        return self

    def after(self, seconds: float) -> "Clock":
        self.now += timedelta(seconds=seconds)
        return self


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc))
    monkeypatch.setattr(django_timezone, "now", clock)
    return clock


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def visitor_escalates(site_key: str = "demo-shop") -> tuple[Conversation, str]:
    """A new visitor walks the demo bot to "Talk to a human" (all at the clock's time); the conversation and the
    visitor's token."""
    session = start_session(site_key)
    visitor = Visitor.objects.get(pk=session["visitor"]["id"])
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="Jean")
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="ACME")
    conversation = Conversation.objects.get(visitor=visitor)
    menu = conversation.messages.exclude(buttons=[]).last()
    human = next(b["id"] for b in menu.buttons if b["label"] == "Talk to a human")
    services.visitor_button_press(visitor=visitor, client_id=new_id(), button=human)
    conversation.refresh_from_db()
    assert conversation.status == "live"
    return conversation, session["token"]


def reply(conversation: Conversation, advisor, text: str = "Hello") -> None:
    services.advisor_message_send(conversation_id=conversation.pk, advisor=advisor, client_id=new_id(), text=text)
