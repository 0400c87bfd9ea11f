"""E-mails when a visitor asks for a human: who, what, exactly once; through a real Celery worker too."""
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.core import mail
from django.db import connection

from advisors.models import Notification
from conversations import services
from conversations.models import Conversation
from conversations.notifications import escalation_emails_send
from conversations.presenters import timestamp
from conversations.tests.conftest import escalated, new_id

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_escalation_emails_the_licensed_advisors_of_the_site(demo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        conversation = escalated()
    assert sorted(m.to[0] for m in mail.outbox) == ["admin@demo.example", "alice@demo.example", "bob@demo.example"]
    message = mail.outbox[0]
    assert "Jean (ACME)" in message.subject and "Shop" in message.subject
    assert "Jean from ACME asked for a human from the menu." in message.body
    assert f"/inbox/#conversation-{conversation.pk}" in message.body
    assert "Talk to a human" in message.body  # the last visitor message
    html = message.alternatives[0][0]
    assert "Jean (ACME)" in html and "<a href=" in html


@pytest.mark.django_db
def test_the_preference_turns_the_email_off(demo, django_capture_on_commit_callbacks):
    bob = demo.advisors["bob"]
    bob.email_on_escalation = False
    bob.save()
    with django_capture_on_commit_callbacks(execute=True):
        escalated()
    assert "bob@demo.example" not in [m.to[0] for m in mail.outbox]


@pytest.mark.django_db
def test_a_task_run_twice_sends_each_email_once(demo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        conversation = escalated()
    sent = len(mail.outbox)
    assert escalation_emails_send(conversation_id=conversation.pk,
                                  waiting_since=timestamp(conversation.waiting_since)) == 0
    assert len(mail.outbox) == sent
    assert Notification.objects.filter(kind="escalation", sent_at__isnull=False).count() == sent


@pytest.mark.django_db
def test_reminder_only_while_still_unassigned(demo):
    conversation = escalated()
    key = timestamp(conversation.waiting_since)
    mail.outbox.clear()
    assert escalation_emails_send(conversation_id=conversation.pk, waiting_since=key, reminder=True) == 3
    assert all(m.subject.startswith("Still waiting") for m in mail.outbox)
    other = escalated(first_name="Paul")
    services.conversation_take(conversation_id=other.pk, advisor=demo.advisors["alice"])
    assert escalation_emails_send(conversation_id=other.pk, waiting_since=timestamp(other.waiting_since),
                                  reminder=True) == 0


@pytest.mark.django_db
def test_auto_assigned_advisor_without_license_gets_the_default_mode_version(demo, django_capture_on_commit_callbacks):
    from chatbots.models import Step

    Step.objects.filter(kind="escalate").update(assign_to="carol")
    from chatbots.services import chatbot_touch
    from routing.presence import presence_touch

    chatbot_touch(chatbot=demo.sites["shop"].chatbot)
    presence_touch(demo.advisors["carol"].pk)  # a flow's named assignee is used only while online (routing)
    with django_capture_on_commit_callbacks(execute=True):
        conversation = escalated()
    assert conversation.assigned.username == "carol"
    assert [m.to[0] for m in mail.outbox] == ["carol@demo.example"]
    body = mail.outbox[0].body
    assert f"Visitor #{conversation.visitor_id}" in body and "ACME" not in body and "Note:" not in body


@pytest.mark.django_db
def test_a_failing_mail_server_never_reaches_the_chat(demo, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 1  # nothing listens there
    with django_capture_on_commit_callbacks(execute=True):
        conversation = escalated()  # eager tasks: the retry is swallowed, the chat goes on
    assert conversation.status == "live"
    assert not Notification.objects.filter(sent_at__isnull=False).exists()
    sent = services.visitor_message_send(visitor=conversation.visitor, client_id=new_id(), text="hello?")
    assert sent.created


# ------------------------------------------------------------------------------ a real worker


@pytest.fixture
def celery_worker_process(settings, tmp_path):
    """A `celery worker` process on the Redis broker, on this test's database, with its own queue."""
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("a real worker needs the shared PostgreSQL database and Redis (CI sets DATABASE_URL and REDIS_URL)")
    from livechat.celery import app

    queue = f"test-{uuid.uuid4().hex[:8]}"
    mail_dir = tmp_path / "mail"
    db = connection.settings_dict
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="livechat.settings", CELERY_TASK_ALWAYS_EAGER="0",
               DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
               EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend", EMAIL_FILE_PATH=str(mail_dir))
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "livechat", "worker", "-Q", queue,
                                   "--concurrency", "1", "--pool", "solo", "-l", "info"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120  # a loaded machine boots Django and Celery slowly
    while b"ready." not in log.read_bytes():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"the celery worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager, app.conf.task_default_queue = False, queue
    settings.CELERY_TASK_ALWAYS_EAGER = False
    try:
        yield mail_dir, log
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()


def wait_for_mail(mail_dir: Path, count: int, timeout: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(mail_dir.glob("*.log")) if mail_dir.exists() else []
        texts = [f.read_text() for f in files]
        if sum(t.count("\nTo: ") + t.startswith("To: ") for t in texts) >= count:
            return texts
        time.sleep(0.3)
    raise AssertionError(f"fewer than {count} e-mails within {timeout}s")


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_emails_the_shop_advisors_after_an_escalation(demo, celery_worker_process):
    mail_dir, log = celery_worker_process
    started = time.monotonic()
    conversation = escalated()
    assert time.monotonic() - started < 30  # the chat did not wait for the mail server (bounded, not a benchmark)
    texts = "\n".join(wait_for_mail(mail_dir, 3))
    for address in ("admin@demo.example", "alice@demo.example", "bob@demo.example"):
        assert f"To: {address}" in texts
    assert "carol@demo.example" not in texts
    assert "Jean (ACME)" in texts
    # the same task again (a redelivery) sends nothing more
    from conversations.tasks import escalation_notify

    escalation_notify.delay(conversation.pk, timestamp(Conversation.objects.get(pk=conversation.pk).waiting_since))
    time.sleep(3)
    assert Notification.objects.filter(kind="escalation", sent_at__isnull=False).count() == 3
    assert "\n".join(wait_for_mail(mail_dir, 3)).count("To: ") == 3


# ------------------------------------------------------------------------------ hostile input, failing servers


@pytest.mark.django_db
def test_a_newline_in_a_captured_name_leaves_the_escalation_email_one_line(demo, django_capture_on_commit_callbacks):
    # given a visitor who answers the PRENOM prompt with a line break and a header of their own
    with django_capture_on_commit_callbacks(execute=True):
        conversation = escalated(first_name="Jean\nBcc: x@y", company="ACME\r\n")
    # then the variable is one line, and every advisor still gets the e-mail, its subject on one line
    conversation.visitor.refresh_from_db()
    assert conversation.visitor.variables == {"PRENOM": "Jean Bcc: x@y", "SOCIETE": "ACME"}
    assert sorted(m.to[0] for m in mail.outbox) == ["admin@demo.example", "alice@demo.example", "bob@demo.example"]
    for message in mail.outbox:
        assert message.subject == "[Shop] Jean Bcc: x@y (ACME) asks for a human"
        assert message.bcc == []
        headers = message.message().as_string().split("\n\n", 1)[0]
        assert "\nBcc:" not in headers and "x@y" not in message.recipients()


@pytest.mark.django_db
def test_a_subject_built_from_stored_data_is_sent_on_one_line(demo, django_capture_on_commit_callbacks):
    # a variable stored before inputs were normalized (or set by a flow) still cannot break the subject
    conversation = escalated()
    conversation.visitor.variables = {"PRENOM": "Jean\r\nBcc: x@y", "SOCIETE": "ACME"}
    conversation.visitor.save(update_fields=["variables"])
    mail.outbox.clear()
    assert escalation_emails_send(conversation_id=conversation.pk,
                                  waiting_since=timestamp(conversation.waiting_since), reminder=True) == 3
    assert all("\n" not in m.subject and "\r" not in m.subject for m in mail.outbox)


@pytest.mark.django_db
def test_a_mail_server_that_refuses_is_retried_until_it_accepts(demo, settings, django_capture_on_commit_callbacks,
                                                                caplog):
    from tests.faults.smtp import MailServer

    # given a real SMTP server on loopback that answers the first two messages "451 try again later"
    with MailServer(refuse=2) as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 5
        # when a visitor escalates (eager Celery: a retry runs at once)
        with caplog.at_level("WARNING", logger="conversations.tasks"):
            with django_capture_on_commit_callbacks(execute=True):
                escalated()
    # then the refusals were logged and retried, and each advisor got the e-mail once
    assert server.refused == 2
    assert "retrying" in caplog.text and "451" in caplog.text
    assert server.delivered_to() == {"admin@demo.example": 1, "alice@demo.example": 1, "bob@demo.example": 1}
    assert Notification.objects.filter(kind="escalation", sent_at__isnull=False).count() == 3
