"""Invitations: a signed, single-use, expiring link, e-mailed through the task; accepted into the account."""
import re

import pytest
from django.core import mail, signing

from advisors import services
from advisors.models import Account, Advisor


@pytest.mark.django_db
def test_invitation_email_link_lets_the_person_join_once(demo, client, django_capture_on_commit_callbacks):
    account = Account.objects.get(name="Demo Company")
    with django_capture_on_commit_callbacks(execute=True):
        link = services.invitation_create(account=account, email="dan@x.example", display_name="Dan",
                                          sites=[demo.sites["shop"]])
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["dan@x.example"]
    url = re.search(r"http\S+/invitations/\S+", mail.outbox[0].body).group(0)
    token = url.rsplit("/invitations/", 1)[1]
    assert services.invitation_from_token(token) == link.invitation  # signed with its own timestamp
    path = f"/invitations/{token}"
    assert client.get(path).status_code == 200
    response = client.post(path, {"username": "dan", "password": "a-long-enough-pass-42"})
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    dan = Advisor.objects.get(user__username="dan")
    assert not dan.licensed and dan.display_name == "Dan" and list(dan.sites.all()) == [demo.sites["shop"]]
    assert client.get(path).status_code == 410  # single use


@pytest.mark.django_db
def test_forged_and_expired_invitations_are_refused(demo, client, settings):
    account = Account.objects.get(name="Demo Company")
    link = services.invitation_create(account=account, email="eve@x.example")
    assert client.get("/invitations/forged-token").status_code == 410
    token = services.invitation_token(link.invitation)
    with pytest.raises(services.InvitationInvalid, match="expired"):
        signing_max_age = services.INVITATION_MAX_AGE
        services.INVITATION_MAX_AGE = -1
        try:
            services.invitation_from_token(token)
        finally:
            services.INVITATION_MAX_AGE = signing_max_age
    assert signing.loads(token, salt=services.INVITATION_SALT)["invitation"] == link.invitation.pk
