"""The license quota is the platform operator's to set (a superuser who is not of the account), never below the
licenses granted, also when a grant races the change; the account owner reads it."""
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections

from advisors import selectors, services
from advisors.models import Account, Advisor


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser("operator", "ops@platform.example", "pw-operator-123")


def account_of(demo) -> Account:
    return Account.objects.get(name="Demo Company")


def change_form(account: Account, **changes) -> dict:
    form = {"name": account.name, "owner": account.owner_id or "", "license_quota": account.license_quota}
    form.update(changes)
    return form


@pytest.mark.django_db
def test_only_the_platform_operator_may_set_the_quota(demo, operator):
    account = account_of(demo)
    owner = demo.advisors["admin"].user
    assert owner.is_superuser and account.owner_id == owner.pk  # the demo owner is a superuser, and still the customer
    with pytest.raises(services.QuotaNotYours):
        services.account_license_quota_set(account=account, quota=50, by=owner)
    alice = demo.advisors["alice"].user
    alice.is_superuser = alice.is_staff = True
    alice.save()
    with pytest.raises(services.QuotaNotYours):  # a collaborator of the account is the customer too
        services.account_license_quota_set(account=account, quota=50, by=alice)
    assert Account.objects.get(pk=account.pk).license_quota == 5
    services.account_license_quota_set(account=account, quota=8, by=operator)
    assert Account.objects.get(pk=account.pk).license_quota == 8
    # a new account's quota is the operator's too, not a second account of the customer's
    assert selectors.quota_editable_by(user=operator, account=None)
    assert not selectors.quota_editable_by(user=owner, account=None)


@pytest.mark.django_db
def test_the_quota_is_never_set_below_the_licenses_granted(demo, operator):
    account = account_of(demo)
    assert selectors.licenses_granted(account=account) == 3
    with pytest.raises(services.QuotaBelowGranted, match="granted 3"):
        services.account_license_quota_set(account=account, quota=2, by=operator)
    assert Account.objects.get(pk=account.pk).license_quota == 5
    services.account_license_quota_set(account=account, quota=3, by=operator)  # exactly the granted count is fine
    assert selectors.licenses_left(account=Account.objects.get(pk=account.pk)) == 0


@pytest.mark.django_db
def test_the_owner_sees_the_quota_read_only_and_cannot_post_it(demo, client):
    account = account_of(demo)
    client.force_login(demo.advisors["admin"].user)
    url = f"/admin/advisors/account/{account.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="license_quota"' not in page and "Licenses granted" in page
    # when the owner posts a quota anyway (a crafted form), then it is ignored, the rest is saved
    response = client.post(url, change_form(account, name="Demo Company Ltd", license_quota=500))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.license_quota == 5 and account.name == "Demo Company Ltd"


@pytest.mark.django_db
def test_the_operator_edits_the_quota_in_the_admin_but_not_below_the_granted_count(demo, client, operator):
    account = account_of(demo)
    client.force_login(operator)
    url = f"/admin/advisors/account/{account.pk}/change/"
    assert 'name="license_quota"' in client.get(url).content.decode()
    # a quota below the 3 licenses granted: the form again, the error beside the field, nothing saved
    response = client.post(url, change_form(account, license_quota=2))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["license_quota"] == [
        "Demo Company has granted 3 Livechat Premium licenses: the quota cannot be lower. Revoke licenses first."]
    account.refresh_from_db()
    assert account.license_quota == 5
    assert client.post(url, change_form(account, license_quota=9)).status_code == 302
    account.refresh_from_db()
    assert account.license_quota == 9


@pytest.mark.django_db(transaction=True)
def test_a_grant_racing_a_lower_quota_never_leaves_more_granted_than_the_quota(demo, operator):
    if connection.vendor != "postgresql":
        pytest.skip("the race is about row locks on PostgreSQL (CI runs it there)")
    account = account_of(demo)
    contender = services.advisor_create(account=account, username="racer", email="racer@x.example",
                                        display_name="Racer", password="pw-123456789")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def grant():
        try:
            barrier.wait()
            services.license_grant(advisor=contender)
            outcomes["grant"] = "done"
        except services.LicenseQuotaExceeded:
            outcomes["grant"] = "refused"
        finally:
            connections.close_all()

    def lower():
        try:
            barrier.wait()
            services.account_license_quota_set(account=account, quota=3, by=operator)
            outcomes["quota"] = "done"
        except services.QuotaBelowGranted:
            outcomes["quota"] = "refused"
        finally:
            connections.close_all()

    for _ in range(6):  # several rounds, so the two connections really interleave
        # given 3 licenses granted of 4, one grant and a quota of 3 racing for the last one
        Advisor.objects.filter(pk=contender.pk).update(licensed=False)
        Account.objects.filter(pk=account.pk).update(license_quota=4)
        outcomes.clear()
        threads = [threading.Thread(target=grant), threading.Thread(target=lower)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        # then exactly one of them happened, and the quota covers the licenses granted
        assert sorted(outcomes.values()) == ["done", "refused"], outcomes
        account.refresh_from_db()
        assert selectors.licenses_granted(account=account) <= account.license_quota
