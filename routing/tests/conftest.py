"""Routing tests use the conversation tests' helpers: real sockets, real services, the demo data."""
import pytest

from conversations.tests.conftest import api, tokens  # noqa: F401 (fixtures)


@pytest.fixture
def online():
    """online("alice", ...) -> those advisors have an inbox socket open (their presence key, as a socket keeps it)."""
    from advisors.models import Advisor
    from routing.presence import presence_touch

    def make(*usernames: str) -> None:
        for pk in Advisor.objects.filter(user__username__in=usernames).values_list("pk", flat=True):
            presence_touch(pk)

    return make


@pytest.fixture
def round_robin(demo):
    """The shop site switched to round robin (the demo sites are manual)."""
    from routing.services import site_routing_update

    return site_routing_update(site=demo.sites["shop"], assignment="round_robin")
