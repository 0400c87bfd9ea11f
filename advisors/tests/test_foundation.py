"""The foundation: settings from the environment, /healthz, seed_demo."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from advisors.models import Account, Advisor, Site

ROOT = Path(__file__).resolve().parents[2]


def manage(*args, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    environment.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("name,value", [("DATABASE_URL", "not a url"), ("REDIS_URL", "http://nope"),
                                        ("PORT", "eighty")])
def test_a_bad_setting_stops_start_up_with_one_clear_line(name, value):
    result = manage("check", **{name: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], result.stderr


@pytest.mark.django_db
def test_healthz_checks_database_and_channel_layer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}


@pytest.mark.django_db
def test_healthz_names_a_failing_channel_layer(client, settings):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "livechat.layers.BatchingRedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}}
    channel_layers.backends.clear()
    try:
        response = client.get("/healthz")
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["channel_layer"] == "unavailable" and body["database"] == "ok"
    assert "channel_layer" in body["error"]


@pytest.mark.django_db
def test_healthz_names_the_failing_part_but_no_internal_detail(client, settings, caplog):
    # given a channel layer on a Redis that refuses connections at a telling address
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "livechat.layers.BatchingRedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": ["redis://127.0.0.9:1/0"]}}}
    channel_layers.backends.clear()
    try:
        response = client.get("/healthz")
    finally:
        channel_layers.backends.clear()
    # then the anonymous caller learns which part, not its host, port or the exception
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "channel_layer": "unavailable",
                               "error": "channel_layer: unavailable"}
    # and the operator finds the detail in the log
    assert any("channel_layer" in r.getMessage() and "127.0.0.9" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_the_contract_json(capsys):
    call_command("seed_demo", "--json")
    first = json.loads(capsys.readouterr().out)
    counts = (Account.objects.count(), Site.objects.count(), Advisor.objects.count())
    call_command("seed_demo", "--json")
    assert json.loads(capsys.readouterr().out) == first
    assert (Account.objects.count(), Site.objects.count(), Advisor.objects.count()) == counts
    assert first["account"] == {"name": "Demo Company", "license_quota": 5}
    assert first["sites"]["shop"]["key"] == "demo-shop" and first["sites"]["blog"]["name"] == "Blog"
    assert "http://127.0.0.1:8000" in first["sites"]["shop"]["origins"]
    assert first["advisors"]["carol"] == {"email": "carol@demo.example", "password": "demo1234", "licensed": False,
                                          "sites": ["shop"]}
    assert first["advisors"]["bob"]["sites"] == ["shop"]
    assert first["chatbot"] == {"name": "Demo bot"}
    admin = Advisor.objects.get(user__username="admin")
    assert admin.user.is_staff and Account.objects.get().owner == admin.user
    assert set(Advisor.objects.filter(sees_chatbot=True).values_list("user__username", flat=True)) == {"admin", "alice"}
