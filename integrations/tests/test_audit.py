"""The audit trail: license grants and revocations, scope changes, exports and erasures (who, when, what), listed
read-only in the admin."""
import pytest
from django.test import Client

from advisors import services as advisor_services
from integrations.models import AuditEntry

AUDIT = "/admin/integrations/auditentry/"


def carol_form(demo, **changes) -> dict:
    carol = demo.advisors["carol"]
    form = {"user": carol.user_id, "account": carol.account_id, "display_name": "Carol", "email": "carol@demo.example",
            "email_on_escalation": "on", "sound": "on", "sites": [demo.sites["shop"].pk]}
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


@pytest.fixture
def admin(demo) -> Client:
    client = Client()
    client.force_login(demo.advisors["admin"].user)
    return client


@pytest.mark.django_db
def test_license_grants_revocations_and_scope_changes_say_who_when_and_what(demo, admin):
    AuditEntry.objects.all().delete()  # seed_demo's own grants (by no one: a process)
    carol = demo.advisors["carol"]
    # when the admin grants carol a license, then widens her sites and lets her see the bot's conversations
    response = admin.post(f"/admin/advisors/advisor/{carol.pk}/change/", carol_form(demo, premium="on"))
    assert response.status_code == 302
    both = [demo.sites["shop"].pk, demo.sites["blog"].pk]
    response = admin.post(f"/admin/advisors/advisor/{carol.pk}/change/",
                          carol_form(demo, premium="on", sites=both, sees_chatbot="on"))
    assert response.status_code == 302
    # and revokes the license
    response = admin.post(f"/admin/advisors/advisor/{carol.pk}/change/",
                          carol_form(demo, sites=both, sees_chatbot="on"))
    assert response.status_code == 302
    entries = list(AuditEntry.objects.order_by("id"))
    assert [(e.action, e.actor_name, e.target) for e in entries] == [
        ("license.granted", "admin", "advisor carol"),
        ("scope.changed", "admin", "advisor carol"),
        ("license.revoked", "admin", "advisor carol"),
    ]
    assert entries[1].details == {"sites": ["demo-blog", "demo-shop"], "sees_chatbot": True}
    assert all(e.actor_id == demo.advisors["admin"].user_id and e.at is not None for e in entries)


@pytest.mark.django_db
def test_a_refused_grant_leaves_no_entry(demo):
    account = demo.sites["shop"].account
    account.license_quota = 3
    account.save()
    AuditEntry.objects.all().delete()
    with pytest.raises(advisor_services.LicenseQuotaExceeded):
        advisor_services.license_grant(advisor=demo.advisors["carol"], by=demo.advisors["admin"].user)
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_the_trail_is_listed_read_only_in_the_admin(demo, admin):
    advisor_services.license_revoke(advisor=demo.advisors["bob"], by=demo.advisors["admin"].user)
    entry = AuditEntry.objects.get(action="license.revoked")
    page = admin.get(AUDIT)
    assert page.status_code == 200 and "advisor bob" in page.content.decode()
    assert admin.get(f"{AUDIT}{entry.pk}/change/").status_code == 200  # viewable
    # nothing can be added, changed or deleted, not even by a superuser
    assert admin.get(f"{AUDIT}add/").status_code == 403
    assert admin.post(f"{AUDIT}{entry.pk}/change/", {"actor_name": "someone else", "action": "license.granted",
                                                    "target": "x", "details": "{}"}).status_code == 403
    assert admin.post(f"{AUDIT}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    response = admin.post(AUDIT, {"action": "delete_selected", "post": "yes", "_selected_action": [entry.pk]})
    assert AuditEntry.objects.filter(pk=entry.pk, actor_name="admin").exists(), response.status_code
    # and an advisor who is not staff does not see it
    alice = Client()
    alice.force_login(demo.advisors["alice"].user)
    assert alice.get(AUDIT).status_code == 302
