"""Replies by e-mail: an advisor's replies to a visitor who left (no widget socket for 60 s) and gave EMAIL."""
import time
from datetime import timedelta

import pytest
from django.core import mail

from conversations import services
from conversations.models import Visitor
from conversations.tests.conftest import escalated, new_id
from conversations.tests.test_notifications import celery_worker_process  # noqa: F401 (fixture)
from routing.emails import visitor_replies_send


def left_with_email(conversation, email="jean@acme.example", page="https://shop.example/pricing"):
    Visitor.objects.filter(pk=conversation.visitor_id).update(
        online_sockets=0, last_seen_at=conversation.visitor.last_seen_at - timedelta(seconds=61), page=page,
        variables={**conversation.visitor.variables, "EMAIL": email})


def reply(demo, conversation, text, *, note=False, advisor="alice"):
    return services.advisor_message_send(conversation_id=conversation.pk, advisor=demo.advisors[advisor],
                                         client_id=new_id(), text=text, note=note)


@pytest.mark.django_db
def test_a_reply_to_a_visitor_who_left_is_emailed_with_the_site_name_and_page(demo,
                                                                              django_capture_on_commit_callbacks):
    conversation = escalated()
    left_with_email(conversation)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        reply(demo, conversation, "Our plans start at 29 €/month.")
    [message] = mail.outbox
    assert message.to == ["jean@acme.example"] and "Shop" in message.subject
    assert "Alice: Our plans start at 29 €/month." in message.body
    assert "https://shop.example/pricing" in message.body
    html = message.alternatives[0][0]
    assert "Our plans start at 29 €/month." in html and 'href="https://shop.example/pricing"' in html


@pytest.mark.django_db
def test_never_a_note_and_nothing_to_a_visitor_still_there_or_without_email(demo, django_capture_on_commit_callbacks):
    conversation = escalated()
    left_with_email(conversation)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        reply(demo, conversation, "secret: VIP customer", note=True)
    assert mail.outbox == []
    here = escalated(first_name="Paul")
    left_with_email(here)
    Visitor.objects.filter(pk=here.visitor_id).update(online_sockets=1)  # a widget socket is open
    no_email = escalated(first_name="Zoe")
    Visitor.objects.filter(pk=no_email.visitor_id).update(
        online_sockets=0, last_seen_at=no_email.visitor.last_seen_at - timedelta(seconds=61))
    recent = escalated(first_name="Ann")
    left_with_email(recent)
    Visitor.objects.filter(pk=recent.visitor_id).update(last_seen_at=recent.visitor.last_seen_at)  # left just now
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        for other in (here, no_email, recent):
            reply(demo, other, "Hello?")
    assert mail.outbox == []


@pytest.mark.django_db
def test_replies_of_one_window_go_in_one_email_and_each_reply_is_emailed_once(demo):
    conversation = escalated()
    left_with_email(conversation)
    reply(demo, conversation, "First answer.")
    reply(demo, conversation, "A note for the team.", note=True)
    reply(demo, conversation, "Second answer.", advisor="bob")
    mail.outbox.clear()
    # the batch task runs once the window is over: both replies, in order, no note
    assert visitor_replies_send(conversation_id=conversation.pk) == 2
    [message] = mail.outbox
    body = message.body
    assert body.index("Alice: First answer.") < body.index("Bob: Second answer.") and "note" not in body
    assert visitor_replies_send(conversation_id=conversation.pk) == 0  # a redelivery: nothing new
    reply(demo, conversation, "Third answer.")
    assert visitor_replies_send(conversation_id=conversation.pk) == 1
    assert "Third answer." in mail.outbox[-1].body and "First answer." not in mail.outbox[-1].body


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_emails_the_replies_of_one_window_once(demo, settings, celery_worker_process):  # noqa: F811
    mail_dir, log = celery_worker_process
    settings.LIVECHAT = {**settings.LIVECHAT, "REPLY_EMAIL_BATCH_S": 3}
    conversation = escalated()
    left_with_email(conversation)
    reply(demo, conversation, "One.")
    reply(demo, conversation, "Two.")  # within the window: the same e-mail
    deadline = time.monotonic() + 90
    while "To: jean@acme.example" not in _mails(mail_dir) and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(1)
    texts = _mails(mail_dir)
    assert texts.count("To: jean@acme.example") == 1, log.read_text()[-3000:]
    assert "Alice: One." in texts and "Alice: Two." in texts


def _mails(mail_dir) -> str:
    return "\n".join(f.read_text() for f in sorted(mail_dir.glob("*.log"))) if mail_dir.exists() else ""
