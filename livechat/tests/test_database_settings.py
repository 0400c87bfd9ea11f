"""The database settings from the environment: PostgreSQL gets a checked connection pool, SQLite stays as it was."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = "postgres://root@127.0.0.1:5432/not_connected_to"
POOL_VARIABLES = ("DATABASE_POOL_MIN_SIZE", "DATABASE_POOL_MAX_SIZE", "DATABASE_POOL_TIMEOUT_S")


def _environment(**env: str) -> dict:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", *POOL_VARIABLES)}
    environment.update(env)
    return environment


def database_settings(**env: str) -> dict:
    """The `default` database as livechat.settings builds it from this environment (nothing connects)."""
    code = "import json; from livechat import settings; print(json.dumps(settings.DATABASES['default'], default=str))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_environment(**env), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_postgresql_gets_a_pool_sized_from_the_environment_that_checks_its_connections():
    database = database_settings(DATABASE_URL=POSTGRES_URL, DATABASE_POOL_MIN_SIZE="1", DATABASE_POOL_MAX_SIZE="7",
                                 DATABASE_POOL_TIMEOUT_S="2.5")
    assert database["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 7, "timeout": 2.5, "name": "default"}
    # broken connections are discarded by our check (livechat/pool.py, test_pool), not by Django's on every call
    assert database["ENGINE"] == "livechat.postgresql"
    assert not database.get("CONN_HEALTH_CHECKS")
    assert database.get("CONN_MAX_AGE", 0) == 0  # the pool keeps the connections, not the threads


def test_the_pool_has_defaults():
    database = database_settings(DATABASE_URL=POSTGRES_URL)
    assert database["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 10, "timeout": 5.0, "name": "default"}


def test_sqlite_has_no_pool_and_its_options_unchanged():
    database = database_settings(DATABASE_POOL_MAX_SIZE="3")
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["OPTIONS"] == {"timeout": 20, "transaction_mode": "IMMEDIATE",
                                   "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    assert not database.get("CONN_HEALTH_CHECKS")


@pytest.mark.parametrize("env,named", [
    ({"DATABASE_POOL_MAX_SIZE": "0"}, "DATABASE_POOL_MAX_SIZE"),
    ({"DATABASE_POOL_MAX_SIZE": "ten"}, "DATABASE_POOL_MAX_SIZE"),
    ({"DATABASE_POOL_MIN_SIZE": "-1"}, "DATABASE_POOL_MIN_SIZE"),
    ({"DATABASE_POOL_MIN_SIZE": "8", "DATABASE_POOL_MAX_SIZE": "4"}, "DATABASE_POOL_MIN_SIZE"),
    ({"DATABASE_POOL_TIMEOUT_S": "soon"}, "DATABASE_POOL_TIMEOUT_S"),
    ({"DATABASE_POOL_TIMEOUT_S": "0"}, "DATABASE_POOL_TIMEOUT_S"),
], ids=["max-zero", "max-not-a-number", "min-negative", "min-above-max", "timeout-not-a-number", "timeout-zero"])
def test_a_bad_pool_setting_stops_start_up_with_one_clear_line(env, named):
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT,
                          env=_environment(DATABASE_URL=POSTGRES_URL, **env), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {named} is not valid"), done.stderr
