"""The test override: the same settings, with what parallel test workers sharing one Redis need."""
import os
import secrets

# The settings refuse to start without a real key (DEBUG is off in tests): each test run makes its own, inherited by
# the servers and commands the tests start as subprocesses.
if not os.environ.get("SECRET_KEY"):
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)

from livechat.settings import *  # noqa: E402, F403
from livechat.settings import CACHES, CHANNEL_LAYERS  # noqa: E402

# Each test process keeps its own keys and groups, so parallel workers (each on its own test database,
# where ids start at 1 again) never hear each other's frames.
_PREFIX = f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}"
if "CONFIG" in CHANNEL_LAYERS["default"]:
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = _PREFIX
CACHES["default"]["KEY_PREFIX"] = _PREFIX

# Tasks run in the test process, unless a test starts a real worker (the notification tests do).
CELERY_TASK_ALWAYS_EAGER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # seed_demo hashes four passwords per test
