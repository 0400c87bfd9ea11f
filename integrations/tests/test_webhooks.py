"""Webhooks: signed bodies, retries, the window, order per conversation, notes, rollbacks and the SSRF guard, against
a real HTTP receiver on loopback (and a real Celery worker where the test says so)."""
import hashlib
import hmac
import json
import socket
import time

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from conversations import services as conversation_services
from conversations.tests.conftest import escalated, new_id, start_session
from integrations import services, webhooks
from integrations.forms import WebhookForm
from integrations.models import Attempt, Delivery
from integrations.tests.conftest import Receiver, make_webhook


def signed(secret: str, received: dict) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), received["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(received["headers"]["X-Livechat-Signature"], expected)


# ------------------------------------------------------------------------------ with a real worker


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_signed_deliveries_are_retried_after_a_500_and_keep_their_order(demo, on_worker):
    # given a receiver that answers the first POST with a 500, and a webhook for every event
    with Receiver(statuses=[500]) as receiver:
        make_webhook(demo, receiver.url)
        # when a visitor walks to a human and an advisor takes, answers and closes the conversation
        started = time.monotonic()
        conversation = escalated()
        alice = demo.advisors["alice"]
        conversation_services.advisor_message_send(conversation_id=conversation.pk, advisor=alice,
                                                   client_id=new_id(), text="Hello Jean")
        conversation_services.conversation_close(conversation_id=conversation.pk, advisor=alice)
        assert time.monotonic() - started < 10  # the chat only queued (bounded, not a benchmark)
        expected = list(Delivery.objects.filter(conversation_id=conversation.pk).order_by("id")
                        .values_list("uuid", flat=True))
        # then every delivery arrives once with a 2xx, after the first one's 500 and its retry
        receiver.wait_for(lambda got: sum(r["status"] == 200 for r in got) >= len(expected))
    received = receiver.received
    assert received[0]["status"] == 500
    assert received[1]["headers"]["X-Livechat-Delivery"] == received[0]["headers"]["X-Livechat-Delivery"]
    ok = [r for r in received if r["status"] == 200]
    # in the order they were emitted: the 500 held the later ones back
    assert [r["headers"]["X-Livechat-Delivery"] for r in ok] == [str(u) for u in expected]
    for r in ok:
        body = json.loads(r["body"])
        assert signed("s3cret", r)
        assert not signed("other", r)
        assert set(body) == {"id", "event", "created_at", "data"}
        assert r["headers"]["X-Livechat-Event"] == body["event"]
        assert r["headers"]["X-Livechat-Delivery"] == body["id"]
        assert r["path"] == "/hooks/livechat?src=test"
    events = [json.loads(r["body"])["event"] for r in ok]
    assert events.index("conversation.escalated") < events.index("conversation.assigned") \
        < events.index("conversation.closed")
    escalation = next(json.loads(r["body"]) for r in ok if json.loads(r["body"])["event"] == "conversation.escalated")
    assert escalation["data"]["conversation"]["visitor"]["name"] == "Jean (ACME)"
    assert escalation["data"]["conversation"]["status"] == "live"
    # no note reached this webhook (include_notes is off): the bot's automatic note was not sent
    assert not [b for b in receiver.bodies()
                if b["event"] == "message.created" and b["data"]["message"]["kind"] == "note"]
    first = Delivery.objects.get(uuid=expected[0])
    assert first.status == "delivered" and first.attempts == 2
    log = list(Attempt.objects.filter(delivery=first).order_by("id"))
    assert [a.status_code for a in log] == [500, 200]
    assert log[0].response_excerpt == "receiver says no" and log[1].response_excerpt == '{"ok": true}'


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_delivery_is_given_up_after_the_window(demo, on_worker):
    # given a receiver that always fails (the worker's window is 4 s, the first retry 0.5 s later)
    with Receiver(status=503) as receiver:
        make_webhook(demo, receiver.url, events=["conversation.escalated"])
        conversation = escalated()
        delivery = Delivery.objects.get(conversation_id=conversation.pk)
        deadline = time.monotonic() + 60
        while Delivery.objects.get(pk=delivery.pk).status == "pending" and time.monotonic() < deadline:
            time.sleep(0.2)
    delivery.refresh_from_db()
    # then it was tried with growing delays until the window ended, then given up
    assert delivery.status == "failed", delivery.status
    attempts = list(Attempt.objects.filter(delivery=delivery).order_by("id"))
    assert 3 <= len(attempts) <= 6 and delivery.attempts == len(attempts)
    assert attempts[-1].at >= delivery.retry_until
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(attempts, attempts[1:])]
    assert gaps[1] > gaps[0] * 1.5  # exponential, not constant
    assert all(a.status_code == 503 for a in attempts)


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_change_that_rolls_back_sends_nothing(demo, on_worker):
    with Receiver() as receiver:
        make_webhook(demo, receiver.url, events=["conversation.escalated", "conversation.closed"])
        conversation = escalated()
        receiver.wait_for(lambda got: len(got) == 1)
        # when a close rolls back
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                conversation_services.conversation_close(conversation_id=conversation.pk,
                                                         advisor=demo.advisors["alice"])
                raise RuntimeError("rolled back")
        # and a later change commits
        other = escalated(first_name="Paul")
        receiver.wait_for(lambda got: len(got) == 2)
        time.sleep(1.5)
    # then only the committed changes were delivered
    assert [(b["event"], b["data"]["conversation"]["id"]) for b in receiver.bodies()] == [
        ("conversation.escalated", conversation.pk), ("conversation.escalated", other.pk)]
    assert not Delivery.objects.filter(event="conversation.closed").exists()


# ------------------------------------------------------------------------------ eager (no worker)


@pytest.mark.django_db
def test_notes_only_reach_webhooks_with_include_notes(demo, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    with Receiver() as plain, Receiver() as with_notes:
        make_webhook(demo, plain.url, events=["message.created"])
        make_webhook(demo, with_notes.url, events=["message.created"], include_notes=True, secret="other")
        with django_capture_on_commit_callbacks(execute=True):
            conversation = escalated()
        with django_capture_on_commit_callbacks(execute=True):
            conversation_services.advisor_message_send(conversation_id=conversation.pk,
                                                       advisor=demo.advisors["alice"], client_id=new_id(),
                                                       text="VIP customer", note=True)
    def notes(receiver):
        return [b["data"]["message"] for b in receiver.bodies() if b["data"]["message"]["kind"] == "note"]

    # then the webhook with include_notes got the bot's automatic note and the advisor's, the other one neither
    assert [(n["text"], n["author"]) for n in notes(with_notes)] == [
        ("Jean from ACME asked for a human from the menu.", None),
        ("VIP customer", {"username": "alice", "name": demo.advisors["alice"].display_name})]
    assert notes(plain) == []
    assert len(plain.bodies()) == len(with_notes.bodies()) - 2 > 5  # the rest reached both
    assert all(signed("other", r) for r in with_notes.received)


@pytest.mark.django_db
def test_the_url_must_resolve_to_a_public_address(demo, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    account = demo.sites["shop"].account.pk
    for url in ["http://127.0.0.1:8000/x", "http://localhost/x", "http://169.254.169.254/latest/meta-data",
                "http://10.1.2.3/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/",
                "http://0.0.0.0/", "ftp://93.184.216.34/", "http://user:pw@93.184.216.34/"]:
        form = WebhookForm(data={"account": account, "url": url, "secret": "s", "events": ["message.created"]})
        assert not form.is_valid(), url
        assert "url" in form.errors, url
    form = WebhookForm(data={"account": account, "url": "https://93.184.216.34/hooks", "secret": "s",
                             "events": ["message.created"]})
    assert form.is_valid(), form.errors
    settings.WEBHOOK_ALLOW_PRIVATE = True
    form = WebhookForm(data={"account": account, "url": "http://127.0.0.1:8000/x", "secret": "s",
                             "events": ["message.created"]})
    assert form.is_valid(), form.errors


@pytest.mark.django_db
def test_the_address_is_checked_again_at_delivery_time(demo, settings, django_capture_on_commit_callbacks):
    # given a webhook saved while private addresses were allowed (or a name that resolved elsewhere then)
    with Receiver() as receiver:
        settings.WEBHOOK_ALLOW_PRIVATE = True
        make_webhook(demo, receiver.url.replace("127.0.0.1", "localhost"), events=["conversation.escalated"])
        settings.WEBHOOK_ALLOW_PRIVATE = False
        with django_capture_on_commit_callbacks(execute=True):
            conversation = escalated()
    # then nothing was sent, and the attempt says why
    assert receiver.received == []
    attempt = Attempt.objects.get(delivery__conversation_id=conversation.pk)
    assert attempt.error.startswith("refused:") and "127.0.0.1" in attempt.error or "::1" in attempt.error
    assert Delivery.objects.get(conversation_id=conversation.pk).status == "pending"  # retried, may be allowed later


@pytest.mark.django_db
def test_a_receiver_that_is_down_is_an_attempt_with_its_error_and_a_retry(demo, settings,
                                                                          django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    make_webhook(demo, f"http://127.0.0.1:{port}/hooks", events=["conversation.escalated"])
    with django_capture_on_commit_callbacks(execute=True):
        conversation = escalated()
    attempt = Attempt.objects.get(delivery__conversation_id=conversation.pk)
    assert attempt.error.startswith("ConnectionRefusedError") and attempt.status_code is None
    delivery = Delivery.objects.get(conversation_id=conversation.pk)
    assert (delivery.status, delivery.attempts) == ("pending", 1) and delivery.next_attempt_at > attempt.at


@pytest.mark.django_db
def test_a_slow_receiver_is_cut_by_the_timeout(demo, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE, settings.WEBHOOK_TIMEOUT_S = True, 0.5
    with Receiver(delay_s=3) as receiver:
        make_webhook(demo, receiver.url, events=["conversation.escalated"])
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            conversation = escalated()
        assert time.monotonic() - started < 2.5
    attempt = Attempt.objects.get(delivery__conversation_id=conversation.pk)
    assert attempt.error.startswith("timeout") and attempt.duration_ms < 1500


@pytest.mark.django_db
def test_send_again_resends_the_same_body(demo, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    with Receiver() as receiver:
        make_webhook(demo, receiver.url, events=["conversation.escalated"])
        with django_capture_on_commit_callbacks(execute=True):
            escalated()
        delivery = Delivery.objects.get()
        assert delivery.status == "delivered"
        with django_capture_on_commit_callbacks(execute=True):
            assert services.delivery_send_again(delivery_ids=[delivery.pk]) == 1
    assert len(receiver.received) == 2 and receiver.received[0]["body"] == receiver.received[1]["body"]
    assert Attempt.objects.filter(delivery=delivery).count() == 2


@pytest.mark.django_db
def test_without_webhooks_a_message_costs_no_query_of_its_own(demo):
    conversation = escalated()
    visitor = conversation.visitor
    conversation_services.visitor_message_send(visitor=visitor, client_id=new_id(), text="warm the cache")
    with CaptureQueriesContext(connection) as queries:
        conversation_services.visitor_message_send(visitor=visitor, client_id=new_id(), text="hello?")
    assert not [q for q in queries.captured_queries if "integrations_" in q["sql"] or "advisors_site" in q["sql"]]
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_a_new_webhook_is_heard_at_once_in_this_process(demo, settings):
    session = start_session()
    from conversations.models import Visitor

    visitor = Visitor.objects.get(pk=session["visitor"]["id"])
    conversation_services.visitor_message_send(visitor=visitor, client_id=new_id(), text="Jean")  # cached: none
    assert webhooks.site_hooks(demo.sites["shop"].pk) is None
    settings.WEBHOOK_ALLOW_PRIVATE = True
    make_webhook(demo, "http://127.0.0.1:9/", events=["message.created"])
    conversation_services.visitor_message_send(visitor=visitor, client_id=new_id(), text="ACME")
    assert Delivery.objects.filter(event="message.created").count() >= 2  # the visitor's text and the bot's reply


@pytest.mark.django_db
def test_rating_created_carries_the_conversation_and_the_rating(demo, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    make_webhook(demo, "http://127.0.0.1:9/", events=["rating.created"])
    conversation = escalated()
    assert webhooks.rating_created(conversation, score=4, comment="Quick") == 1
    body = json.loads(Delivery.objects.get(event="rating.created").body)
    assert body["data"]["rating"] == {"score": 4, "comment": "Quick"}
    assert body["data"]["conversation"]["id"] == conversation.pk


@pytest.mark.django_db
def test_old_deliveries_are_forgotten_but_pending_ones_kept(demo, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.WEBHOOK_ALLOW_PRIVATE = True
    make_webhook(demo, "http://127.0.0.1:9/", events=["conversation.escalated", "conversation.closed"])
    escalated()
    escalated(first_name="Paul")
    old, pending = Delivery.objects.order_by("id")
    Delivery.objects.filter(pk=old.pk).update(status="delivered", created_at=timezone.now() - timedelta(days=31))
    Delivery.objects.filter(pk=pending.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert services.webhook_log_prune() == 1
    assert list(Delivery.objects.values_list("pk", flat=True)) == [pending.pk]


def test_the_connection_goes_to_the_checked_address_without_a_second_lookup():
    from integrations.http import Target, _PinnedHTTP

    # given a host name that resolves nowhere, pinned to the receiver's checked address
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        target = Target("http", "rebind.invalid", port, "/x", "127.0.0.1")
        connection = _PinnedHTTP(target, timeout=5)
        try:
            connection.request("POST", target.path, body=b"{}", headers={"Content-Type": "application/json"})
            assert connection.getresponse().status == 200
        finally:
            connection.close()
    # then it reached the address (a lookup of the name would have failed), and said the name in Host
    assert receiver.received[0]["headers"]["Host"] == f"rebind.invalid:{port}"


@pytest.mark.django_db
def test_the_admin_configures_a_webhook_and_reads_its_log(demo, settings, django_capture_on_commit_callbacks):
    from django.test import Client

    from integrations.models import Webhook

    settings.WEBHOOK_ALLOW_PRIVATE = True
    admin = Client()
    admin.force_login(demo.advisors["admin"].user)
    with Receiver(statuses=[500]) as receiver:
        response = admin.post("/admin/integrations/webhook/add/", {
            "account": demo.sites["shop"].account.pk, "url": receiver.url, "secret": "from-the-admin",
            "events": ["conversation.closed", "conversation.escalated"], "active": "on"})
        assert response.status_code == 302, response.content
        webhook = Webhook.objects.get()
        assert webhook.events == ["conversation.escalated", "conversation.closed"] and not webhook.include_notes
        with django_capture_on_commit_callbacks(execute=True):
            escalated()
        delivery = Delivery.objects.get()
        assert delivery.status == "pending" and delivery.attempts == 1  # the 500
        # the log: the list, and the delivery with its attempt (status, duration, the answer's beginning)
        assert admin.get("/admin/integrations/webhook/").status_code == 200
        listed = admin.get("/admin/integrations/delivery/", {"webhook__id__exact": webhook.pk})
        assert listed.status_code == 200 and "conversation.escalated" in listed.content.decode()
        page = admin.get(f"/admin/integrations/delivery/{delivery.pk}/change/").content.decode()
        assert "500" in page and "receiver says no" in page
        # "send again" from the list
        with django_capture_on_commit_callbacks(execute=True):
            response = admin.post("/admin/integrations/delivery/", {"action": "send_again",
                                                                   "_selected_action": [delivery.pk]})
        assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and [r["status"] for r in receiver.received] == [500, 200]
    assert signed("from-the-admin", receiver.received[1])


@pytest.mark.django_db
def test_a_visitor_text_to_a_live_conversation_is_announced_too(demo, settings, django_capture_on_commit_callbacks):
    # the commonest write (a live conversation, the visitor spoke before) takes one statement on PostgreSQL
    settings.WEBHOOK_ALLOW_PRIVATE = True
    conversation = escalated()
    with Receiver() as receiver:
        make_webhook(demo, receiver.url, events=["message.created"])
        with django_capture_on_commit_callbacks(execute=True):
            sent = conversation_services.visitor_message_send(visitor=conversation.visitor, client_id=new_id(),
                                                              text="Still there?")
    [body] = receiver.bodies()
    assert body["data"]["message"]["id"] == sent.message.pk and body["data"]["message"]["text"] == "Still there?"
    assert body["data"]["conversation"] == {"id": conversation.pk, "site": {"key": "demo-shop", "name": "Shop"},
                                            "visitor": {"id": conversation.visitor_id}}
