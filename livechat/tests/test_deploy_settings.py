"""Deployment trust from the environment: no start-up with a guessable SECRET_KEY when DEBUG is off, and the
production environment of the README passes `manage.py check --deploy` without a warning."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = secrets.token_urlsafe(50)
# What the README's Security section tells an operator to set (behind a TLS proxy at chat.example.com).
README_PRODUCTION = {
    "SECRET_KEY": GOOD_KEY,
    "ALLOWED_HOSTS": "chat.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
    "PUBLIC_URL": "https://chat.example.com",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https",
    "DATABASE_URL": "postgres://livechat:livechat@127.0.0.1:5432/not_connected_to",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def manage(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """manage.py in a clean environment: none of this test run's key, DEBUG or TLS settings, and no var/secret_key
    (SECRET_KEY_FILE points to a file that does not exist unless the test says otherwise)."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SECRET_KEY", "DEBUG", "DJANGO_", "SECURE_", "SESSION_COOKIE", "CSRF_",
                                        "DATABASE_", "REDIS_URL", "ALLOWED_HOSTS", "PUBLIC_URL"))}
    environment["SECRET_KEY_FILE"] = str(tmp_path / "no-such-file")
    environment.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=60)


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("key", [None, "", "short-key", "change-me-in-production",
                                 "dev-only-insecure-key-change-me-in-production",
                                 "django-insecure-" + secrets.token_urlsafe(50), "a" * 60],
                         ids=["unset", "empty", "short", "compose-default", "old-embedded-default",
                              "django-insecure", "repetitive"])
def test_debug_off_refuses_a_missing_short_or_published_secret_key_with_one_line(key, tmp_path):
    env = {} if key is None else {"SECRET_KEY": key}
    line = one_line(manage("check", tmp_path=tmp_path, **env))
    assert line.startswith("error: SECRET_KEY is not valid") and "secrets.token_urlsafe" in line
    assert key is None or not key or key not in line  # the key itself is never printed


def test_a_real_secret_key_starts(tmp_path):
    done = manage("check", tmp_path=tmp_path, SECRET_KEY=GOOD_KEY)
    assert done.returncode == 0, done.stderr


def test_debug_on_starts_without_a_key(tmp_path):
    done = manage("check", tmp_path=tmp_path, DEBUG="1")
    assert done.returncode == 0, done.stderr


def test_the_key_file_make_run_writes_is_read_and_checked_like_the_variable(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text(GOOD_KEY + "\n")
    done = manage("shell", "-v", "0", "-c", "from django.conf import settings; print(settings.SECRET_KEY)",
                  tmp_path=tmp_path, SECRET_KEY_FILE=str(key_file))
    assert done.returncode == 0 and done.stdout.strip() == GOOD_KEY, done.stderr
    key_file.write_text("change-me-in-production\n")
    assert one_line(manage("check", tmp_path=tmp_path, SECRET_KEY_FILE=str(key_file))).startswith(
        "error: SECRET_KEY is not valid")


def test_make_run_writes_a_random_key_readable_by_its_owner_only(tmp_path):
    # the Makefile's own recipe, made in a scratch directory (the checkout's var/ is left alone)
    done = subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "var/secret_key"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    key_file = tmp_path / "var" / "secret_key"
    key = key_file.read_text().strip()
    assert len(key) >= 50 and key_file.stat().st_mode & 0o077 == 0
    assert manage("check", tmp_path=tmp_path, SECRET_KEY_FILE=str(key_file)).returncode == 0


def test_the_readme_production_environment_passes_check_deploy_without_a_warning(tmp_path):
    done = manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path, **README_PRODUCTION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout and "WARNING" not in done.stdout + done.stderr


def test_a_bad_proxy_ssl_header_stops_start_up_with_one_line(tmp_path):
    line = one_line(manage("check", tmp_path=tmp_path, **dict(README_PRODUCTION, SECURE_PROXY_SSL_HEADER="https")))
    assert line.startswith("error: SECURE_PROXY_SSL_HEADER is not valid")


def test_the_tls_settings_follow_the_environment(tmp_path):
    code = ("from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_SECURE, "
            "s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.CSRF_TRUSTED_ORIGINS)")
    done = manage("shell", "-v", "0", "-c", code, tmp_path=tmp_path, **README_PRODUCTION)
    assert done.stdout.strip() == ("('HTTP_X_FORWARDED_PROTO', 'https') True True True 31536000 "
                                   "['https://chat.example.com']"), done.stderr
    # over plain HTTP (make run) cookies stay usable: no secure-only cookies, no redirect, no HSTS
    done = manage("shell", "-v", "0", "-c", code, tmp_path=tmp_path, SECRET_KEY=GOOD_KEY)
    assert done.stdout.strip() == "None False False False 0 []", done.stderr


def test_make_test_runs_the_linter_and_the_missing_migration_check():
    done = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ruff check ." in done.stdout
    assert "manage.py makemigrations --check --dry-run" in done.stdout
    assert "ruff==" in (ROOT / "requirements-dev.txt").read_text()
