"""Addresses people type by hand lead to the inbox; the demo page asks for no /favicon.ico."""
import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/inbox"])
def test_the_root_and_the_inbox_without_its_slash_lead_to_the_inbox(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == "/inbox/"


def test_the_demo_page_brings_its_own_icon(client):
    html = client.get("/demo/").content.decode()

    assert '<link rel="icon" href="data:image/svg+xml,' in html
