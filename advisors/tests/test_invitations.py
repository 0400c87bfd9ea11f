"""Invitations: a single-use link bound to the invitation's own secret, expiring 7 days after its creation,
e-mailed through the task; accepted into the account."""
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail, signing
from django.utils import timezone

from advisors import services
from advisors.models import Account, Advisor, Invitation


@pytest.mark.django_db
def test_invitation_email_link_lets_the_person_join_once(demo, client, django_capture_on_commit_callbacks):
    account = Account.objects.get(name="Demo Company")
    with django_capture_on_commit_callbacks(execute=True):
        link = services.invitation_create(account=account, email="dan@x.example", display_name="Dan",
                                          sites=[demo.sites["shop"]])
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["dan@x.example"]
    url = re.search(r"http\S+/invitations/\S+", mail.outbox[0].body).group(0)
    token = url.rsplit("/invitations/", 1)[1]
    assert services.invitation_from_token(token) == link.invitation
    path = f"/invitations/{token}"
    assert client.get(path).status_code == 200
    response = client.post(path, {"username": "dan", "password": "a-long-enough-pass-42",
                                  "password_again": "a-long-enough-pass-42"})
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    dan = Advisor.objects.get(user__username="dan")
    assert not dan.licensed and dan.display_name == "Dan" and list(dan.sites.all()) == [demo.sites["shop"]]
    assert client.get(path).status_code == 410  # single use


@pytest.mark.django_db
def test_forged_and_expired_invitations_are_refused(demo, client):
    account = Account.objects.get(name="Demo Company")
    link = services.invitation_create(account=account, email="eve@x.example")
    assert client.get("/invitations/forged-token").status_code == 410
    assert client.get(f"/invitations/{link.invitation.pk}.").status_code == 410
    Invitation.objects.filter(pk=link.invitation.pk).update(created_at=timezone.now() - timedelta(days=8))
    with pytest.raises(services.InvitationInvalid, match="expired"):
        services.invitation_from_token(services.invitation_token(link.invitation))


@pytest.mark.django_db
def test_a_link_signed_offline_with_the_secret_key_opens_nothing(demo, client):
    # given a pending invitation, and someone who knows SECRET_KEY (a published default, a leaked .env)
    account = Account.objects.get(name="Demo Company")
    link = services.invitation_create(account=account, email="mallory@x.example")
    forged = signing.dumps({"invitation": link.invitation.pk}, salt="advisors.invitation")
    # when they sign a link for it themselves, then it is refused, page and form alike
    assert client.get(f"/invitations/{forged}").status_code == 410
    response = client.post(f"/invitations/{forged}", {"username": "mallory", "password": "a-long-enough-pass-42",
                                                      "password_again": "a-long-enough-pass-42"})
    assert response.status_code == 410 and not Advisor.objects.filter(user__username="mallory").exists()


@pytest.mark.django_db
def test_an_invitation_link_carries_its_own_secret(demo, client):
    account = Account.objects.get(name="Demo Company")
    mine = services.invitation_create(account=account, email="me@x.example").invitation
    other = services.invitation_create(account=account, email="other@x.example").invitation
    assert mine.secret != other.secret and len(mine.secret) >= 40
    assert client.get(f"/invitations/{services.invitation_token(mine)}").status_code == 200
    # my link's secret with the other invitation's id, or a secret one character off, opens nothing
    assert client.get(f"/invitations/{other.pk}.{mine.secret}").status_code == 410
    assert client.get(f"/invitations/{mine.pk}.{mine.secret[:-1]}").status_code == 410


@pytest.mark.django_db
def test_an_invitation_expires_seven_days_after_its_creation_whatever_the_link_says(demo, client):
    # given an invitation created eight days ago, whose link is made (and so timestamped) just now
    account = Account.objects.get(name="Demo Company")
    invitation = services.invitation_create(account=account, email="late@x.example").invitation
    Invitation.objects.filter(pk=invitation.pk).update(created_at=timezone.now() - timedelta(days=8))
    fresh_link = services.invitation_url(Invitation.objects.get(pk=invitation.pk))
    # then it is refused as expired
    response = client.get(fresh_link.split(settings.PUBLIC_URL, 1)[1])
    assert response.status_code == 410 and b"expired" in response.content
    # while one created six days ago still opens
    Invitation.objects.filter(pk=invitation.pk).update(created_at=timezone.now() - timedelta(days=6))
    assert client.get(fresh_link.split(settings.PUBLIC_URL, 1)[1]).status_code == 200


@pytest.mark.django_db
def test_sending_an_expired_invitation_again_sends_no_dead_link(demo, client):
    # given an invitation past its seven days and a fresh one, neither e-mailed yet (the mail server was down)
    account = Account.objects.get(name="Demo Company")
    old = services.invitation_create(account=account, email="old@x.example").invitation
    fresh = services.invitation_create(account=account, email="fresh@x.example").invitation
    Invitation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    assert mail.outbox == []
    # when the staff user sends both again from the admin
    client.force_login(demo.advisors["admin"].user)
    response = client.post("/admin/advisors/invitation/", {"action": "send_again",
                                                           "_selected_action": [old.pk, fresh.pk]}, follow=True)
    # then only the fresh one is e-mailed, and the admin says why the other was not
    assert response.status_code == 200
    assert [m.to for m in mail.outbox] == [["fresh@x.example"]]
    assert "1 used or expired, not sent" in response.content.decode()
