"""The license quota holds through the services, the admin, and two grants racing on PostgreSQL."""
import threading

import pytest
from django.db import connection, connections

from advisors import services
from advisors.models import Account, Advisor


def make_advisors(account: Account, count: int, prefix="c") -> list[Advisor]:
    return [services.advisor_create(account=account, username=f"{prefix}{i}", email=f"{prefix}{i}@x.example",
                                    display_name=f"C{i}", password="pw-123456789") for i in range(count)]


@pytest.mark.django_db
def test_grant_past_the_quota_is_refused(demo):
    account = Account.objects.get(name="Demo Company")
    assert Advisor.objects.filter(account=account, licensed=True).count() == 3
    fourth, fifth, sixth = make_advisors(account, 3)
    services.license_grant(advisor=fourth)
    services.license_grant(advisor=fifth)
    with pytest.raises(services.LicenseQuotaExceeded, match="All 5"):
        services.license_grant(advisor=sixth)
    sixth.refresh_from_db()
    assert not sixth.licensed
    services.license_revoke(advisor=fourth)
    services.license_grant(advisor=sixth)
    assert Advisor.objects.filter(account=account, licensed=True).count() == 5


@pytest.mark.django_db(transaction=True)
def test_two_grants_racing_for_the_last_license_give_exactly_one(demo):
    if connection.vendor != "postgresql":
        pytest.skip("the race is about row locks on PostgreSQL (CI runs it there)")
    account = Account.objects.get(name="Demo Company")
    account.license_quota = 4
    account.save()
    contenders = make_advisors(account, 2, prefix="r")
    barrier = threading.Barrier(2)
    outcomes = []

    def grant(advisor):
        try:
            barrier.wait()
            services.license_grant(advisor=advisor)
            outcomes.append("granted")
        except services.LicenseQuotaExceeded:
            outcomes.append("refused")
        finally:
            connections.close_all()

    for _ in range(5):  # several rounds, so the two connections really interleave
        Advisor.objects.filter(pk__in=[a.pk for a in contenders]).update(licensed=False)
        outcomes.clear()
        threads = [threading.Thread(target=grant, args=(a,)) for a in contenders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == ["granted", "refused"]
        assert Advisor.objects.filter(account=account, licensed=True).count() == 4


@pytest.mark.django_db
def test_admin_shows_the_quota_and_refuses_the_sixth_license(demo, client):
    client.force_login(demo.advisors["admin"].user)
    account = Account.objects.get(name="Demo Company")
    page = client.get("/admin/advisors/advisor/")
    assert page.status_code == 200
    assert "3</strong> of 5 licenses granted" in page.content.decode()
    assert "Your collaborators" in page.content.decode()
    extra = make_advisors(account, 3, prefix="x")
    for advisor in extra[:2]:
        services.license_grant(advisor=advisor)
    sixth = extra[2]
    form = {
        "user": sixth.user_id, "account": account.pk, "display_name": "Renamed", "email": "new@x.example",
        "premium": "on", "sees_chatbot": "", "email_on_escalation": "on", "sound": "on", "sites": [],
    }
    response = client.post(f"/admin/advisors/advisor/{sixth.pk}/change/", form)
    assert response.status_code == 200  # the form again, with the error
    assert "All 5 Livechat Premium licenses" in response.content.decode()
    sixth.refresh_from_db()
    assert not sixth.licensed and sixth.display_name == "C2"  # nothing saved
    account_page = client.get("/admin/advisors/account/")
    assert "5" in account_page.content.decode()


@pytest.mark.django_db
def test_admin_grants_and_revokes_through_the_service(demo, client):
    client.force_login(demo.advisors["admin"].user)
    carol = demo.advisors["carol"]
    form = {"user": carol.user_id, "account": carol.account_id, "display_name": "Carol", "email": "carol@demo.example",
            "premium": "on", "email_on_escalation": "on", "sound": "on", "sites": [demo.sites["shop"].pk]}
    response = client.post(f"/admin/advisors/advisor/{carol.pk}/change/", form)
    assert response.status_code == 302
    carol.refresh_from_db()
    assert carol.licensed
    form.pop("premium")
    client.post(f"/admin/advisors/advisor/{carol.pk}/change/", form)
    carol.refresh_from_db()
    assert not carol.licensed
