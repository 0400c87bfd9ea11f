"""The advisor pages: /inbox/ and the login page (CSP, login required, no inline script)."""
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore

from advisors import services
from advisors.models import Account, Site
from conversations import pages

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def advisor():
    account = Account.objects.create(name="Acme")
    site = Site.objects.create(account=account, name="Shop", key="acme-shop")
    return services.advisor_create(account=account, username="alice", email="alice@example.com",
                                   display_name="Alice", password=PASSWORD, sites=[site])


def policy(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_no_inline_script(html: str) -> None:
    for tag in re.findall(r"<script\b[^>]*>", html, flags=re.I):
        assert "src=" in tag, f"inline script: {tag}"
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html, flags=re.I), "a script element with a body"
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I), "an inline event handler attribute"
    assert not re.search(r"\sstyle\s*=", html, flags=re.I), "an inline style attribute (blocked by the CSP)"


def test_inbox_redirects_anonymous_users_to_login(client):
    response = client.get("/inbox/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/inbox/"


def test_inbox_renders_for_a_signed_in_advisor(client, advisor):
    client.force_login(advisor.user)

    response = client.get("/inbox/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<script type="module" src="/static/inbox/js/main.js"></script>' in html
    assert 'data-username="alice"' in html
    assert "/accounts/logout/" in html
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    assert_no_inline_script(html)


def test_inbox_sends_a_csp_without_inline_script(client, advisor):
    client.force_login(advisor.user)

    header = client.get("/inbox/")["Content-Security-Policy"]

    directives = policy(header)
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'self'" in directives["connect-src"]


def test_inbox_escapes_the_advisor_name_in_markup(client, advisor):
    advisor.display_name = '"><script>alert(1)</script>'
    advisor.save(update_fields=["display_name"])
    client.force_login(advisor.user)

    html = client.get("/inbox/").content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_inbox_refuses_a_user_who_is_not_an_advisor(client):
    user = get_user_model().objects.create_user(username="stranger", password=PASSWORD)
    client.force_login(user)

    response = client.get("/inbox/")

    assert response.status_code == 403
    assert "not an advisor" in response.content.decode()
    assert "Content-Security-Policy" in response


def test_inbox_page_references_only_existing_static_files(client, advisor):
    from django.contrib.staticfiles import finders

    client.force_login(advisor.user)
    html = client.get("/inbox/").content.decode()

    paths = set(re.findall(r'(?:src|href)="/static/([^"]+)"', html))
    paths |= set(re.findall(r'data-[a-z-]+-url="/static/([^"]+)"', html))
    assert "inbox/js/main.js" in paths and "inbox/ding.wav" in paths
    for path in paths:
        assert finders.find(path), f"missing static file {path}"


def test_login_page_renders_a_form_with_a_csp(client):
    response = client.get("/accounts/login/?next=/inbox/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html and 'name="password"' in html
    assert 'name="next" value="/inbox/"' in html
    assert_no_inline_script(html)
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert meta, "the login page carries its policy"
    assert policy(meta.group(1))["script-src"] == ["'self'"]
    if "Content-Security-Policy" in response:  # when routed to conversations.pages.LoginView
        assert "'unsafe-inline'" not in response["Content-Security-Policy"]


def test_login_with_good_credentials_goes_to_the_inbox(client, advisor):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD, "next": "/inbox/"})

    assert response.status_code == 302
    assert response["Location"] == "/inbox/"
    assert client.get("/inbox/").status_code == 200


def test_login_with_a_wrong_password_shows_an_error(client, advisor):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope", "next": "/inbox/"})

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_csp_login_view_sends_the_header(rf):
    request = rf.get("/accounts/login/")
    request.user = AnonymousUser()
    request.session = SessionStore()

    response = pages.LoginView.as_view()(request)

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == pages.CONTENT_SECURITY_POLICY
