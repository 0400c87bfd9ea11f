"""Who takes an escalation: round robin among online licensed advisors under capacity, a flow's named assignee
only while online, business hours; race-safe on PostgreSQL."""
import threading

import pytest
from django.core import mail
from django.db import connection

from chatbots.models import Step
from chatbots.services import chatbot_touch
from conversations.models import Conversation
from conversations.tests.conftest import escalated
from routing.models import AdvisorRouting
from routing.services import advisor_availability_set, site_routing_update

AWAY_TEXT = "Nobody from our team is available right now."


def away_messages(conversation):
    return list(conversation.messages.filter(sender="bot", input__variable="EMAIL"))


@pytest.mark.django_db
def test_the_demo_sites_stay_manual_and_open(demo, online):
    online("alice", "bob")
    conversation = escalated()
    assert conversation.assigned_id is None and not away_messages(conversation)


@pytest.mark.django_db
def test_round_robin_gives_it_to_the_online_advisor_with_fewest_live_then_least_recent(demo, online, round_robin):
    online("alice", "bob", "carol", "admin")
    advisor_availability_set(advisor=demo.advisors["admin"], status="away")
    first, second, third = escalated(), escalated(first_name="Paul"), escalated(first_name="Zoe")
    # carol has no license; admin chose away: alice and bob share them, fewest live first
    assert {first.assigned.username, second.assigned.username} == {"alice", "bob"}
    # a tie on live conversations: the one assigned least recently
    assert third.assigned.username == first.assigned.username
    assert "joined the conversation" in third.messages.filter(kind="event").last().text


@pytest.mark.django_db
def test_round_robin_skips_offline_away_and_full_advisors_then_says_away_once(demo, online, round_robin,
                                                                              django_capture_on_commit_callbacks):
    online("alice")
    advisor_availability_set(advisor=demo.advisors["alice"], capacity=1)
    taken = escalated()
    assert taken.assigned.username == "alice"
    with django_capture_on_commit_callbacks(execute=True):
        waiting = escalated(first_name="Paul")  # alice is full, bob is offline
    assert waiting.assigned_id is None and waiting.status == "live" and waiting.awaiting_email
    [away] = away_messages(waiting)
    assert away.text.startswith(AWAY_TEXT) and away.input == {"variable": "EMAIL", "type": "email"}
    # the team still hears of it: every licensed advisor of the site is e-mailed
    assert sorted(m.to[0] for m in mail.outbox) == ["admin@demo.example", "alice@demo.example", "bob@demo.example"]


@pytest.mark.django_db
def test_a_named_assignee_who_is_not_online_leaves_it_to_the_team(demo, online, django_capture_on_commit_callbacks):
    # given a flow that assigns to bob, who has no inbox open (issue 14.2)
    Step.objects.filter(kind="escalate").update(assign_to="bob")
    chatbot_touch(chatbot=demo.sites["shop"].chatbot)
    with django_capture_on_commit_callbacks(execute=True):
        conversation = escalated()
    # then nobody is assigned, nobody "joined", and the whole team is e-mailed
    assert conversation.assigned_id is None
    assert not conversation.messages.filter(text__contains="joined").exists()
    assert len(mail.outbox) == 3
    # and once bob is online (or away: not online), the same flow gives it to him, and only him is e-mailed
    mail.outbox.clear()
    online("bob")
    advisor_availability_set(advisor=demo.advisors["bob"], status="away")
    assert escalated(first_name="Paul").assigned_id is None
    advisor_availability_set(advisor=demo.advisors["bob"], status="online")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        conversation = escalated(first_name="Zoe")
    assert conversation.assigned.username == "bob"
    assert [m.to[0] for m in mail.outbox] == ["bob@demo.example"]


@pytest.mark.django_db
def test_outside_business_hours_the_visitor_gets_the_away_message_at_once(demo, online):
    online("alice", "bob")
    # open on no day at all: always outside hours, whatever the day the test runs
    site_routing_update(site=demo.sites["shop"], assignment="round_robin", away_message="We are closed; e-mail?",
                        hours={"timezone": "Europe/Paris", "intervals": []})
    conversation = escalated()
    assert conversation.assigned_id is None
    assert [m.text for m in away_messages(conversation)] == ["We are closed; e-mail?"]


@pytest.mark.django_db
def test_business_hours_follow_the_site_time_zone(demo):
    from datetime import datetime, timezone

    from routing.selectors import site_open

    rules = site_routing_update(site=demo.sites["shop"], hours={
        "timezone": "America/New_York", "intervals": [{"day": 0, "start": "09:00", "end": "17:00"}]})
    monday_utc = datetime(2026, 11, 30, tzinfo=timezone.utc)  # a Monday
    assert not site_open(rules, monday_utc.replace(hour=13, minute=59))  # 08:59 in New York
    assert site_open(rules, monday_utc.replace(hour=14))  # 09:00
    assert not site_open(rules, monday_utc.replace(hour=22))  # 17:00: the end is excluded


@pytest.mark.django_db
def test_the_visitor_e_mail_answer_goes_into_email(demo, round_robin):
    from conversations import services
    from conversations.tests.conftest import new_id

    conversation = escalated()  # nobody online: the away message
    visitor = conversation.visitor
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text="not an address")
    conversation.refresh_from_db()
    assert conversation.awaiting_email
    services.visitor_message_send(visitor=visitor, client_id=new_id(), text=" jean@acme.example ")
    conversation.refresh_from_db()
    visitor.refresh_from_db()
    assert visitor.variables["EMAIL"] == "jean@acme.example" and not conversation.awaiting_email
    assert conversation.status == "live" and conversation.assigned_id is None  # still the team's to answer
    assert "jean@acme.example" in conversation.messages.order_by("seq").last().text


@pytest.mark.django_db(transaction=True)
def test_concurrent_escalations_never_push_an_advisor_past_capacity(demo, online, round_robin):
    if connection.vendor != "postgresql":
        pytest.skip("row locks across connections: PostgreSQL (CI sets DATABASE_URL)")
    online("alice", "bob")
    for name in ("alice", "bob"):
        advisor_availability_set(advisor=demo.advisors[name], capacity=2)
    # given eight visitors who all press "Talk to a human" at the same moment
    from conversations import services
    from conversations.models import Visitor
    from conversations.tests.conftest import new_id, start_session

    visitors = []
    for n in range(8):
        visitor = Visitor.objects.get(pk=start_session()["visitor"]["id"])
        services.visitor_message_send(visitor=visitor, client_id=new_id(), text=f"V{n}")
        services.visitor_message_send(visitor=visitor, client_id=new_id(), text="ACME")
        menu = Conversation.objects.get(visitor=visitor).messages.exclude(buttons=[]).last()
        visitors.append((visitor, next(b["id"] for b in menu.buttons if b["label"] == "Talk to a human")))
    barrier, errors = threading.Barrier(len(visitors)), []

    def press(visitor, button):
        try:
            barrier.wait()
            services.visitor_button_press(visitor=visitor, client_id=new_id(), button=button)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=press, args=pair) for pair in visitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    # then each advisor has exactly their capacity, and the rest wait for the team with the away message
    live = Conversation.objects.filter(status="live")
    assert live.count() == 8
    assert sorted(live.exclude(assigned=None).values_list("assigned__user__username", flat=True)) == \
        ["alice", "alice", "bob", "bob"]
    assert live.filter(assigned=None, awaiting_email=True).count() == 4
    assert AdvisorRouting.objects.filter(last_assigned_at__isnull=False).count() == 2
