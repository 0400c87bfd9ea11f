"""Fixtures shared by the apps' tests (the settings override is livechat/test_settings.py)."""
import copy
import uuid
from types import SimpleNamespace

import pytest

from livechat.catalogues import compile_stale


def pytest_configure(config):
    compile_stale()  # the French tests need the compiled catalogues, also when pytest runs without make


@pytest.fixture(autouse=True)
def default_language():
    """Django keeps the last request's language active in its thread: each test starts in the default one, so a
    French request of an earlier test never words a later test's e-mails."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def own_cache_keys(settings):
    """Each test counts in cache keys of its own: rate limits (new visitors per address, sign-in failures, sends)
    taken by earlier tests of the same process, on Redis as in local memory, never refuse a later test's requests."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"{caches['default'].get('KEY_PREFIX', '')}-{uuid.uuid4().hex[:12]}"
    settings.CACHES = caches


@pytest.fixture(autouse=True)
def loop_connections_closed():
    """The event loop's own PostgreSQL connections (livechat/loop_io.py) end with the test that opened them: its
    loop has ended, and they would keep the test database from being dropped."""
    yield
    from livechat import loop_io

    loop_io.close_all()


@pytest.fixture
def media_root(settings, tmp_path):
    """Uploaded and re-encoded images go to this test's own directory."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def demo(db):
    """The demo data of CONTRACT section 2, as model objects: demo.sites["shop"], demo.advisors["alice"]."""
    from advisors.demo import seed_demo
    from advisors.models import Advisor, Site

    data = seed_demo()
    return SimpleNamespace(
        data=data,
        sites={slug: Site.objects.get(key=spec["key"]) for slug, spec in data["sites"].items()},
        advisors={name: Advisor.objects.select_related("user").get(user__username=name) for name in data["advisors"]},
    )


@pytest.fixture
def api_as(demo):
    """api_as("alice") -> a DRF APIClient authenticated with alice's token, as an outside client would be."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(username: str) -> APIClient:
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=demo.advisors[username].user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make
