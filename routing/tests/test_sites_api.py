"""GET / PATCH /api/inbox/sites/{key}: staff only (403), 404 outside the caller's sites, bad input refused."""
import pytest

from advisors.models import Site
from routing.models import SiteRouting

SHOP = "/api/inbox/sites/demo-shop"


@pytest.mark.django_db
def test_staff_read_the_demo_defaults_and_switch_to_round_robin(demo, api_as):
    admin = api_as("admin")
    assert admin.get(SHOP).json() == {"key": "demo-shop", "name": "Shop", "assignment": "manual", "hours": None,
                                      "away_message": SiteRouting._meta.get_field("away_message").default,
                                      "handoff_timeout_s": 120, "idle_close_min": None}
    hours = {"timezone": "Europe/Paris", "intervals": [{"day": 0, "start": "09:00", "end": "18:00"},
                                                       {"day": 5, "start": "10:00", "end": "24:00"}]}
    answer = admin.patch(SHOP, {"assignment": "round_robin", "hours": hours, "away_message": "Back at 9.",
                                "handoff_timeout_s": 60, "idle_close_min": 30}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["assignment"] == "round_robin" and answer.json()["hours"] == hours
    rules = SiteRouting.objects.get(site__key="demo-shop")
    assert (rules.away_message, rules.handoff_timeout_s, rules.idle_close_min) == ("Back at 9.", 60, 30)
    assert admin.patch(SHOP, {"hours": None, "idle_close_min": None}, format="json").json()["hours"] is None


@pytest.mark.django_db
def test_the_site_api_costs_a_few_queries(demo, api_as, django_assert_max_num_queries):
    admin = api_as("admin")
    with django_assert_max_num_queries(4):
        assert admin.get(SHOP).status_code == 200
    with django_assert_max_num_queries(10):  # the token, the owner check, the site, update_or_create's savepoint
        assert admin.patch(SHOP, {"assignment": "round_robin"}, format="json").status_code == 200


@pytest.mark.django_db
def test_a_django_staff_user_who_does_not_own_the_account_is_staff_too(demo, api_as):
    alice = demo.advisors["alice"].user
    alice.is_staff = True
    alice.save()
    assert api_as("alice").get(SHOP).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "patch"])
def test_an_advisor_who_is_not_staff_gets_403_and_changes_nothing(demo, api_as, method):
    answer = getattr(api_as("alice"), method)(SHOP, {"assignment": "round_robin"}, format="json")
    assert answer.status_code == 403 and answer.json()["code"]
    assert not SiteRouting.objects.exists()


@pytest.mark.django_db
def test_a_site_outside_the_callers_sites_is_404_even_for_staff(demo, api_as):
    assert api_as("bob").get("/api/inbox/sites/demo-blog").status_code == 404
    assert api_as("admin").get("/api/inbox/sites/nope").status_code == 404
    demo.advisors["admin"].sites.remove(demo.sites["blog"])
    assert api_as("admin").patch("/api/inbox/sites/demo-blog", {"assignment": "round_robin"},
                                 format="json").status_code == 404


@pytest.mark.django_db
def test_unauthenticated_is_refused(demo, client):
    assert client.get(SHOP).status_code in (401, 403)


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    {"assignment": "random"},
    {"hours": {"timezone": "Mars/Olympus", "intervals": []}},
    {"hours": {"timezone": "UTC", "intervals": [{"day": 7, "start": "09:00", "end": "10:00"}]}},
    {"hours": {"timezone": "UTC", "intervals": [{"day": 1, "start": "18:00", "end": "09:00"}]}},
    {"hours": {"timezone": "UTC", "intervals": [{"day": 1, "start": "9:00", "end": "10:00"}]}},
    {"hours": "always"},
    {"away_message": ""},
    {"away_message": "x" * 1001},
    {"handoff_timeout_s": -1},
    {"handoff_timeout_s": "soon"},
    {"handoff_timeout_s": True},
    {"idle_close_min": 1.5},
    {"owner": "me"},
])
def test_bad_input_is_400_and_stores_nothing(demo, api_as, body):
    answer = api_as("admin").patch(SHOP, body, format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] and answer.json()["detail"]
    assert not SiteRouting.objects.exists()


@pytest.mark.django_db
def test_the_admin_switches_a_site_to_round_robin(demo, client):
    client.force_login(demo.advisors["admin"].user)
    shop = Site.objects.get(key="demo-shop")
    form = {"site": shop.pk, "assignment": "round_robin", "hours": "null", "away_message": "Away.",
            "handoff_timeout_s": 90, "idle_close_min": ""}
    bad = client.post("/admin/routing/siterouting/add/", {**form, "hours": '{"timezone": "Nowhere", "intervals": []}'})
    assert bad.status_code == 200 and "Unknown time zone" in bad.content.decode()
    assert client.post("/admin/routing/siterouting/add/", form).status_code == 302
    assert SiteRouting.objects.get(site=shop).assignment == "round_robin"
