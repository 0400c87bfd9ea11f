"""Retention: closed conversations older than the account's retention_days are erased, in batches that never hold
the inbox up."""
import os
import secrets
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from conversations import services as conversation_services
from conversations.models import Conversation, Message, Visitor
from conversations.tests.conftest import escalated
from conversations.tests.test_inbox_counts import CONVERSATIONS, assert_counts_exact
from integrations.models import AuditEntry
from integrations.services import retention_erase
from livechat.celery import app

ROOT = Path(__file__).resolve().parents[2]


def closed_long_ago(site, count: int, *, days: int = 400) -> list[int]:
    """`count` closed conversations of `site`, closed `days` ago, each with a visitor and one item (bulk)."""
    then = timezone.now() - timedelta(days=days)
    visitors = Visitor.objects.bulk_create([Visitor(site=site, token_hash=secrets.token_hex(32), last_seen_at=then,
                                                    variables={"PRENOM": f"V{i}"}) for i in range(count)],
                                           batch_size=2000)
    conversations = Conversation.objects.bulk_create(
        [Conversation(site=site, visitor=v, status="closed", closed_at=then, updated_at=then, last_seq=1,
                      last_public_seq=1) for v in visitors], batch_size=2000)
    Message.objects.bulk_create([Message(conversation=c, seq=1, kind="text", sender="visitor", text="hello")
                                 for c in conversations], batch_size=2000)
    return [c.pk for c in conversations]


def set_retention(demo, days: int | None) -> None:
    account = demo.sites["shop"].account
    account.retention_days = days
    account.save(update_fields=["retention_days"])


@pytest.mark.django_db
def test_only_closed_conversations_older_than_the_retention_are_erased(demo, api_as):
    old = closed_long_ago(demo.sites["shop"], 30, days=40)
    recent = closed_long_ago(demo.sites["blog"], 5, days=10)
    live = escalated()
    # nothing without retention_days (the default)
    assert retention_erase(batch_size=7) == 0
    assert Conversation.objects.filter(pk__in=old).count() == 30
    # with 30 days: the 30 closed 40 days ago go, in batches of 7; those closed 10 days ago and the live one stay
    set_retention(demo, 30)
    assert retention_erase(batch_size=7) == 30
    assert not Conversation.objects.filter(pk__in=old).exists()
    assert not Message.objects.filter(conversation_id__in=old).exists()
    assert Conversation.objects.filter(pk__in=recent).count() == 5
    assert Conversation.objects.filter(pk=live.pk).exists()
    assert_counts_exact(demo, api_as)
    entry = AuditEntry.objects.get(action="retention.erased")
    assert entry.details["conversations"] == 30 and entry.details["retention_days"] == 30


@pytest.mark.django_db
def test_a_conversation_reopened_since_is_kept(demo):
    set_retention(demo, 30)
    [pk] = closed_long_ago(demo.sites["shop"], 1, days=40)
    conversation_services.conversation_reopen(conversation_id=pk, advisor=demo.advisors["alice"])
    assert retention_erase() == 0
    assert Conversation.objects.get(pk=pk).status == "live"


def test_the_nightly_run_and_the_webhook_sweep_are_on_the_beat_schedule():
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    app.loader.import_default_modules()
    for name in ("retention-nightly", "webhooks-sweep"):
        assert schedule[name]["task"] in app.tasks, name
    assert schedule["retention-nightly"]["schedule"].hour == {3}


@pytest.mark.django_db(transaction=True)
def test_erasing_10000_conversations_never_blocks_an_inbox_request_for_100_ms(demo, api_as):
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent transactions: PostgreSQL (CI sets DATABASE_URL)")
    # given 10,000 conversations closed 400 days ago on the shop, a retention of 30 days, and live work going on
    setup_started = time.monotonic()
    expired = closed_long_ago(demo.sites["shop"], 10_000)
    live = [escalated(first_name=f"Live{i}") for i in range(3)]
    set_retention(demo, 30)
    alice = demo.advisors["alice"]
    client = api_as("alice")

    def timed_requests(rounds: int) -> list[float]:
        times = []
        for i in range(rounds):
            started = time.perf_counter()
            assert client.get(CONVERSATIONS, {"box": "closed"}).status_code == 200
            assert client.get(CONVERSATIONS, {"box": "live"}).status_code == 200
            times.append(time.perf_counter() - started)
        return times

    baseline = timed_requests(10)
    # when retention runs in another process (as in the worker) while alice lists, closes and reopens: any statement
    # of her list requests that waits more than 100 ms for a lock fails (lock_timeout), whatever the machine's load;
    # her writes may wait for one batch's tally rows (the same site's counts), never for the whole run
    db = connection.settings_dict
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="livechat.settings",
               DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}")
    retention = subprocess.Popen([sys.executable, "manage.py", "retention"], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def lock_timeout(value: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{value}'")

    reads, writes = [], []
    run_started = time.monotonic()
    deadline = run_started + 300
    try:
        while retention.poll() is None and time.monotonic() < deadline:
            lock_timeout("100ms")
            reads.extend(timed_requests(1))
            lock_timeout("1s")
            target = live[len(writes) % len(live)]
            started = time.perf_counter()
            conversation_services.conversation_close(conversation_id=target.pk, advisor=alice)
            conversation_services.conversation_reopen(conversation_id=target.pk, advisor=alice)
            writes.append(time.perf_counter() - started)
            time.sleep(0.05)  # an advisor's pace, not a benchmark: leave the run its share of the two cores
    finally:
        lock_timeout("0")
    output = retention.communicate(timeout=120)[0]
    erased = [int(line.split()[0]) for line in output.splitlines() if "erased" in line]
    # then every expired conversation is gone, no list request waited 100 ms for a lock, no write 1 s
    assert erased == [10_000], output
    assert not Conversation.objects.filter(pk__in=expired[:1000]).exists() and len(reads) > 5
    print(f"setup {run_started - setup_started:.0f} s, retention run {time.monotonic() - run_started:.0f} s; "
          f"list pair alone: median {statistics.median(baseline) * 1000:.0f} ms, max {max(baseline) * 1000:.0f} ms; "
          f"during retention ({len(reads)} pairs): median {statistics.median(reads) * 1000:.0f} ms, "
          f"max {max(reads) * 1000:.0f} ms; close+reopen max {max(writes) * 1000:.0f} ms")
    assert_counts_exact(demo, api_as)
