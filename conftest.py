"""Fixtures shared by the apps' tests (the settings override is livechat/test_settings.py)."""
from types import SimpleNamespace

import pytest


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
