"""Inviting a collaborator from the advisors page: e-mail, license and sites in the invitation; the acceptance page
asks for the password twice; the license quota holds when the invitation is accepted."""
import re

import pytest
from django.core import mail

from advisors import selectors, services
from advisors.models import Account, Advisor, Invitation, Site

PASSWORD = "a-long-enough-pass-42"


def link_path() -> str:
    url = re.search(r"http\S+/invitations/\S+", mail.outbox[-1].body).group(0)
    return "/invitations/" + url.rsplit("/invitations/", 1)[1]


def invite_form(account: Account, **changes) -> dict:
    form = {"account": account.pk, "email": "dan@x.example", "display_name": "Dan", "licensed": "on", "sites": []}
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


@pytest.mark.django_db
def test_the_owner_invites_with_a_license_and_sites_from_the_advisors_page(demo, client,
                                                                          django_capture_on_commit_callbacks):
    account = Account.objects.get(name="Demo Company")
    client.force_login(demo.advisors["admin"].user)
    # given the advisors page: it offers an invitation rather than picking a user from a list of everyone
    page = client.get("/admin/advisors/advisor/").content.decode()
    assert 'href="/admin/advisors/invitation/add/"' in page and "Invite a collaborator" in page
    assert 'href="/admin/advisors/advisor/add/"' not in page
    form = client.get("/admin/advisors/invitation/add/")
    assert form.context["adminform"].form.initial["account"] == account.pk
    assert 'type="checkbox" name="sites"' in form.content.decode()
    assert "Invite a collaborator" in form.content.decode() and "Demo Company: 2 of 5 left" in form.content.decode()
    # when the owner invites Dan with a license, for the shop
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/advisors/invitation/add/",
                               invite_form(account, sites=[demo.sites["shop"].pk]))
    # then back to the advisors page, which lists the pending invitation; the e-mail is sent
    assert response.status_code == 302 and response["Location"] == "/admin/advisors/advisor/"
    invitation = Invitation.objects.get(email="dan@x.example")
    assert invitation.licensed and list(invitation.sites.all()) == [demo.sites["shop"]]
    assert invitation.invited_by == demo.advisors["admin"].user
    assert "dan@x.example</a> (Livechat Premium)" in client.get("/admin/advisors/advisor/").content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["dan@x.example"]
    assert "visitors of Demo Company on Shop, with a Livechat Premium license." in mail.outbox[0].body
    # and Dan joins licensed, on the shop only
    client.logout()
    response = client.post(link_path(), {"username": "dan", "password": PASSWORD, "password_again": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    dan = Advisor.objects.get(user__username="dan")
    assert dan.licensed and dan.display_name == "Dan" and list(dan.sites.all()) == [demo.sites["shop"]]
    assert selectors.licenses_granted(account=account) == 4


@pytest.mark.django_db
def test_an_invitation_with_no_license_left_or_another_accounts_site_is_refused_beside_the_field(demo, client):
    account = Account.objects.get(name="Demo Company")
    other = Account.objects.create(name="Other Co", license_quota=1)
    foreign = Site.objects.create(account=other, name="Elsewhere", key="elsewhere")
    Account.objects.filter(pk=account.pk).update(license_quota=3)  # all three granted
    client.force_login(demo.advisors["admin"].user)
    response = client.post("/admin/advisors/invitation/add/", invite_form(account, sites=[foreign.pk]))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "All 3 Livechat Premium licenses" in errors["licensed"][0]
    assert "sites" in errors  # another account's site is not even offered to this owner, nor another account
    fields = response.context["adminform"].form.fields
    assert list(fields["account"].queryset) == [account]
    assert set(fields["sites"].queryset) == {demo.sites["shop"], demo.sites["blog"]}
    # an e-mail already used by a collaborator of the account
    response = client.post("/admin/advisors/invitation/add/", invite_form(account, email="ALICE@demo.example",
                                                                          licensed=None))
    assert "already has this e-mail" in response.context["adminform"].form.errors["email"][0]
    assert not Invitation.objects.exists() and mail.outbox == []


@pytest.mark.django_db
def test_the_acceptance_page_asks_for_the_password_twice(demo, client, django_capture_on_commit_callbacks):
    account = Account.objects.get(name="Demo Company")
    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(account=account, email="eve@x.example")
    path = link_path()
    page = client.get(path).content.decode()
    assert 'href="/static/inbox/login.css"' in page and page.count('type="password"') == 2
    response = client.post(path, {"username": "eve", "password": PASSWORD, "password_again": PASSWORD + "x"})
    assert response.status_code == 200 and "The two passwords differ." in response.content.decode()
    response = client.post(path, {"username": "eve", "password": PASSWORD})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    assert not Advisor.objects.filter(user__username="eve").exists()
    assert client.post(path, {"username": "eve", "password": PASSWORD, "password_again": PASSWORD}).status_code == 302


@pytest.mark.django_db
def test_the_quota_still_holds_when_a_licensed_invitation_is_accepted(demo, client,
                                                                    django_capture_on_commit_callbacks):
    # given an invitation with a license while two were left, then both granted to others meanwhile
    account = Account.objects.get(name="Demo Company")
    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(account=account, email="late@x.example", licensed=True)
    for name in ("x1", "x2"):
        other = services.advisor_create(account=account, username=name, email=f"{name}@x.example",
                                        display_name=name, password=PASSWORD)
        services.license_grant(advisor=other)
    with pytest.raises(services.LicenseQuotaExceeded):  # a new licensed invitation is refused at once
        services.invitation_create(account=account, email="later@x.example", licensed=True)
    # when the first one is accepted, then the person joins without the license, and is told so
    response = client.post(link_path(), {"username": "late", "password": PASSWORD, "password_again": PASSWORD})
    assert response.status_code == 200 and "Every Livechat Premium license" in response.content.decode()
    assert not Advisor.objects.get(user__username="late").licensed
    assert selectors.licenses_granted(account=account) == 5


@pytest.mark.django_db
def test_the_advisors_page_costs_the_same_queries_for_more_advisors_and_invitations(
        demo, client, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    account = Account.objects.get(name="Demo Company")
    client.force_login(demo.advisors["admin"].user)
    services.invitation_create(account=account, email="one@x.example", sites=[demo.sites["shop"]])
    client.get("/admin/advisors/advisor/")  # the session and caches warm
    with CaptureQueriesContext(connection) as few:
        assert client.get("/admin/advisors/advisor/").status_code == 200
    for i in range(8):
        extra = services.advisor_create(account=account, username=f"n{i}", email=f"n{i}@x.example",
                                        display_name=f"N{i}", password=None, sites=[demo.sites["shop"]])
        services.invitation_create(account=account, email=f"more{i}@x.example", sites=[demo.sites["blog"]])
        assert extra.pk
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get("/admin/advisors/advisor/")
    assert page.status_code == 200 and "more7@x.example" in page.content.decode()
