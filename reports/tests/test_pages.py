"""The reports page, the admin switches, and the backfill of older conversations."""
from importlib import import_module

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model

from conversations import services
from conversations.models import Conversation
from reports.models import Episode
from reports.tests.conftest import reply, utc, visitor_escalates

pytestmark = pytest.mark.django_db


def test_the_reports_page_is_for_signed_in_advisors_and_reachable_from_the_inbox(demo, client):
    assert client.get("/inbox/reports/").status_code == 302  # to the sign-in page
    get_user_model().objects.create_user("stranger", password="pw-stranger-1")
    client.login(username="stranger", password="pw-stranger-1")
    assert client.get("/inbox/reports/").status_code == 403

    client.force_login(demo.advisors["alice"].user)
    page = client.get("/inbox/reports/")
    assert page.status_code == 200 and "script-src 'self'" in page["Content-Security-Policy"]
    assert b"your own figures" in page.content and b'name="advisor"' not in page.content
    assert b'href="/inbox/reports/"' in client.get("/inbox/").content

    client.force_login(demo.advisors["admin"].user)
    assert b'name="advisor"' in client.get("/inbox/reports/").content  # staff choose an advisor


def test_the_admin_sets_the_sites_question_and_the_accounts_time_zone(demo, client):
    client.force_login(demo.advisors["admin"].user)
    site = demo.sites["shop"]
    assert b"csat_enabled" in client.get(f"/admin/advisors/site/{site.pk}/change/").content
    account = site.account
    page = client.get(f"/admin/advisors/account/{account.pk}/change/")
    assert b'name="timezone"' in page.content
    response = client.post(f"/admin/advisors/account/{account.pk}/change/",
                           {"name": account.name, "license_quota": 5, "timezone": "Mars/Olympus"})
    assert response.status_code == 200 and b"not a time zone name" in response.content
    assert b"Satisfaction and reports" in client.get("/admin/").content


def test_older_conversations_get_one_estimated_episode(demo, clock):
    alice = demo.advisors["alice"]
    conversation, _ = visitor_escalates()
    clock.after(45)
    reply(conversation, alice)
    clock.after(300)
    services.conversation_close(conversation_id=conversation.pk, advisor=alice)
    # as before the figures were kept
    Episode.objects.all().delete()
    Conversation.objects.update(escalated_at=None, assigned_at=None, first_reply_at=None)

    import_module("reports.migrations.0002_backfill_episodes").backfill(apps, None)

    episode = Episode.objects.get()
    assert episode.escalated_at == utc(2026, 11, 24, 10, 0) and episode.advisor == alice
    assert episode.first_reply_at == utc(2026, 11, 24, 10, 0, 45) and episode.first_response_s == 45
    assert episode.closed_at == utc(2026, 11, 24, 10, 5, 45) and episode.resolution_s == 345
